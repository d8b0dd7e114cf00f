// The C API over the miniature runtime (tflite-forge fixture). One float32
// input tensor named "input" and one float32 output tensor named "output";
// the arithmetic is the documented stand-in of miniature_runtime.h.
#include "tensorflow/lite/core/c/c_api.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <new>
#include <string>
#include <vector>

#ifndef TFLITE_MMAP_DISABLED
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "tensorflow/core/public/version.h"
#include "tensorflow/lite/core/miniature_runtime.h"

struct TfLiteModel {
  tflite::miniature::ModelSummary summary;
};

struct TfLiteInterpreterOptions {
  int32_t num_threads = -1;
};

struct TfLiteInterpreter {
  tflite::miniature::ModelSummary model;
  std::unique_ptr<tflite::miniature::Engine> engine;
  TfLiteTensor input{};
  TfLiteTensor output{};
  std::vector<float> input_data;
  std::vector<float> output_data;
  bool allocated = false;
};

namespace {

void ReportError(const std::string& message) { std::fprintf(stderr, "ERROR: %s\n", message.c_str()); }

TfLiteModel* ModelFromBytes(const uint8_t* data, size_t size) {
  tflite::miniature::ModelSummary summary;
  std::string error;
  if (!tflite::miniature::ReadModel(data, size, &summary, &error)) {
    ReportError(error);
    return nullptr;
  }
  auto* model = new (std::nothrow) TfLiteModel;
  if (model != nullptr) model->summary = summary;
  return model;
}

bool SetDims(TfLiteTensor* tensor, const int* dims, int32_t count) {
  TfLiteIntArray* array = TfLiteIntArrayCreate(count);
  if (array == nullptr) return false;
  for (int32_t i = 0; i < count; i++) array->data[i] = dims[i];
  TfLiteIntArrayFree(tensor->dims);
  tensor->dims = array;
  return true;
}

size_t ElementCount(const TfLiteTensor& tensor) {
  size_t n = 1;
  for (int i = 0; i < tensor.dims->size; i++) n *= static_cast<size_t>(tensor.dims->data[i]);
  return n;
}

}  // namespace

