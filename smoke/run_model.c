/* tflite-forge run-model: any .tflite model through a packaged libtensorflowlite_c, on the
 * target (natively or under qemu-user). Written against the TFLite C API (c_api.h) only.
 *
 *   tflite-run-model MODEL RUNS [FEED...]
 *
 * FEED is INDEX:TYPE:SHAPE:RESIZE:FILE, one per input the host prepared from a .npy file:
 * TfLiteType code, dims joined by ',' (empty for a scalar), 1 to resize the input to SHAPE
 * first, and a file of raw little-endian bytes. Inputs without a FEED get zeros.
 *
 * Prints JSON lines for tflite_forge.smoke to render (one object per line):
 *   {"event":"library","version":...}
 *   {"event":"tensor","io":"input"|"output","index":..,"name":..,"type":..,"shape":[..],"bytes":..,...}
 *   {"event":"invoke","runs":N,"ns":[..]}          wall time of each TfLiteInterpreterInvoke
 *   {"event":"error","stage":..,"message":..,...}  then exit 1
 *   {"event":"done"}
 * Exit 0 on success, 1 after an error line, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensorflow/lite/c/c_api.h"

#define MAX_DIMS 16
#define MAX_FEEDS 64
#define HEAD 8 /* output values printed per output tensor */

/* TfLiteType values (c_api_types.h; stable across releases). Named here so this program builds
 * against any c_api.h, including ones that declare only the types they implement. */
enum {
  T_FLOAT32 = 1, T_INT32 = 2, T_UINT8 = 3, T_INT64 = 4, T_STRING = 5, T_BOOL = 6, T_INT16 = 7,
  T_INT8 = 9, T_FLOAT64 = 11, T_UINT64 = 13, T_UINT32 = 16, T_UINT16 = 17
};

typedef struct {
  int index;
  int type;
  int num_dims;
  int dims[MAX_DIMS];
  int resize;
  const char* file;
} Feed;

static void json_string(const char* s) {
  putchar('"');
  for (const unsigned char* p = (const unsigned char*)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\') {
      printf("\\%c", *p);
    } else if (*p < 0x20) {
      printf("\\u%04x", *p);
    } else {
      putchar(*p);
    }
  }
  putchar('"');
}

static void json_dims(const int* dims, int n) {
  putchar('[');
  for (int i = 0; i < n; i++) printf(i ? ",%d" : "%d", dims[i]);
  putchar(']');
}

static int tensor_dims(const TfLiteTensor* t, int* dims) {
  int n = TfLiteTensorNumDims(t);
  if (n < 0) n = 0;
  if (n > MAX_DIMS) n = MAX_DIMS;
  for (int i = 0; i < n; i++) dims[i] = TfLiteTensorDim(t, i);
  return n;
}

static void json_number(double v) {
  if (v != v) {
    printf("\"nan\"");
  } else if (v > 1.7976931348623157e308 || v < -1.7976931348623157e308) {
    printf(v > 0 ? "\"inf\"" : "\"-inf\"");
  } else {
    printf("%.9g", v);
  }
}

/* Element i of a numeric tensor buffer as a double; 0 and *ok = 0 for other types. */
static double element(int type, const void* data, size_t i, int* ok) {
  *ok = 1;
  switch (type) {
    case T_FLOAT32: return ((const float*)data)[i];
    case T_FLOAT64: return ((const double*)data)[i];
    case T_INT32: return ((const int32_t*)data)[i];
    case T_UINT8: return ((const uint8_t*)data)[i];
    case T_INT64: return (double)((const int64_t*)data)[i];
    case T_BOOL: return ((const uint8_t*)data)[i] ? 1 : 0;
    case T_INT16: return ((const int16_t*)data)[i];
    case T_INT8: return ((const int8_t*)data)[i];
    case T_UINT64: return (double)((const uint64_t*)data)[i];
    case T_UINT32: return ((const uint32_t*)data)[i];
    case T_UINT16: return ((const uint16_t*)data)[i];
    default: *ok = 0; return 0;
  }
}

static size_t item_size(int type) {
  switch (type) {
    case T_FLOAT32: case T_INT32: case T_UINT32: return 4;
    case T_FLOAT64: case T_INT64: case T_UINT64: return 8;
    case T_INT16: case T_UINT16: return 2;
    case T_UINT8: case T_INT8: case T_BOOL: return 1;
    default: return 0;
  }
}

