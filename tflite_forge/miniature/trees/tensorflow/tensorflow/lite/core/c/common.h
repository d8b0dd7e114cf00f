/* Tensors and integer arrays (tflite-forge miniature). */
#ifndef TENSORFLOW_LITE_CORE_C_COMMON_H_
#define TENSORFLOW_LITE_CORE_C_COMMON_H_

#include <stddef.h>

#include "tensorflow/lite/core/c/c_api_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct TfLiteIntArray {
  int size;
  int data[1]; /* `size` entries are allocated */
} TfLiteIntArray;

/* Bytes needed for an array of `size` entries. */
TFL_CAPI_EXPORT size_t TfLiteIntArrayGetSizeInBytes(int size);
/* A new array of `size` entries (uninitialized); free it with TfLiteIntArrayFree. */
TFL_CAPI_EXPORT TfLiteIntArray* TfLiteIntArrayCreate(int size);
TFL_CAPI_EXPORT void TfLiteIntArrayFree(TfLiteIntArray* array);

typedef struct TfLiteTensor {
  TfLiteType type;
  void* data;
  TfLiteIntArray* dims;
  size_t bytes;
  const char* name;
} TfLiteTensor;

#ifdef __cplusplus
}
#endif

#endif /* TENSORFLOW_LITE_CORE_C_COMMON_H_ */
