// Block-wise 4/8-bit weight-only matrix products (ONNX Runtime's com.microsoft MatMulNBits):
//   Y[m, n] = sum_k A[m, k] · (q[n, k] - zp[n, b]) · scale[n, b],  b = k / block_size.
//
// The weights are repacked once (nbits_pack) into 16-column panels, block after block, each
// block holding its weights, then its 16 scales, then (when not one constant) its zero points,
// so decode reads one sequential stream per panel:
//   4-bit: block_size/8 chunks of 64 bytes; chunk c, byte 4·col + j = q[8c + j] | q[8c + 4 + j] << 4
//   8-bit: block_size/4 chunks of 64 bytes; chunk c, byte 4·col + j = q[4c + j]
// i.e. four consecutive k per 32-bit lane, the operand layout of vpdpbusd (AVX-512 VNNI) and of
// vpmaddubsw + vpmaddwd (AVX2). The layout is the same for every ISA variant, so a session's
// packed weights serve whichever variant runs.
//
// Two ways to compute (ONNX Runtime's accuracy_level):
//  - int8 (accuracy_level 4, MLAS's CompInt8): each row of A is quantised per block to int8,
//    scale_a = amax / 127, q_a = round-half-even(a · (127 / amax)) as MLAS does, and
//    y = sum_b scale_w · scale_a · (sum q_w q_a - zp · sum q_a) with exact int32 block sums.
//    Float zero points enter as m = scale_w · zp: y -= m · scale_a · sum q_a.
//  - float (any other level): each block is dequantised to float in cache, float32 products.
//
// Three ISA variants are compiled from nbits_gemm_kernels.inc and chosen at run time from
// CPUID (as qgemm's), with a force hook for tests; int8-mode prefill rows use AMX tiles
// (nbits_gemm_amx.cpp) where the CPU and OS allow, bit-identical to the AVX-512 VNNI tiles.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/aligned_buffer.h"
#include "runtime/kernels/nbits_layout.h"
#include "runtime/kernels/qgemm.h"
#include "runtime/thread_pool.h"

namespace llmc::rt {

QIsa nbits_active_isa();
void nbits_force_isa(QIsa isa);  // clamped to qgemm_detected_isa()
// Prefill rows (8 or more) in int8 mode use AMX tiles when the CPU and OS allow and the active
// variant is AVX-512 VNNI (bit-identical results); tests switch it off to cover the VNNI tiles.
void nbits_use_amx(bool on);
bool nbits_amx_active();

struct NBitsPacked {
  int64_t K = 0, N = 0, bits = 4, block_size = 32, k_blocks = 0, panels = 0;
  NBitsZp zp_mode = NBitsZp::kUniform;
  int32_t zp_uniform = 8;
  int64_t weight_bytes = 0;  // per block and panel
  int64_t block_bytes = 0;   // weights + scales + zero points, per block and panel
  int64_t panel_bytes = 0;   // k_blocks · block_bytes
  NBitsLayout layout{};      // the above, for the panel kernels
  AlignedBuffer data;
};

// MatMulNBits' tensors: B [N, k_blocks, blob], scales [N·k_blocks], zero points either packed
// uint8 [N, ceil(k_blocks·bits/8)] (zp_u8) or float [N·k_blocks] (zp_f) or neither.
struct NBitsWeights {
  int64_t K = 0, N = 0, bits = 4, block_size = 32;
  const uint8_t* B = nullptr;
  const float* scales = nullptr;
  const uint8_t* zp_u8 = nullptr;
  const float* zp_f = nullptr;
};

// Packs the weights (pool may be nullptr).
std::unique_ptr<NBitsPacked> nbits_pack(const NBitsWeights& w, ThreadPool* pool, PackArena* arena = nullptr);

// Rows of A quantised per block (int8 mode): q [M, Kp] (Kp = k_blocks · block_size, padding 0),
// scale and sum of q per [M, k_blocks].
struct NBitsQuantA {
  int64_t M = 0, Kp = 0, k_blocks = 0;
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<int32_t> sum;
  std::vector<int32_t> corr, corr_zp;  // nbits_gemm_int8's scratch
};
// Rows nbits_quantize_a allocates for M rows of A: AMX reads whole 16-row tiles from wherever
// a row slice starts (a multiple of 8, the plan's row step), so from 8 rows on, up to 16 zero
// rows follow the last multiple of 8.
int64_t nbits_quantized_rows(int64_t M);
void nbits_quantize_a(const float* A, int64_t M, int64_t K, int64_t lda, int64_t block_size, NBitsQuantA& out,
                      ThreadPool* pool);

// One product of a shared activation: Y [M, N] (row stride ldy) = A · W + bias (may be null).
struct NBitsProduct {
  const NBitsPacked* w = nullptr;
  const float* bias = nullptr;
  float* Y = nullptr;
  int64_t ldy = 0;
};

// int8 mode, all products in one parallel loop (every product's K and block_size equal qa's).
void nbits_gemm_int8(NBitsQuantA& qa, const NBitsProduct* products, size_t n, ThreadPool* pool);
// float mode; A [M, K] with row stride lda (every product's K and block_size equal).
void nbits_gemm_float(const float* A, int64_t M, int64_t lda, const NBitsProduct* products, size_t n,
                      ThreadPool* pool);

}  // namespace llmc::rt