static void tensor_line(const char* io, int index, const TfLiteTensor* t) {
  int dims[MAX_DIMS];
  int n = tensor_dims(t, dims);
  printf("{\"event\":\"tensor\",\"io\":\"%s\",\"index\":%d,\"name\":", io, index);
  json_string(TfLiteTensorName(t));
  printf(",\"type\":%d,\"shape\":", (int)TfLiteTensorType(t));
  json_dims(dims, n);
  printf(",\"bytes\":%zu", TfLiteTensorByteSize(t));
}

static int fail(const char* stage, const char* message) {
  printf("{\"event\":\"error\",\"stage\":\"%s\",\"message\":", stage);
  json_string(message);
  printf("}\n");
  fflush(stdout);
  return 1;
}

static int fail_input(const char* stage, int index, const TfLiteTensor* t, const Feed* f, long file_bytes) {
  int dims[MAX_DIMS];
  int n = tensor_dims(t, dims);
  printf("{\"event\":\"error\",\"stage\":\"%s\",\"index\":%d,\"name\":", stage, index);
  json_string(TfLiteTensorName(t));
  printf(",\"type\":%d,\"shape\":", (int)TfLiteTensorType(t));
  json_dims(dims, n);
  printf(",\"bytes\":%zu,\"given_type\":%d,\"given_shape\":", TfLiteTensorByteSize(t), f->type);
  json_dims(f->dims, f->num_dims);
  printf(",\"given_bytes\":%ld}\n", file_bytes);
  fflush(stdout);
  return 1;
}

