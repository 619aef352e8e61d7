// com.llmcompress NMSparseMatMul's weight, repacked once for decode, and its matrix-vector
// products. The file form (ir/nm_sparse.h) keeps one row per kept slot; decode wants each
// thread to stream one sequential run, so the session repacks into panels of columns:
//
//  float32 / float16 values, panels of kNMFloatPanel = 32 columns. Per group g of four rows:
//    n × 32 values (slot s of columns 0..31), then n × 2 uint32 words of positions (slot s,
//    columns 0..15 and 16..31, column j at bits 2j). The kernel broadcasts x[4g..4g+3] into
//    every 128-bit quarter of a register and picks each column's x with one permute indexed by
//    the word shifted right by 2j: of that lane's low four bits, the two of position p choose
//    the element inside a quarter and the next column's two bits a quarter, which holds
//    x[4g + p] as well.
//  int8 values, panels of kNMInt8Panel = 64 columns. Per block q of four kept rows (slots
//    4q..4q+3 of the file's rows): 64 lanes of four bytes (column j's four kept weights, as
//    vpdpbusd multiplies them), then 64 bytes of positions (byte j: column j's four, two bits
//    each). The kernel builds each lane's four activation bytes with one byte permute of the
//    uint8 activations of the block's groups.
// Padding (columns past N, kept rows past the last) holds zero weights at position 0.
//
// Results: float32 decode sums each column's products in float32 (order: slots within a group,
// groups ascending, as the portable path does); int8 sums exactly in int32 and scales like
// ONNX Runtime's DynamicQuantizeMatMul, so it equals the dense int8 product bit for bit.
#pragma once
#include <cstdint>
#include <optional>

#include "ir/nm_sparse.h"
#include "runtime/aligned_buffer.h"
#include "runtime/kernels/nm_sparse_panels.h"
#include "runtime/thread_pool.h"

namespace llmc::rt {

inline constexpr int64_t kNMFloatPanel = nm_panels::kFloatPanel;
inline constexpr int64_t kNMInt8Panel = nm_panels::kInt8Panel;
// int8 sums stay exact in int32 (255 · 128 per kept weight) up to this K.
inline constexpr int64_t kNMInt8MaxDepth = 65536;

struct NMPacked {
  DType dtype = DType::kF32;  // of the values
  NMSparseShape shape;
  int64_t panels = 0, panel_bytes = 0;
  int64_t blocks = 0;  // int8: blocks of four kept rows per panel
  AlignedBuffer data;
  std::vector<int32_t> colsum;  // int8: sum of each column's weights (for the activation zero point)

  nm_panels::Panels view() const {
    nm_panels::Panels v;
    v.data = data.data();
    v.panel_bytes = panel_bytes;
    v.K = shape.K;
    v.N = shape.N;
    v.blocks = blocks;
    v.n = shape.n;
    v.half = dtype == DType::kF16;
    v.colsum = colsum.data();
    return v;
  }
};

// Bytes of the panels of a weight of `shape` and `dtype`; nullopt when that overflows. Panels pad
// columns (to 32 or 64) and int8 kept rows (to fours), so a narrow weight packs to many times
// its file size: callers check this against their memory limits first.
std::optional<uint64_t> nm_packed_bytes(DType dtype, const NMSparseShape& shape);

// Whether the runtime takes a weight of this shape: its panels at most 4x the file form plus
// 1 MB (columns narrower than a panel inflate it: a hostile [K, 1] weight would ask ~30x), so a
// session's working copies stay within a few times the model. pack-nm-sparse skips the others.
bool nm_packable(DType dtype, const NMSparseShape& shape);

// An error naming the first group and column whose kept positions repeat (the dense form has
// one place for each).
Status nm_check_positions(const uint8_t* indices, const NMSparseShape& shape);

// Repacks the file form (values, indices as in ir/nm_sparse.h); an error when the positions
// repeat (nm_check_positions) or the shape is not packable. pool may be nullptr.
Result<std::unique_ptr<NMPacked>> nm_pack(const uint8_t* values, const uint8_t* indices, DType dtype,
                                          const NMSparseShape& shape, ThreadPool* pool, PackArena* arena = nullptr);

// One decode row's product with a packed weight:
//  float32 / float16 B: y[0:N] = x[0:K] · B;
//  int8 B: y[n] = float(Σ_k xq[k] · B[k, n] - a_zp · colsum[n]) · (a_scale · scales[per_col ? n : 0]),
//    the sum exact in int32 (DynamicQuantizeMatMul's result); xq holds K uint8 values followed
//    by at least 16 readable bytes (the last block's window).
struct NMGemv : nm_panels::Row {
  const NMPacked* b = nullptr;
};
// Every panel of every product in one parallel loop (the threads meet once). pool may be nullptr.
void nm_gemv_batch(const NMGemv* jobs, size_t n, ThreadPool* pool);

// C[M, N] = A[M, K] · B for float B (prefill), when the fast loops are available (else false:
// the caller widens B and runs the dense GEMM). Each row equals its decode (nm_gemv_batch) bit for bit.
bool nm_gemm_float(const NMPacked& b, const float* A, int64_t M, float* C, ThreadPool* pool);
// The same for int8 B: M rows of uint8 activations K apart (then 16 readable bytes), results N
// apart, with job's zero point and scales; each row equals its decode bit for bit.
bool nm_gemm_int8(const NMGemv& job, int64_t M, ThreadPool* pool);

// Dense rows 4·g0 .. 4·g1 of B from the panels, as float32 (float16 widened) or int8.
// Panels in parallel when pool is given.
void nm_unpack_float(const NMPacked& b, int64_t g0, int64_t g1, float* dense, int64_t ldd, ThreadPool* pool);
void nm_unpack_int8(const NMPacked& b, int64_t g0, int64_t g1, int8_t* dense, int64_t ldd, ThreadPool* pool);

// The fast paths need AVX-512 (F, BW, VBMI, VNNI); tests force the portable ones to compare.
bool nm_fast_available();
void nm_force_portable(bool on);


}  // namespace llmc::rt
