// The miniature runtime (tflite-forge fixture); see miniature_runtime.h for
// what is a stand-in.
#include "tensorflow/lite/core/miniature_runtime.h"

#include "flatbuffers/flatbuffers.h"
#include "pthreadpool.h"
#include "tensorflow/lite/schema/schema_generated.h"  // written by the host flatc at build time

#if TFLITE_MINIATURE_WITH_XNNPACK
#include "xnnpack.h"
#endif

namespace tflite {
namespace miniature {

namespace {
constexpr uint32_t kSchemaVersion = 3;
}  // namespace

bool ReadModel(const uint8_t* data, size_t size, ModelSummary* summary, std::string* error) {
  flatbuffers::BufferView view(data, size);
  if (!view.HasIdentifier(TFLITE_FILE_IDENTIFIER)) {
    *error = "the model has no '" TFLITE_FILE_IDENTIFIER "' file identifier: not a TensorFlow Lite model";
    return false;
  }
  size_t model = 0, field = 0;
  if (!view.Root(&model) || !view.Field(model, TFLITE_MODEL_VT_VERSION, &field)) {
    *error = "the model's root table is out of range";
    return false;
  }
  uint32_t version = 0;
  if (field != 0 && !view.Read(field, &version)) {
    *error = "the model's version field is out of range";
    return false;
  }
  if (version != kSchemaVersion) {
    *error = "the model's schema version is " + std::to_string(version) + ", expected 3";
    return false;
  }
  size_t subgraphs = 0, subgraph = 0, operators = 0;
  uint32_t subgraph_count = 0, operator_count = 0;
  if (!view.Field(model, TFLITE_MODEL_VT_SUBGRAPHS, &field) || field == 0 ||
      !view.Indirect(field, &subgraphs) || !view.Read(subgraphs, &subgraph_count) || subgraph_count == 0 ||
      !view.Indirect(subgraphs + 4, &subgraph)) {
    *error = "the model has no readable subgraph";
    return false;
  }
  if (!view.Field(subgraph, TFLITE_SUBGRAPH_VT_OPERATORS, &field)) {
    *error = "the first subgraph is out of range";
    return false;
  }
  if (field != 0 && (!view.Indirect(field, &operators) || !view.Read(operators, &operator_count))) {
    *error = "the first subgraph's operator list is out of range";
    return false;
  }
  summary->schema_version = version;
  summary->operator_count = static_cast<int32_t>(operator_count);
  return true;
}

Engine::Engine(int num_threads)
    : threadpool_(pthreadpool_create(num_threads > 0 ? static_cast<size_t>(num_threads) : 1)) {
#if TFLITE_MINIATURE_WITH_XNNPACK
  xnn_initialize();
#endif
}

Engine::~Engine() { pthreadpool_destroy(static_cast<pthreadpool_t>(threadpool_)); }

bool Engine::Run(const ModelSummary& model, const float* input, float* output, size_t count) {
  const float factor = static_cast<float>(model.operator_count + 1);
#if TFLITE_MINIATURE_WITH_XNNPACK
  return xnn_run_multiply_constant_f32(count, input, factor, output,
                                       static_cast<pthreadpool_t>(threadpool_)) == xnn_status_success;
#else
  for (size_t i = 0; i < count; i++) output[i] = input[i] * factor;
  return true;
#endif
}

}  // namespace miniature
}  // namespace tflite
