/* Miniature XNNPACK public header (tflite-forge fixture). */
#ifndef XNNPACK_H_
#define XNNPACK_H_

#include <stddef.h>

#include "pthreadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

enum xnn_status {
  xnn_status_success = 0,
  xnn_status_uninitialized = 1,
  xnn_status_invalid_parameter = 2,
};

enum xnn_status xnn_initialize(void);
enum xnn_status xnn_deinitialize(void);

/* output[i] = input[i] * factor for i in [0, count), split over the thread pool. */
enum xnn_status xnn_run_multiply_constant_f32(size_t count, const float* input, float factor,
                                              float* output, pthreadpool_t threadpool);

#ifdef __cplusplus
}
#endif

#endif /* XNNPACK_H_ */
