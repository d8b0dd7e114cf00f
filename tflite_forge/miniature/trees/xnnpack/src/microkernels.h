/* Miniature XNNPACK microkernel declarations (tflite-forge fixture). */
#ifndef XNNPACK_SRC_MICROKERNELS_H_
#define XNNPACK_SRC_MICROKERNELS_H_

#include <stddef.h>

void xnn_f32_vmulc_ukernel__scalar(size_t count, const float* input, float factor, float* output);
void xnn_f32_vmulc_ukernel__neon(size_t count, const float* input, float factor, float* output);

#endif /* XNNPACK_SRC_MICROKERNELS_H_ */
