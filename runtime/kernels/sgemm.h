// Single-precision matrix multiply, row-major: C[M,N] = A[M,K] · B[K,N] (+ C when accumulate).
// The hot path of every transformer. Three ISA variants (AVX-512, AVX2+FMA, portable) are
// compiled from one kernel source (sgemm_kernels.inc) and picked at run time from CPUID.
// M == 1 (decode) takes a matrix-vector path that streams B once at memory bandwidth.
#pragma once
#include <cstdint>
#include <memory>

#include "runtime/aligned_buffer.h"

#include "runtime/thread_pool.h"

namespace llmc::rt {

enum class Isa { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };
// Best ISA this CPU supports.
Isa detected_isa();
// The ISA sgemm uses: detected_isa(), or a forced lower one (tests compare every variant).
Isa active_isa();
void force_isa(Isa isa);  // clamped to detected_isa()
const char* isa_name(Isa isa);

// A constant B [K, N] packed once (the session keeps it): ceil(N / nr) panels of [K][nr] floats,
// zero-padded, nr the packing variant's tile width. Prefill multiplies the panels directly (no
// packing per call); decode streams them, one sequential run per thread.
struct SPackedB {
  Isa isa = Isa::kPortable;
  int64_t K = 0, N = 0, nr = 0;
  AlignedBuffer data;
};
// With release_source, B's pages are handed back as they are packed when B lies in a read-only
// file mapping (runtime/file_pages.h): resident memory never holds a weight twice.
std::unique_ptr<SPackedB> sgemm_pack_b(const float* B, int64_t K, int64_t N, int64_t ldb, ThreadPool* pool,
                                       bool release_source = false, PackArena* arena = nullptr);

// With `packed` (same K and N, packed for the active variant) B is not read.
void sgemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float* C, int64_t ldc, bool accumulate, ThreadPool* pool,
           const SPackedB* packed = nullptr);

// Decode rows of several products of one x over packed weights (same K, packed for the active
// variant): ys[i] = x · packs[i], all panels of all products in one parallel loop (one thread
// barrier instead of one per product). Each result equals sgemm's on that product.
void sgemv_packed_batch(const float* x, const SPackedB* const* packs, float* const* ys, size_t n, ThreadPool* pool);
// The same with one x per product: ys[i] = xs[i] · packs[i] (each xs[i] has packs[i]->K
// elements): the second products of low-rank pairs, each reading its own intermediate.
void sgemv_packed_each(const float* const* xs, const SPackedB* const* packs, float* const* ys, size_t n,
                       ThreadPool* pool);

// y[n] = x[0:K] · B[n, 0:K] for n < N (B's rows ldb apart): products with a transposed B, such
// as attention scores against a key cache. Single-threaded (callers split heads or rows).
void sgemv_bt(int64_t N, int64_t K, const float* x, const float* B, int64_t ldb, float* y);

// Plain triple loop with double accumulation: the reference the fast paths are tested against.
void sgemm_reference(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                     int64_t ldb, float* C, int64_t ldc, bool accumulate);

}  // namespace llmc::rt
