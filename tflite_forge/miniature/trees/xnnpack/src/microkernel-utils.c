/* How many tiles a microkernel call covers. */
#include <stddef.h>

#define XNN_MINIATURE_TILE 1024

size_t xnn_miniature_microkernel_tiles(void) {
  return XNN_MINIATURE_TILE / 8;
}
