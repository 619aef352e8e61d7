// Portable variant (baseline x86-64 / any target): 4 x 16 tiles in plain C.
#define QGEMM_NS portable
#define QGEMM_LEVEL 0
#include "runtime/kernels/qgemm_kernels.inc"
