/* Forwarding header (tflite-forge miniature): the declarations live in tensorflow/lite/core/c/. */
#ifndef TENSORFLOW_LITE_C_COMMON_H_
#define TENSORFLOW_LITE_C_COMMON_H_

#include "tensorflow/lite/core/c/common.h"

#endif /* TENSORFLOW_LITE_C_COMMON_H_ */
