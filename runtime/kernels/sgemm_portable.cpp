// Portable variant (baseline x86-64 / any target): 2 x 16 tiles.
#define SGEMM_NS portable
#define SGEMM_MR 2
#define SGEMM_VW 4
#define SGEMM_NV 1
#include "runtime/kernels/sgemm_kernels.inc"
