/* Needs NEON: on 32-bit ARM the build adds -mfpu=neon to this file only. */
#include <arm_neon.h>

#include "microkernels.h"

void xnn_f32_vmulc_ukernel__neon(size_t count, const float* input, float factor, float* output) {
  const float32x4_t vfactor = vdupq_n_f32(factor);
  size_t i = 0;
  for (; i + 4 <= count; i += 4) {
    vst1q_f32(output + i, vmulq_f32(vld1q_f32(input + i), vfactor));
  }
  xnn_f32_vmulc_ukernel__scalar(count - i, input + i, factor, output + i);
}
