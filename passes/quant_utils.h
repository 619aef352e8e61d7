// Shared by the quantisation passes: weight quantisation per output channel, float16 weight
// conversion, node selection (--exclude, --op-types), and option parsing.
#pragma once
#include <cstdint>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/pass.h"
#include "runtime/thread_pool.h"

namespace llmc {

// A [K, N] float32 weight quantised per column n (the output channel of MatMul(x, W)).
struct QuantizedWeight {
  Tensor values;       // int8 (symmetric) or uint8 (asymmetric), [K, N]
  Tensor scales;       // float32 [N] (or [] when per-tensor)
  Tensor zero_points;  // same dtype as values, shape of scales; empty Tensor when symmetric
  bool symmetric = true;
};

// Symmetric int8: scale = absmax / 127, zero point 0. Asymmetric uint8: range widened to hold
// 0, scale = (max - min) / 255, zp = round(-min / scale). Per column (axis 1) or per row
// (axis 0) unless per_tensor. Fails naming the tensor when it holds NaN or Inf.
// `pool` (optional) splits the work by rows. reduce_range: ONNX Runtime's 7-bit grid (int8
// [-64, 64], uint8 [0, 127]), so u8 x s8 products summed in pairs fit int16: CPUs without VNNI
// (AVX2, AVX-512 without VNNI) saturate there in ONNX Runtime's kernels otherwise.
Result<QuantizedWeight> quantize_weight(const Tensor& w, bool symmetric, bool per_tensor, const std::string& prefix,
                                        rt::ThreadPool* pool = nullptr, int axis = 1, bool reduce_range = false);

// Symmetric int8 per channel along `axis` of a 2-D weight: 1 = columns of [K, N] (MatMul),
// 0 = rows (a [N, K] Gemm weight with transB, or an embedding table whose row scale travels
// with each gathered row). The values keep w's layout.
Result<QuantizedWeight> quantize_weight_along(const Tensor& w, int axis, bool per_tensor, rt::ThreadPool* pool = nullptr,
                                              bool reduce_range = false);

// float32 -> float16 with quantize-fp16's clamps (finite |x| > max_finite -> +-max_finite,
// 0 < |x| < min_positive -> +-min_positive; both counted into *large / *small), rounded to
// nearest even exactly as rt::float_to_half (NaN bits included). Same name, dims and doc
// string. Split across `pool` (optional); a weight mapped from a file hands its pages back as
// it is converted.
Tensor convert_weight_fp16(const Tensor& t, float max_finite, float min_positive, rt::ThreadPool* pool,
                           int64_t* large, int64_t* small);

// Why input `index` of `n` is not a constant 2-D float32 weight ("" when it is; sets *weight).
// The messages are the per-node skip reasons the quantisation passes report.
std::string weight_unsuitable(const Graph& g, const Node& n, size_t index, const Tensor** weight);

// [r, c] float32 -> [c, r] float32 (same name).
Tensor transpose_2d(const Tensor& w);

// The float the quantised weight stands for (for tests and error reports).
float dequantize_weight(const QuantizedWeight& q, int64_t k, int64_t n);

// The two products a low-rank pass (passes/lowrank_common.h) makes of one layer are named
// after it with these suffixes (nodes and weights).
inline constexpr const char* kLowRankASuffix = ".lowrank_a";
inline constexpr const char* kLowRankBSuffix = ".lowrank_b";

// --exclude: comma-separated names or regular expressions, matched against node names and
// weight names, and against the layer name of a low-rank factor (the name without its
// suffix), so a layer excluded by name stays excluded after factorisation. Remembers which
// patterns matched anything, to warn about ones that did not.
class NodeFilter {
 public:
  static Result<NodeFilter> parse(const std::string& patterns);
  bool excluded(const std::string& node_name, const std::string& weight_name);
  std::vector<std::string> unmatched() const;

 private:
  std::vector<std::pair<std::string, std::regex>> patterns_;
  std::set<size_t> matched_;
};


}  // namespace llmc
