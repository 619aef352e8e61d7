// AVX-512 variant (compiled with -mavx512f -mf16c -mfma): vcvtph2ps zmm, sgemm's 8 x 32 tiles.
#define HGEMM_NS hgemm_avx512
#define HGEMM_LEVEL 2
#define SGEMM_MR 8
#define SGEMM_VW 16
#define SGEMM_NV 2
#include "runtime/kernels/hgemm_kernels.inc"
