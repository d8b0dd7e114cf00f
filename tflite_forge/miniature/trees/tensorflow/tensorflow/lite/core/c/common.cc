// Integer arrays (tflite-forge miniature).
#include "tensorflow/lite/core/c/common.h"

#include <cstdlib>

extern "C" {

size_t TfLiteIntArrayGetSizeInBytes(int size) {
  return sizeof(TfLiteIntArray) + sizeof(int) * (size > 1 ? static_cast<size_t>(size - 1) : 0);
}

TfLiteIntArray* TfLiteIntArrayCreate(int size) {
  if (size < 0) return nullptr;
  auto* array = static_cast<TfLiteIntArray*>(std::malloc(TfLiteIntArrayGetSizeInBytes(size)));
  if (array != nullptr) array->size = size;
  return array;
}

void TfLiteIntArrayFree(TfLiteIntArray* array) { std::free(array); }

}  // extern "C"
