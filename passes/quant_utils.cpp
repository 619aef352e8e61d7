#include "passes/quant_utils.h"

#include <mutex>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace llmc {

namespace {
// Round half to even for |x| < 2^22 (quantised values here are within +-255): adding 1.5 * 2^23
// pushes the fraction out of the mantissa under the default rounding mode. std::nearbyint is a
// libm call on baseline x86-64 and dominated quantising a 110M model.
inline float round_even_small(float x) { return (x + 12582912.0f) - 12582912.0f; }
}  // namespace

Result<QuantizedWeight> quantize_weight(const Tensor& w, bool symmetric, bool per_tensor, const std::string& prefix,
                                        rt::ThreadPool* pool, int axis, bool reduce_range) {
  // ONNX Runtime's reduce_range grid: int8 [-64, 64], uint8 [0, 127].
  const float qmax_sym = reduce_range ? 64.f : 127.f, qmax_asym = reduce_range ? 127.f : 255.f;
  if (w.dtype() != DType::kF32 || w.dims().size() != 2)
    return invalid_input("weight '", w.name(), "' must be a 2-D float32 tensor, got ", dtype_name(w.dtype()), " ",
                         shape_str(w.dims()));
  if (axis != 0 && axis != 1) return invalid_input("weight '", w.name(), "': quantisation axis must be 0 or 1, got ", axis);
  const int64_t K = w.dims()[0], N = w.dims()[1];
  const float* p = w.data_as<float>();
  const int64_t channels = per_tensor ? 1 : axis == 1 ? N : K;
  auto channel = [&](int64_t k, int64_t n) { return per_tensor ? 0 : axis == 1 ? n : k; };
  // Rows are split across the pool's threads; each slice keeps its own ranges, merged after.
  auto over_rows = [&](auto&& fn) {
    if (pool && K * N > (1 << 16)) pool->parallel_for(K, 1, fn);
    else fn(0, K);
  };
  std::vector<float> lo(channels, 0.f), hi(channels, 0.f);  // ranges always include 0
  int64_t bad = K * N;                                       // first NaN/Inf, if any
  std::mutex merge_mu;
  // Per-row channels (axis 0) belong to one slice each and are written in place; otherwise
  // each slice keeps its own ranges, merged once at the end.
  const bool row_channels = axis == 0 && !per_tensor;
  over_rows([&](int64_t k0, int64_t k1) {
    std::vector<float> l(row_channels ? 0 : channels, 0.f), h(row_channels ? 0 : channels, 0.f);
    float* L = row_channels ? lo.data() : l.data();
    float* H = row_channels ? hi.data() : h.data();
    int64_t first_bad = K * N;
    for (int64_t k = k0; k < k1; ++k)
      for (int64_t n = 0; n < N; ++n) {
        const float x = p[k * N + n];
        const int64_t c = channel(k, n);
        L[c] = std::min(L[c], x);
        H[c] = std::max(H[c], x);
        if (!std::isfinite(x) && first_bad == K * N) first_bad = k * N + n;
      }
    std::lock_guard<std::mutex> lock(merge_mu);
    bad = std::min(bad, first_bad);
    if (!row_channels)
      for (int64_t c = 0; c < channels; ++c) lo[c] = std::min(lo[c], l[c]), hi[c] = std::max(hi[c], h[c]);
  });
  if (bad < K * N)
    return invalid_input("weight '", w.name(), "' holds ", std::isnan(p[bad]) ? "NaN" : "Inf", " at [", bad / N, ", ",
                         bad % N, "]: refusing to quantise it");
  std::vector<float> scale(channels);
  std::vector<uint8_t> zpu(channels, 0);
  for (int64_t c = 0; c < channels; ++c) {
    if (symmetric) {
      const float absmax = std::max(-lo[c], hi[c]);
      scale[c] = absmax > 0 ? absmax / qmax_sym : 1.f;
    } else {
      const float range = hi[c] - lo[c];
      scale[c] = range > 0 ? range / qmax_asym : 1.f;
      zpu[c] = static_cast<uint8_t>(std::clamp(round_even_small(-lo[c] / scale[c]), 0.f, qmax_asym));
    }
  }
  QuantizedWeight q;
  q.symmetric = symmetric;
  std::vector<int64_t> sdims = per_tensor ? std::vector<int64_t>{} : std::vector<int64_t>{channels};
  q.scales = Tensor::from_vector(prefix + "_scale", DType::kF32, sdims, scale);
  // Written straight into the tensor's own buffer (no staging vector and copy).
  q.values = Tensor::zeros(prefix + "_quantized", symmetric ? DType::kI8 : DType::kU8, {K, N});
  uint8_t* out = q.values.mutable_data();
  over_rows([&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t c = channel(k, n);
        const float r = round_even_small(p[k * N + n] / scale[c]);
        out[k * N + n] = symmetric ? static_cast<uint8_t>(static_cast<int8_t>(std::clamp(r, -qmax_sym, qmax_sym)))
                                   : static_cast<uint8_t>(std::clamp(r + zpu[c], 0.f, qmax_asym));
      }
  });
  if (!symmetric) q.zero_points = Tensor::from_vector(prefix + "_zero_point", DType::kU8, sdims, zpu);
  return q;
}

