/* What the CPU offers (a constant here; real XNNPACK probes cpuinfo). */
#include <stddef.h>

#define XNN_MINIATURE_TILE 1024

size_t xnn_miniature_hardware_config(void) {
  return XNN_MINIATURE_TILE;
}
