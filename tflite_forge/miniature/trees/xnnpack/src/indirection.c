/* Indirection buffers for convolutions: the size of one, in pointers. */
#include <stddef.h>

#define XNN_MINIATURE_TILE 1024

size_t xnn_miniature_indirection_buffer_size(void) {
  return XNN_MINIATURE_TILE / 4;
}
