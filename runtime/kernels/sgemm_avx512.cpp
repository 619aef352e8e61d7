// AVX-512 variant (compiled with -mavx512f -mfma): 8 x 32 tiles, 16 zmm accumulators.
#define SGEMM_NS avx512
#define SGEMM_MR 8
#define SGEMM_VW 16
#define SGEMM_NV 2
#include "runtime/kernels/sgemm_kernels.inc"
