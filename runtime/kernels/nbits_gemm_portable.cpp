// MatMulNBits panel kernels, Portable variant (baseline x86-64 / any target).
#define NBITS_NS nbits_portable
#define NBITS_LEVEL 0
#include "runtime/kernels/nbits_gemm_kernels.inc"
