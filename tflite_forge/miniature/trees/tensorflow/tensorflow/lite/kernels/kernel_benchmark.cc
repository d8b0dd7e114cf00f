// Times the miniature runtime's model check on a buffer that is not a model
// (tflite-forge fixture; built only on request, with TFLITE_KERNEL_TEST ON).
#include <cstdint>
#include <cstdio>
#include <string>

#include "benchmark/benchmark.h"
#include "tensorflow/lite/core/miniature_runtime.h"

int main() {
  const uint8_t not_a_model[8] = {0, 0, 0, 0, 'N', 'O', 'P', 'E'};
  const double seconds = benchmark::SecondsPerRun([&] {
    tflite::miniature::ModelSummary summary;
    std::string error;
    (void)tflite::miniature::ReadModel(not_a_model, sizeof not_a_model, &summary, &error);
  }, 1000);
  std::printf("ReadModel: %.3g s per call\n", seconds);
  return 0;
}
