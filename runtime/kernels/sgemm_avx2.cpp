// AVX2 + FMA variant (compiled with -mavx2 -mfma): 6 x 16 tiles, 12 ymm accumulators.
#define SGEMM_NS avx2
#define SGEMM_MR 6
#define SGEMM_VW 8
#define SGEMM_NV 1
#include "runtime/kernels/sgemm_kernels.inc"
