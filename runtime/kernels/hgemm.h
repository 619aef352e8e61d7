// Half-precision matrix multiply, row-major: C[M,N] = A[M,K] · B[K,N] with IEEE float16
// operands (raw uint16_t bits), float32 accumulation and each output rounded once to float16
// (nearest even). The fp16 artifacts (quantize --mode fp16) run their MatMuls through this.
//
// Three ISA variants (AVX-512, AVX2+FMA+F16C, portable) from one source (hgemm_kernels.inc),
// chosen at run time like sgemm: active_isa() / force_isa() from sgemm.h govern both.
//  - M == 1 (decode): sgemm's row-sliced GEMV, widening each weight in registers right after
//    its load (vcvtph2ps), so the float16 weights stream at memory bandwidth: half the bytes
//    of float32 decode.
//  - M > 1 (prefill): B panels are widened to float32 while packing and multiplied by sgemm's
//    float32 micro-kernels; A is widened once.
#pragma once
#include <cstdint>
#include <memory>

#include "runtime/aligned_buffer.h"

#include "runtime/thread_pool.h"

namespace llmc::rt {

// A constant B [K, N] packed once: panels of kHPanel columns, each [K][kHPanel]
// float16 (one cache line per k, zero-padded past N), so each thread streams one sequential
// run instead of many rows at a stride. The layout is the same for every ISA variant.
inline constexpr int64_t kHPanel = 32;
struct HPackedB {
  int64_t K = 0, N = 0;
  AlignedBuffer data;
};
// With release_source, B's pages are handed back afterwards when B lies in a read-only file
// mapping (runtime/file_pages.h).
std::unique_ptr<HPackedB> hgemm_pack_b(const uint16_t* B, int64_t K, int64_t N, int64_t ldb, ThreadPool* pool,
                                       bool release_source = false, PackArena* arena = nullptr);

// All float16. C is overwritten (no accumulate). With `packed` (B packed by hgemm_pack_b, same
// K and N) B is not read: decode streams the panels, prefill widens them.
void hgemm(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* B,
           int64_t ldb, uint16_t* C, int64_t ldc, ThreadPool* pool, const HPackedB* packed = nullptr);

// Decode rows of several products of one widened row a (float32, K values) over packed float16
// weights (same K): ys[i] = a · packs[i] rounded to float16, all panels of all products in one
// parallel loop. Each result equals hgemm's on that product.
void hgemv_packed_batch(const float* a, const HPackedB* const* packs, uint16_t* const* ys, size_t n,
                        ThreadPool* pool);

// Float32 A and C, float16 B (C overwritten): for callers that post-process in float32
// (Gemm's alpha/beta) before rounding. With `packed` (same K and N), prefill-sized products
// multiply its panels (B is still read by single-row products).
void hgemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* B,
               int64_t ldb, float* C, int64_t ldc, ThreadPool* pool, const HPackedB* packed = nullptr);

// y[n] = a[0:K] · Bt[n, 0:K], n in [0, N): B stored transposed as float16 rows of stride ldbt
// (attention's q · K^T), float32 a and y. Single-threaded.
void hgemv_bt(int64_t N, int64_t K, const float* a, const uint16_t* Bt, int64_t ldbt, float* y);

// Vectorised conversions (exact widening; rounding to nearest even).
void halfs_to_floats(const uint16_t* src, float* dst, int64_t n);
void floats_to_halfs(const float* src, uint16_t* dst, int64_t n);

}  // namespace llmc::rt
