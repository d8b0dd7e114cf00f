#include "microkernels.h"

/* Two elements per iteration: a variant only the tests and benchmarks build (microkernels-all). */
void xnn_f32_vmulc_ukernel__scalar_x2(size_t count, const float* input, float factor, float* output) {
  size_t i = 0;
  for (; i + 2 <= count; i += 2) {
    output[i] = input[i] * factor;
    output[i + 1] = input[i + 1] * factor;
  }
  for (; i < count; i++) {
    output[i] = input[i] * factor;
  }
}