extern "C" {

const char* TfLiteVersion(void) { return TF_VERSION_STRING; }

TfLiteModel* TfLiteModelCreate(const void* model_data, size_t model_size) {
  if (model_data == nullptr) return nullptr;
  return ModelFromBytes(static_cast<const uint8_t*>(model_data), model_size);
}

TfLiteModel* TfLiteModelCreateFromFile(const char* model_path) {
  if (model_path == nullptr) return nullptr;
#ifndef TFLITE_MMAP_DISABLED
  int fd = open(model_path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
    if (fd >= 0) close(fd);
    ReportError(std::string("could not open model file ") + model_path);
    return nullptr;
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* mapped = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (mapped == MAP_FAILED) {
    ReportError(std::string("could not map model file ") + model_path);
    return nullptr;
  }
  TfLiteModel* model = ModelFromBytes(static_cast<const uint8_t*>(mapped), size);
  munmap(mapped, size);
  return model;
#else
  std::ifstream in(model_path, std::ios::binary);
  if (!in) {
    ReportError(std::string("could not open model file ") + model_path);
    return nullptr;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ModelFromBytes(bytes.data(), bytes.size());
#endif
}

void TfLiteModelDelete(TfLiteModel* model) { delete model; }

TfLiteInterpreterOptions* TfLiteInterpreterOptionsCreate(void) {
  return new (std::nothrow) TfLiteInterpreterOptions;
}

void TfLiteInterpreterOptionsDelete(TfLiteInterpreterOptions* options) { delete options; }

void TfLiteInterpreterOptionsSetNumThreads(TfLiteInterpreterOptions* options, int32_t num_threads) {
  if (options != nullptr) options->num_threads = num_threads;
}

TfLiteInterpreter* TfLiteInterpreterCreate(const TfLiteModel* model,
                                           const TfLiteInterpreterOptions* optional_options) {
  if (model == nullptr) return nullptr;
  auto* interpreter = new (std::nothrow) TfLiteInterpreter;
  if (interpreter == nullptr) return nullptr;
  interpreter->model = model->summary;
  interpreter->engine.reset(new tflite::miniature::Engine(optional_options ? optional_options->num_threads : -1));
  const int one[] = {1};
  interpreter->input.type = kTfLiteFloat32;
  interpreter->input.name = "input";
  interpreter->output.type = kTfLiteFloat32;
  interpreter->output.name = "output";
  if (!SetDims(&interpreter->input, one, 1) || !SetDims(&interpreter->output, one, 1)) {
    TfLiteInterpreterDelete(interpreter);
    return nullptr;
  }
  return interpreter;
}

void TfLiteInterpreterDelete(TfLiteInterpreter* interpreter) {
  if (interpreter == nullptr) return;
  TfLiteIntArrayFree(interpreter->input.dims);
  TfLiteIntArrayFree(interpreter->output.dims);
  delete interpreter;
}

int32_t TfLiteInterpreterGetInputTensorCount(const TfLiteInterpreter* interpreter) {
  return interpreter == nullptr ? 0 : 1;
}

TfLiteTensor* TfLiteInterpreterGetInputTensor(const TfLiteInterpreter* interpreter, int32_t input_index) {
  if (interpreter == nullptr || input_index != 0) return nullptr;
  return const_cast<TfLiteTensor*>(&interpreter->input);
}

TfLiteStatus TfLiteInterpreterResizeInputTensor(TfLiteInterpreter* interpreter, int32_t input_index,
                                                const int* input_dims, int32_t input_dims_size) {
  if (interpreter == nullptr || input_index != 0 || input_dims == nullptr || input_dims_size < 0) {
    return kTfLiteError;
  }
  for (int32_t i = 0; i < input_dims_size; i++) {
    if (input_dims[i] < 0) return kTfLiteError;
  }
  if (!SetDims(&interpreter->input, input_dims, input_dims_size) ||
      !SetDims(&interpreter->output, input_dims, input_dims_size)) {
    return kTfLiteError;
  }
  interpreter->allocated = false;
  interpreter->input.data = interpreter->output.data = nullptr;
  interpreter->input.bytes = interpreter->output.bytes = 0;
  return kTfLiteOk;
}

TfLiteStatus TfLiteInterpreterAllocateTensors(TfLiteInterpreter* interpreter) {
  if (interpreter == nullptr) return kTfLiteError;
  const size_t n = ElementCount(interpreter->input);
  interpreter->input_data.assign(n, 0.0f);
  interpreter->output_data.assign(n, 0.0f);
  interpreter->input.data = interpreter->input_data.data();
  interpreter->output.data = interpreter->output_data.data();
  interpreter->input.bytes = interpreter->output.bytes = n * sizeof(float);
  interpreter->allocated = true;
  return kTfLiteOk;
}

TfLiteStatus TfLiteInterpreterInvoke(TfLiteInterpreter* interpreter) {
  if (interpreter == nullptr) return kTfLiteError;
  if (!interpreter->allocated) {
    ReportError("Invoke called before AllocateTensors");
    return kTfLiteError;
  }
  return interpreter->engine->Run(interpreter->model, interpreter->input_data.data(),
                                  interpreter->output_data.data(), interpreter->input_data.size())
             ? kTfLiteOk
             : kTfLiteError;
}

int32_t TfLiteInterpreterGetOutputTensorCount(const TfLiteInterpreter* interpreter) {
  return interpreter == nullptr ? 0 : 1;
}

const TfLiteTensor* TfLiteInterpreterGetOutputTensor(const TfLiteInterpreter* interpreter, int32_t output_index) {
  if (interpreter == nullptr || output_index != 0) return nullptr;
  return &interpreter->output;
}

TfLiteType TfLiteTensorType(const TfLiteTensor* tensor) { return tensor ? tensor->type : kTfLiteNoType; }

int32_t TfLiteTensorNumDims(const TfLiteTensor* tensor) {
  return tensor && tensor->dims ? tensor->dims->size : -1;
}

int32_t TfLiteTensorDim(const TfLiteTensor* tensor, int32_t dim_index) {
  if (tensor == nullptr || tensor->dims == nullptr || dim_index < 0 || dim_index >= tensor->dims->size) return -1;
  return tensor->dims->data[dim_index];
}

size_t TfLiteTensorByteSize(const TfLiteTensor* tensor) { return tensor ? tensor->bytes : 0; }

void* TfLiteTensorData(const TfLiteTensor* tensor) { return tensor ? tensor->data : nullptr; }

const char* TfLiteTensorName(const TfLiteTensor* tensor) { return tensor ? tensor->name : nullptr; }

TfLiteStatus TfLiteTensorCopyFromBuffer(TfLiteTensor* tensor, const void* input_data, size_t input_data_size) {
  if (tensor == nullptr || tensor->data == nullptr || input_data == nullptr || input_data_size != tensor->bytes) {
    return kTfLiteError;
  }
  std::memcpy(tensor->data, input_data, input_data_size);
  return kTfLiteOk;
}

TfLiteStatus TfLiteTensorCopyToBuffer(const TfLiteTensor* output_tensor, void* output_data,
                                      size_t output_data_size) {
  if (output_tensor == nullptr || output_tensor->data == nullptr || output_data == nullptr ||
      output_data_size != output_tensor->bytes) {
    return kTfLiteError;
  }
  std::memcpy(output_data, output_tensor->data, output_data_size);
  return kTfLiteOk;
}

}  // extern "C"
