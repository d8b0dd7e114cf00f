/* Weights packed into the layout the kernels read. */
#include <stddef.h>

#define XNN_MINIATURE_TILE 1024

size_t xnn_miniature_packed_weights_stride(void) {
  return XNN_MINIATURE_TILE + 16;
}
