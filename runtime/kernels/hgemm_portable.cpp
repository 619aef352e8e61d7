// Portable variant (baseline x86-64 / any target): bit-level float16 widening, 2 x 16 tiles.
#define HGEMM_NS hgemm_portable
#define HGEMM_LEVEL 0
#define SGEMM_MR 2
#define SGEMM_VW 4
#define SGEMM_NV 1
#include "runtime/kernels/hgemm_kernels.inc"
