#include "microkernels.h"

void xnn_f32_vmulc_ukernel__scalar(size_t count, const float* input, float factor, float* output) {
  for (size_t i = 0; i < count; i++) {
    output[i] = input[i] * factor;
  }
}
