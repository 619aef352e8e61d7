// AVX2 variant (compiled with -mavx2): 6 x 16 tiles; bytes widened to int16 and multiplied
// with vpmaddwd (exact; vpmaddubsw would saturate u8·s8 pair sums in int16).
#define QGEMM_NS avx2
#define QGEMM_LEVEL 1
#include "runtime/kernels/qgemm_kernels.inc"
