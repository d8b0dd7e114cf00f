// The miniature runtime behind the C API (tflite-forge fixture).
//
// STAND-IN ARITHMETIC: this is not TensorFlow Lite's interpreter. It reads a
// model's header (the "TFL3" identifier, schema version 3) and counts the
// operators of its first subgraph, then treats the graph as a chain of ADD
// nodes that each add the input once more: output = input * (operators + 1).
// For the smoke model (two ADD nodes: x + x, then + x) that is output = 3 * input,
// the same numbers the real interpreter computes.
#ifndef TENSORFLOW_LITE_CORE_MINIATURE_RUNTIME_H_
#define TENSORFLOW_LITE_CORE_MINIATURE_RUNTIME_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace tflite {
namespace miniature {

struct ModelSummary {
  uint32_t schema_version = 0;
  int32_t operator_count = 0;
};

// False (with *error set) when the bytes are not a TFLite flatbuffer we can read.
bool ReadModel(const uint8_t* data, size_t size, ModelSummary* summary, std::string* error);

// Runs the stand-in graph over float32 data.
class Engine {
 public:
  explicit Engine(int num_threads);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  bool Run(const ModelSummary& model, const float* input, float* output, size_t count);

 private:
  void* threadpool_;
};

}  // namespace miniature
}  // namespace tflite

#endif  // TENSORFLOW_LITE_CORE_MINIATURE_RUNTIME_H_
