// Block-wise weight-only quantisation to 4 or 8 bits, as ONNX Runtime's MatMulNBits stores it:
// one row per output feature (B = Wᵀ, [N, K]), cut along K into blocks of `block` inputs, each
// block with its own scale and integer zero point, dequantised as (q − zp) · scale.
//
// Ranges are chosen as ONNX Runtime's quantiser (MLAS) chooses them, so RTN here and there give
// the same codes:
//   asymmetric  range [min(0, min w), max(0, max w)], scale = (max − min) / (2^bits − 1),
//               zp = round(−min / scale) clamped to the code range;
//   symmetric   v = the value of largest magnitude (sign kept), scale = v / −2^(bits−1), zp =
//               2^(bits−1): v lands on code 0, the grid's longer half, so no code is wasted
//               (the scale may be negative; the formula does not care).
// Codes are clamp(roundf(w · (1 / scale) + zp)) in float (half away from zero, as MLAS rounds);
// a zero scale gives zp everywhere (the block dequantises to 0). A tie in the symmetric range
// (+v and −v both present) takes −v, as MLAS does.
// GPTQ calls quantize_code with the ranges it picked inside its sweep; RTN calls rtn_codes.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/status.h"
#include "ir/tensor.h"
#include "runtime/thread_pool.h"

namespace llmc {

struct NBitsFormat {
  int bits = 4;
  int64_t block = 32;
  bool symmetric = false;
  int max_code() const { return (1 << bits) - 1; }
  int64_t blocks(int64_t K) const { return (K + block - 1) / block; }
  std::string describe() const;  // "int4 asymmetric, block 32"
};

// Why `block` is not a block size MatMulNBits accepts ("" when it is): a power of two ≥ 16.
std::string block_size_problem(int64_t block);

struct BlockRange {
  float scale = 0;
  int zero_point = 0;
  float reciprocal = 0;  // 1 / scale (0 for a zero scale), as the codes are computed
};

// The range of `count` values of one block (count < block for a padded last block).
BlockRange block_range(const float* w, int64_t count, const NBitsFormat& f);
BlockRange block_range(const double* w, int64_t count, const NBitsFormat& f);

inline int quantize_code(double w, const BlockRange& r, int max_code) {
  const float q = __builtin_roundf(float(w) * r.reciprocal + float(r.zero_point));
  return q < 0 ? 0 : q > float(max_code) ? max_code : int(q);
}
inline double dequantize_code(int q, const BlockRange& r) { return double(q - r.zero_point) * double(r.scale); }

// Codes of a weight, one byte per element, rows of K, with a range per (row, block): what every
// method produces before packing.
struct NBitsCodes {
  int64_t K = 0, N = 0;
  NBitsFormat format;
  std::vector<uint8_t> q;          // [N, K]
  std::vector<BlockRange> ranges;  // [N, blocks(K)]
};

// Round-to-nearest of `w_nk` ([N, K], row n = output feature n), rows split across `pool`.
NBitsCodes rtn_codes(const float* w_nk, int64_t N, int64_t K, const NBitsFormat& f, rt::ThreadPool* pool);

// MatMulNBits' constant inputs, named as ONNX Runtime's quantiser names them: `<name>_Q4` (or
// _Q8) uint8 [N, blocks, block·bits/8], `<name>_scales` float [N, blocks], and (asymmetric)
// `<name>_zero_points` uint8 [N, ceil(blocks·bits/8)]; elements and zero points packed low bits
// first, K padded with code 0 (as ONNX Runtime pads; the product never reads it). Sizes are
// overflow-checked.
struct NBitsTensors {
  Tensor b, scales;
  std::optional<Tensor> zero_points;
};
Result<NBitsTensors> pack_nbits(const NBitsCodes& codes, const std::string& name, rt::ThreadPool* pool = nullptr);

// (q − zp) · scale of every element, [N, K] (tests and error measurements).
std::vector<float> dequantize_codes(const NBitsCodes& codes);

}  // namespace llmc