static int parse_feed(char* spec, Feed* f) {
  char* fields[4];
  char* p = spec;
  for (int k = 0; k < 4; k++) {
    char* colon = strchr(p, ':');
    if (colon == NULL) return 0;
    *colon = '\0';
    fields[k] = p;
    p = colon + 1;
  }
  f->index = atoi(fields[0]);
  f->type = atoi(fields[1]);
  f->resize = atoi(fields[3]);
  f->file = p;
  f->num_dims = 0;
  for (char* d = fields[2]; *d;) {
    if (f->num_dims == MAX_DIMS) return 0;
    f->dims[f->num_dims++] = (int)strtol(d, &d, 10);
    if (*d == ',') d++;
    else if (*d) return 0;
  }
  return f->index >= 0 && *f->file;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc < 3 || argc - 3 > MAX_FEEDS || atoi(argv[2]) < 1) {
    fprintf(stderr, "usage: %s MODEL RUNS [INDEX:TYPE:SHAPE:RESIZE:FILE ...]\n", argv[0]);
    return 2;
  }
  const int runs = atoi(argv[2]);
  Feed feeds[MAX_FEEDS];
  const int num_feeds = argc - 3;
  for (int k = 0; k < num_feeds; k++) {
    if (!parse_feed(argv[3 + k], &feeds[k])) {
      fprintf(stderr, "%s: bad feed %s\n", argv[0], argv[3 + k]);
      return 2;
    }
  }
  printf("{\"event\":\"library\",\"version\":");
  json_string(TfLiteVersion());
  printf("}\n");

  TfLiteModel* model = TfLiteModelCreateFromFile(argv[1]);
  if (model == NULL) return fail("model", "TfLiteModelCreateFromFile returned NULL");
  TfLiteInterpreterOptions* options = TfLiteInterpreterOptionsCreate();
  TfLiteInterpreterOptionsSetNumThreads(options, 1);
  TfLiteInterpreter* interpreter = TfLiteInterpreterCreate(model, options);
  TfLiteInterpreterOptionsDelete(options);
  if (interpreter == NULL) return fail("interpreter", "TfLiteInterpreterCreate returned NULL");

  const int num_inputs = TfLiteInterpreterGetInputTensorCount(interpreter);
  const int num_outputs = TfLiteInterpreterGetOutputTensorCount(interpreter);
  const Feed* feed_of[MAX_FEEDS] = {0};
  for (int k = 0; k < num_feeds; k++) {
    if (feeds[k].index >= num_inputs || feeds[k].index >= MAX_FEEDS) {
      printf("{\"event\":\"error\",\"stage\":\"feed\",\"index\":%d,\"inputs\":%d,\"message\":\"no such input\"}\n",
             feeds[k].index, num_inputs);
      return 1;
    }
    feed_of[feeds[k].index] = &feeds[k];
    if (feeds[k].resize &&
        TfLiteInterpreterResizeInputTensor(interpreter, feeds[k].index, feeds[k].dims, feeds[k].num_dims) != kTfLiteOk) {
      return fail_input("resize", feeds[k].index, TfLiteInterpreterGetInputTensor(interpreter, feeds[k].index),
                        &feeds[k], -1);
    }
  }
  if (TfLiteInterpreterAllocateTensors(interpreter) != kTfLiteOk) {
    return fail("allocate", "TfLiteInterpreterAllocateTensors failed");
  }

  for (int i = 0; i < num_inputs; i++) {
    TfLiteTensor* t = TfLiteInterpreterGetInputTensor(interpreter, i);
    const Feed* f = i < MAX_FEEDS ? feed_of[i] : NULL;
    const size_t bytes = TfLiteTensorByteSize(t);
    void* buffer = NULL;
    const char* fed = "zeros";
    if (f != NULL) {
      FILE* in = fopen(f->file, "rb");
      if (in == NULL) return fail("read_input", f->file);
      fseek(in, 0, SEEK_END);
      const long size = ftell(in);
      rewind(in);
      int dims[MAX_DIMS];
      const int n = tensor_dims(t, dims);
      if (f->type != (int)TfLiteTensorType(t)) {
        fclose(in);
        return fail_input("input_type", i, t, f, size);
      }
      if (n != f->num_dims || memcmp(dims, f->dims, sizeof(int) * (size_t)n) != 0) {
        fclose(in);
        return fail_input("input_shape", i, t, f, size);
      }
      if (size < 0 || (size_t)size != bytes) {
        fclose(in);
        return fail_input("input_size", i, t, f, size);
      }
      buffer = malloc(bytes ? bytes : 1);
      if (buffer == NULL || fread(buffer, 1, bytes, in) != bytes) {
        fclose(in);
        return fail("read_input", f->file);
      }
      fclose(in);
      fed = "file";
    } else if ((int)TfLiteTensorType(t) == T_STRING) {
      fed = "none"; /* zero bytes are not a valid string tensor; leave it as allocated */
    } else {
      buffer = calloc(bytes ? bytes : 1, 1);
      if (buffer == NULL) return fail("allocate", "out of memory for an input buffer");
    }
    if (buffer != NULL) {
      if (TfLiteTensorCopyFromBuffer(t, buffer, bytes) != kTfLiteOk) {
        free(buffer);
        return fail_input("copy_input", i, t, f ? f : &(Feed){.index = i, .type = -1}, (long)bytes);
      }
      free(buffer);
    }
    tensor_line("input", i, t);
    printf(",\"fed\":\"%s\"}\n", fed);
  }

  int64_t* times = calloc((size_t)runs, sizeof *times);
  if (times == NULL) return fail("invoke", "out of memory for the timings");
  for (int r = 0; r < runs; r++) {
    const int64_t start = now_ns();
    if (TfLiteInterpreterInvoke(interpreter) != kTfLiteOk) {
      char what[64];
      snprintf(what, sizeof what, "TfLiteInterpreterInvoke failed on run %d", r + 1);
      return fail("invoke", what);
    }
    times[r] = now_ns() - start;
  }
  printf("{\"event\":\"invoke\",\"runs\":%d,\"ns\":[", runs);
  for (int r = 0; r < runs; r++) printf(r ? ",%lld" : "%lld", (long long)times[r]);
  printf("]}\n");
  free(times);

  for (int o = 0; o < num_outputs; o++) {
    const TfLiteTensor* t = TfLiteInterpreterGetOutputTensor(interpreter, o);
    const size_t bytes = TfLiteTensorByteSize(t);
    const int type = (int)TfLiteTensorType(t);
    tensor_line("output", o, t);
    const size_t size = item_size(type);
    if (size != 0) {
      void* data = malloc(bytes ? bytes : 1);
      if (data == NULL || TfLiteTensorCopyToBuffer(t, data, bytes) != kTfLiteOk) {
        printf("}\n");
        free(data);
        return fail("copy_output", "TfLiteTensorCopyToBuffer failed");
      }
      const size_t count = bytes / size;
      double sum = 0;
      int ok = 1;
      printf(",\"values\":[");
      for (size_t i = 0; i < count; i++) {
        const double v = element(type, data, i, &ok);
        sum += v;
        if (i < HEAD) {
          if (i) putchar(',');
          json_number(v);
        }
      }
      printf("],\"count\":%zu,\"sum\":", count);
      json_number(sum);
      free(data);
    }
    printf("}\n");
  }

  TfLiteInterpreterDelete(interpreter);
  TfLiteModelDelete(model);
  printf("{\"event\":\"done\"}\n");
  return 0;
}
