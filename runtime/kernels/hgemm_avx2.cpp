// AVX2 variant (compiled with -mavx2 -mfma -mf16c): vcvtph2ps ymm, sgemm's 6 x 16 tiles.
#define HGEMM_NS hgemm_avx2
#define HGEMM_LEVEL 1
#define SGEMM_MR 6
#define SGEMM_VW 8
#define SGEMM_NV 1
#include "runtime/kernels/hgemm_kernels.inc"
