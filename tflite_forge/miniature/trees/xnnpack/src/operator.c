#include "microkernels.h"
#include "xnnpack.h"

int xnn_is_initialized(void);

enum { XNN_TILE = 1024 };

struct vmulc_context {
  size_t count;
  const float* input;
  float factor;
  float* output;
};

static void vmulc_tile(void* context, size_t tile) {
  const struct vmulc_context* c = (const struct vmulc_context*) context;
  const size_t begin = tile * XNN_TILE;
  const size_t n = c->count - begin < XNN_TILE ? c->count - begin : XNN_TILE;
#if XNN_HAVE_NEON_MICROKERNELS
  xnn_f32_vmulc_ukernel__neon(n, c->input + begin, c->factor, c->output + begin);
#else
  xnn_f32_vmulc_ukernel__scalar(n, c->input + begin, c->factor, c->output + begin);
#endif
}

enum xnn_status xnn_run_multiply_constant_f32(size_t count, const float* input, float factor,
                                              float* output, pthreadpool_t threadpool) {
  if (!xnn_is_initialized()) {
    return xnn_status_uninitialized;
  }
  if (count != 0 && (input == NULL || output == NULL)) {
    return xnn_status_invalid_parameter;
  }
  struct vmulc_context context = {count, input, factor, output};
  pthreadpool_parallelize_1d(threadpool, vmulc_tile, &context, (count + XNN_TILE - 1) / XNN_TILE, 0);
  return xnn_status_success;
}
