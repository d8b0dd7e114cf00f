/* Builtin operator codes (tflite-forge miniature: the few the fixture names). */
#ifndef TENSORFLOW_LITE_BUILTIN_OPS_H_
#define TENSORFLOW_LITE_BUILTIN_OPS_H_

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  kTfLiteBuiltinAdd = 0,
  kTfLiteBuiltinAveragePool2d = 1,
  kTfLiteBuiltinConcatenation = 2,
  kTfLiteBuiltinConv2d = 3,
} TfLiteBuiltinOperator;

#ifdef __cplusplus
}
#endif

#endif /* TENSORFLOW_LITE_BUILTIN_OPS_H_ */
