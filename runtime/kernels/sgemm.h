// Single-precision matrix multiply, row-major: C[M,N] = A[M,K] · B[K,N] (+ C when accumulate).
// The hot path of every transformer. Three ISA variants (AVX-512, AVX2+FMA, portable) are
// compiled from one kernel source (sgemm_kernels.inc) and picked at run time from CPUID.
// M == 1 (decode) takes a matrix-vector path that streams B once at memory bandwidth.
#pragma once
#include <cstdint>

#include "runtime/thread_pool.h"

namespace llmc::rt {

enum class Isa { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };
// Best ISA this CPU supports.
Isa detected_isa();
// The ISA sgemm uses: detected_isa(), or a forced lower one (tests compare every variant).
Isa active_isa();
void force_isa(Isa isa);  // clamped to detected_isa()
const char* isa_name(Isa isa);

void sgemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float* C, int64_t ldc, bool accumulate, ThreadPool* pool);

// Plain triple loop with double accumulation: the reference the fast paths are tested against.
void sgemm_reference(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                     int64_t ldb, float* C, int64_t ldc, bool accumulate);

}  // namespace llmc::rt
