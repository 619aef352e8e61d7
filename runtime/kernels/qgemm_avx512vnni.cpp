// AVX-512 VNNI variant (compiled with -mavx512f -mavx512bw -mavx512vnni): 6 x 64 tiles,
// 24 zmm accumulators, vpdpbusd (u8 x s8, 4 k per int32 lane, exact).
#define QGEMM_NS avx512vnni
#define QGEMM_LEVEL 2
#include "runtime/kernels/qgemm_kernels.inc"
