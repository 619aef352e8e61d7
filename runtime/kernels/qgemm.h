// 8-bit integer matrix multiply, row-major, exact int32:
//   C[m, n] = sum_k (A[m, k] - a_zp[m]) * (B[k, n] - b_zp[n])
// A and B are each uint8 or int8. Internally everything is mapped to uint8 x int8 (an int8 A
// is shifted by +128 and a uint8 B by -128, with the zero points shifted alike), the raw u8·s8
// dot products are accumulated exactly in int32, and the zero points enter through row sums of
// A and column sums of B:
//   C = sum A·B - b_zp[n]·rowsum_A[m] - a_zp[m]·colsum_B[n] + K·a_zp[m]·b_zp[n]
// (wrapping int32 arithmetic, so the result is exact whenever the true result fits in int32).
//
// Three ISA variants are compiled from qgemm_kernels.inc and chosen at run time from CPUID:
// AVX-512 VNNI (vpdpbusd), AVX2 (int16 widening + vpmaddwd: no vpmaddubsw, whose int16
// saturation would make results inexact) and portable C. B is packed once per call, panel by
// panel, into the variant's layout (4 consecutive k per int32 lane for VNNI). M == 1 (decode)
// streams B unpacked at memory bandwidth.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "runtime/aligned_buffer.h"

#include "runtime/thread_pool.h"

namespace llmc::rt {

enum class QIsa { kPortable = 0, kAvx2 = 1, kAvx512Vnni = 2 };
// Best variant this CPU supports.
QIsa qgemm_detected_isa();
// The variant qgemm uses: detected, or a forced lower one (tests compare every variant).
QIsa qgemm_active_isa();
void qgemm_force_isa(QIsa isa);  // clamped to qgemm_detected_isa()
const char* qgemm_isa_name(QIsa isa);

// B [K, N] packed for one variant's panel kernel: ceil(N / nr) panels of Kp·nr elements, and
// the column sums of B (as mapped to int8) padded to whole panels.
struct QPackedB {
  QIsa isa = QIsa::kPortable;
  int64_t K = 0, N = 0, Kp = 0, nr = 0, panel_bytes = 0;
  bool b_signed = true;
  AlignedBuffer data;
  std::vector<int32_t> colsum;
};

// Packs B for the active variant (pool may be nullptr).
std::unique_ptr<QPackedB> qgemm_pack_b(const void* B, int64_t K, int64_t N, int64_t ldb, bool b_signed,
                                       ThreadPool* pool, PackArena* arena = nullptr);

struct QGemmArgs {
  int64_t M = 0, N = 0, K = 0;
  const void* A = nullptr;  // [M, K] with row stride lda (elements)
  int64_t lda = 0;
  bool a_signed = false;          // int8 A (else uint8)
  const int32_t* a_zp = nullptr;  // nullptr: 0; else a_zp[0], or a_zp[m] when a_zp_per_row
  bool a_zp_per_row = false;
  const void* B = nullptr;  // [K, N] with row stride ldb
  int64_t ldb = 0;
  bool b_signed = true;           // int8 B (else uint8)
  const int32_t* b_zp = nullptr;  // nullptr: 0; else b_zp[0], or b_zp[n] when b_zp_per_col
  bool b_zp_per_col = false;
  // Optional: B pre-packed by qgemm_pack_b (same K, N, signedness). Used instead of B when it
  // was packed for the active variant; B is then not read.
  const QPackedB* packed_b = nullptr;
  int32_t* C = nullptr;  // [M, N] with row stride ldc
  int64_t ldc = 0;
  // Optional: the epilogue that turns C into floats, Cf[n] = float(C[n]) * (out_a_scale *
  // out_scale[per_col ? n : 0]) + (out_bias ? out_bias[n] : 0), rounded as those float32
  // operations in that order. Decode rows over packed B (qgemm_batch's one-loop path, a `done`
  // given) on CPUs with AVX-512 VNNI compute it in the panel kernel and write Cf instead of C;
  // `done` is then not called for this product. Everywhere else C is written and `done` called
  // as usual, and decode still fetches each panel's scales and bias into cache while the panel
  // streams (they lie apart from it), so the caller's epilogue does not wait on memory.
  float* Cf = nullptr;
  float out_a_scale = 0;
  const float* out_scale = nullptr;
  bool out_scale_per_col = false;
  const float* out_bias = nullptr;
};

// pool may be nullptr (single-threaded).
void qgemm(const QGemmArgs& args, ThreadPool* pool);

// Called as done(i, j0, j1) once columns [j0, j1) of product i are final, on the thread that
// computed them (an epilogue that scales them while they are in cache).
using QColumnsDone = std::function<void(size_t, int64_t, int64_t)>;

// Several products in one call, e.g. the Q, K and V projections of one activation. When each
// has M == 1 and a B pre-packed for the active variant (decode), one parallel loop runs over
// all their panels, so the threads meet once instead of once per product, and `done` (if
// given) is called for every panel: returns true. Otherwise they run one after another and
// `done` is not called: returns false. Results are those of qgemm on each.
bool qgemm_batch(const QGemmArgs* args, size_t n, ThreadPool* pool, const QColumnsDone* done = nullptr);

// Plain triple loop with int64 accumulation, truncated to int32: the reference.
void qgemm_reference(const QGemmArgs& args);

}  // namespace llmc::rt
