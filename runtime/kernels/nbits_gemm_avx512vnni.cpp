// MatMulNBits panel kernels, AVX-512 VNNI variant (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma).
#define NBITS_NS nbits_avx512vnni
#define NBITS_LEVEL 2
#define NBITS_PREFETCH 4096  // bytes ahead in a decode row's panel stream, into L1
#define NBITS_PREFETCH_L2 32768  // and into L2 (more misses in flight: DRAM-bound decode +20%)
#include "runtime/kernels/nbits_gemm_kernels.inc"
