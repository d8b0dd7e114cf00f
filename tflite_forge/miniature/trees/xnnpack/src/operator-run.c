/* The per-thread work split of a running operator. */
#include <stddef.h>

#define XNN_MINIATURE_TILE 1024

size_t xnn_miniature_operator_run_chunk(void) {
  return XNN_MINIATURE_TILE / 2;
}
