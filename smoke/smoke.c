/* tflite-forge smoke test: the C API sequence of TensorFlow's CApiSimple.Smoke, against
 * a packaged libtensorflowlite_c. Loads the add model (output = 3 * input), resizes input 0
 * to {2}, feeds {1, 3}, invokes and expects {3, 9}.
 *
 *   tflite-smoke MODEL.tflite [STAMP]     exit 0 and print "smoke: ok ..." on success;
 *                                         with STAMP, also write that file (for image tests).
 */
#include <stdio.h>
#include <stdlib.h>

#include "tensorflow/lite/c/c_api.h"

#define CHECK(cond, what)                                         \
  do {                                                            \
    if (!(cond)) {                                                \
      fprintf(stderr, "smoke: FAILED: %s\n", what);               \
      return 1;                                                   \
    }                                                             \
  } while (0)

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.tflite [STAMP]\n", argv[0]);
    return 2;
  }
  printf("smoke: TensorFlow Lite C API %s\n", TfLiteVersion());

  TfLiteModel* model = TfLiteModelCreateFromFile(argv[1]);
  CHECK(model != NULL, "TfLiteModelCreateFromFile (is the path a .tflite model?)");
  TfLiteInterpreterOptions* options = TfLiteInterpreterOptionsCreate();
  CHECK(options != NULL, "TfLiteInterpreterOptionsCreate");
  TfLiteInterpreterOptionsSetNumThreads(options, 1);
  TfLiteInterpreter* interpreter = TfLiteInterpreterCreate(model, options);
  CHECK(interpreter != NULL, "TfLiteInterpreterCreate");
  CHECK(TfLiteInterpreterGetInputTensorCount(interpreter) == 1, "model has one input");
  CHECK(TfLiteInterpreterGetOutputTensorCount(interpreter) == 1, "model has one output");

  const int dims[1] = {2};
  CHECK(TfLiteInterpreterResizeInputTensor(interpreter, 0, dims, 1) == kTfLiteOk, "resize input 0 to {2}");
  CHECK(TfLiteInterpreterAllocateTensors(interpreter) == kTfLiteOk, "TfLiteInterpreterAllocateTensors");

  TfLiteTensor* input = TfLiteInterpreterGetInputTensor(interpreter, 0);
  CHECK(input != NULL, "input tensor 0");
  CHECK(TfLiteTensorType(input) == kTfLiteFloat32, "input is float32");
  CHECK(TfLiteTensorNumDims(input) == 1 && TfLiteTensorDim(input, 0) == 2, "input shape is {2}");
  const float in[2] = {1.0f, 3.0f};
  CHECK(TfLiteTensorCopyFromBuffer(input, in, sizeof in) == kTfLiteOk, "copy {1, 3} into input");

  CHECK(TfLiteInterpreterInvoke(interpreter) == kTfLiteOk, "TfLiteInterpreterInvoke");

  const TfLiteTensor* output = TfLiteInterpreterGetOutputTensor(interpreter, 0);
  CHECK(output != NULL, "output tensor 0");
  float out[2] = {0.0f, 0.0f};
  CHECK(TfLiteTensorCopyToBuffer(output, out, sizeof out) == kTfLiteOk, "copy output out");
  if (out[0] != 3.0f || out[1] != 9.0f) {
    fprintf(stderr, "smoke: FAILED: expected {3, 9}, got {%g, %g}\n", out[0], out[1]);
    return 1;
  }

  TfLiteInterpreterDelete(interpreter);
  TfLiteInterpreterOptionsDelete(options);
  TfLiteModelDelete(model);
  printf("smoke: ok: {1, 3} -> {%g, %g}\n", out[0], out[1]);

  if (argc > 2) {
    FILE* stamp = fopen(argv[2], "w");
    CHECK(stamp != NULL, "write the stamp file");
    fputs("ok\n", stamp);
    fclose(stamp);
  }
  return 0;
}
