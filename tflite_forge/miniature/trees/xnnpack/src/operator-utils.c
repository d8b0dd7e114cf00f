/* Alignment every operator buffer keeps. */
#include <stddef.h>

#define XNN_MINIATURE_TILE 1024

size_t xnn_miniature_operator_alignment(void) {
  return 64;
}
