// MatMulNBits panel kernels, AVX2 variant (compiled with -mavx2 -mfma).
#define NBITS_NS nbits_avx2
#define NBITS_LEVEL 1
#define NBITS_PREFETCH 8192  // bytes ahead in a decode row's panel stream
#include "runtime/kernels/nbits_gemm_kernels.inc"