std::string weight_unsuitable(const Graph& g, const Node& n, size_t index, const Tensor** weight) {
  const Tensor* w = g.find_initializer(n.inputs[index]);
  if (!w || g.is_graph_input(n.inputs[index])) return "weight is not a constant initializer";
  if (w->dtype() != DType::kF32) return "weight is " + dtype_name(w->dtype()) + ", not float32";
  if (w->dims().size() != 2) return "weight is not 2-D " + shape_str(w->dims());
  *weight = w;
  return "";
}

Tensor transpose_2d(const Tensor& w) {
  const int64_t r = w.dims()[0], c = w.dims()[1];
  std::vector<float> t(static_cast<size_t>(r * c));
  const float* p = w.data_as<float>();
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) t[j * r + i] = p[i * c + j];
  return Tensor::from_vector(w.name(), DType::kF32, {c, r}, t);
}

Result<QuantizedWeight> quantize_weight_along(const Tensor& w, int axis, bool per_tensor, rt::ThreadPool* pool,
                                              bool reduce_range) {
  return quantize_weight(w, true, per_tensor, w.name(), pool, axis, reduce_range);
}

float dequantize_weight(const QuantizedWeight& q, int64_t k, int64_t n) {
  const int64_t N = q.values.dims()[1];
  const int64_t c = q.scales.dims().empty() ? 0 : n;
  const float s = q.scales.data_as<float>()[c];
  if (q.symmetric) return s * q.values.data_as<int8_t>()[k * N + n];
  return s * (float(q.values.data_as<uint8_t>()[k * N + n]) - float(q.zero_points.data_as<uint8_t>()[c]));
}

Result<NodeFilter> NodeFilter::parse(const std::string& patterns) {
  NodeFilter f;
  for (const auto& p : split_list(patterns)) {
    try {
      f.patterns_.emplace_back(p, std::regex(p));
    } catch (const std::regex_error& e) {
      return invalid_input("--exclude pattern '", p, "' is not a valid regular expression: ", e.what());
    }
  }
  return f;
}

bool NodeFilter::excluded(const std::string& node_name, const std::string& weight_name) {
  for (size_t i = 0; i < patterns_.size(); ++i) {
    const auto& [text, re] = patterns_[i];
    if (node_name == text || weight_name == text || std::regex_match(node_name, re) ||
        std::regex_match(weight_name, re)) {
      matched_.insert(i);
      return true;
    }
  }
  return false;
}

std::vector<std::string> NodeFilter::unmatched() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < patterns_.size(); ++i)
    if (!matched_.count(i)) out.push_back(patterns_[i].first);
  return out;
}

}  // namespace llmc
