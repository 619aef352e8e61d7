#include "passes/quant_utils.h"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <mutex>
#include <sstream>

#include "runtime/file_pages.h"
#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/kernel_util.h"

namespace llmc {

namespace {
// Round half to even for |x| < 2^22 (quantised values here are within +-255): adding 1.5 * 2^23
// pushes the fraction out of the mantissa under the default rounding mode. std::nearbyint is a
// libm call on baseline x86-64 and dominated quantising a 110M model.
inline float round_even_small(float x) { return (x + 12582912.0f) - 12582912.0f; }

// The loops below are written so the compiler vectorises them (and cloned per ISA): selections
// (min, max, clamp), one division and one rounding per element, so every clone gives the bits of
// the scalar code. A 110M model's weights went through the scalar per-element loops at ~11 ns an
// element.

// Bit 31 of the result is set when some x[i] is NaN or +-Inf: |bits| + 2^23 carries into bit 31
// exactly when the exponent is all ones.
inline uint32_t nonfinite_bits(uint32_t acc, float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return acc | ((b & 0x7fffffffu) + 0x00800000u);
}
inline bool any_nonfinite(uint32_t acc) { return (acc & 0x80000000u) != 0; }

// lo[i] = min(lo[i], x[i]), hi[i] = max(hi[i], x[i]) (per-column ranges of one row).
__attribute__((target_clones("avx2", "default"))) uint32_t columns_range(const float* x, int64_t n, float* lo,
                                                                        float* hi) {
  uint32_t acc = 0;
  for (int64_t i = 0; i < n; ++i) {
    lo[i] = std::min(lo[i], x[i]);
    hi[i] = std::max(hi[i], x[i]);
    acc = nonfinite_bits(acc, x[i]);
  }
  return acc;
}

// [lo, hi] widened to cover x[0, n): 16 running lanes (and 16 NaN/Inf accumulators, so the
// lanes vectorise as a whole), folded at the end (min and max select, so the order of the
// fold changes nothing but the sign of a zero, which no scale sees).
__attribute__((target_clones("avx2", "default"))) uint32_t span_range(const float* x, int64_t n, float& lo,
                                                                     float& hi) {
  constexpr int kLanes = 16;
  float l[kLanes], h[kLanes];
  uint32_t a[kLanes];
  for (int j = 0; j < kLanes; ++j) l[j] = lo, h[j] = hi, a[j] = 0;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float v = x[i + j];
      l[j] = std::min(l[j], v);
      h[j] = std::max(h[j], v);
      a[j] = nonfinite_bits(a[j], v);
    }
  uint32_t acc = 0;
  for (; i < n; ++i) {
    l[0] = std::min(l[0], x[i]);
    h[0] = std::max(h[0], x[i]);
    acc = nonfinite_bits(acc, x[i]);
  }
  for (int j = 0; j < kLanes; ++j) lo = std::min(lo, l[j]), hi = std::max(hi, h[j]), acc |= a[j];
  return acc;
}

// One row of values: x / scale rounded, clamped to the grid (symmetric int8 or uint8 with zero
// points). PerElement: scale[i] and zp[i] per column; else scale[0] and zp[0] for the row.
// Clang (the sanitizer and fuzz build) cannot clone templates: there they get the default ISA.
#if defined(__clang__)
#define LLMC_TEMPLATE_CLONES
#else
#define LLMC_TEMPLATE_CLONES __attribute__((target_clones("avx2", "default")))
#endif
template <bool PerElement>
LLMC_TEMPLATE_CLONES void quantize_row_sym(const float* x, int64_t n, const float* scale,
                                                                        float qmax, int8_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float r = round_even_small(x[i] / scale[PerElement ? i : 0]);
    out[i] = static_cast<int8_t>(std::clamp(r, -qmax, qmax));
  }
}
template <bool PerElement>
LLMC_TEMPLATE_CLONES void quantize_row_asym(const float* x, int64_t n, const float* scale,
                                                                         const float* zp, float qmax, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float r = round_even_small(x[i] / scale[PerElement ? i : 0]);
    out[i] = static_cast<uint8_t>(std::clamp(r + zp[PerElement ? i : 0], 0.f, qmax));
  }
}

// The first NaN/Inf of row x[0, n) (one is known to be there).
int64_t first_nonfinite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return n;
}

// y = x with the clamps of the header's Math (finite |x| > max_finite -> +-max_finite,
// 0 < |x| < min_positive -> +-min_positive), counting both; returns whether x holds a NaN.
// Selections only, so the vectorised clones give the scalar bits.
__attribute__((target_clones("avx2", "default"))) bool clamp_block(const float* x, float* y, int n, float max_finite,
                                                                   float min_positive, int64_t& large,
                                                                   int64_t& small) {
  int nl = 0, ns = 0, nan = 0;  // bitwise tests, no branches: the loop vectorises
  for (int i = 0; i < n; ++i) {
    const float v = x[i], a = std::fabs(v);
    const bool big = (a > max_finite) & (a <= FLT_MAX);
    const bool tiny = (a > 0.f) & (a < min_positive);
    const float clamped = std::copysign(big ? max_finite : min_positive, v);
    y[i] = (big | tiny) ? clamped : v;
    nl += big;
    ns += tiny;
    nan |= v != v;
  }
  large += nl, small += ns;
  return nan != 0;
}

// float32 -> clamped float16, n values. The rounding is the runtime's vectorised conversion
// (F16C: round to nearest even, as rt::float_to_half); a block holding a NaN goes through
// float_to_half, whose NaN bits (quiet, payload dropped) the hardware would not give.
void convert_span(const float* x, uint16_t* h, int64_t n, float max_finite, float min_positive, int64_t& large,
                  int64_t& small) {
  constexpr int kBlock = 1024;
  float y[kBlock];
  for (int64_t i = 0; i < n; i += kBlock) {
    const int m = static_cast<int>(std::min<int64_t>(kBlock, n - i));
    if (!clamp_block(x + i, y, m, max_finite, min_positive, large, small)) {
      rt::floats_to_halfs(y, h + i, m);
    } else {
      for (int j = 0; j < m; ++j) h[i + j] = rt::float_to_half(y[j]);
    }
  }
}

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
  const bool column_channels = axis == 1 && !per_tensor;
  over_rows([&](int64_t k0, int64_t k1) {
    std::vector<float> l(row_channels ? 0 : channels, 0.f), h(row_channels ? 0 : channels, 0.f);
    int64_t first_bad = K * N;
    for (int64_t k = k0; k < k1 && first_bad == K * N; ++k) {
      const float* row = p + k * N;
      const uint32_t acc = column_channels ? columns_range(row, N, l.data(), h.data())
                           : row_channels  ? span_range(row, N, lo[k], hi[k])
                                           : span_range(row, N, l[0], h[0]);
      if (any_nonfinite(acc)) first_bad = k * N + first_nonfinite(row, N);
    }
    std::lock_guard<std::mutex> lock(merge_mu);
    bad = std::min(bad, first_bad);
    if (!row_channels)
      for (int64_t c = 0; c < channels; ++c) lo[c] = std::min(lo[c], l[c]), hi[c] = std::max(hi[c], h[c]);
  });
  if (bad < K * N)
    return invalid_input("weight '", w.name(), "' holds ", std::isnan(p[bad]) ? "NaN" : "Inf", " at [", bad / N, ", ",
                         bad % N, "]: refusing to quantise it");
  std::vector<float> scale(channels), zpf(channels, 0.f);
  std::vector<uint8_t> zpu(channels, 0);
  for (int64_t c = 0; c < channels; ++c) {
    if (symmetric) {
      const float absmax = std::max(-lo[c], hi[c]);
      scale[c] = absmax > 0 ? absmax / qmax_sym : 1.f;
    } else {
      const float range = hi[c] - lo[c];
      scale[c] = range > 0 ? range / qmax_asym : 1.f;
      zpu[c] = static_cast<uint8_t>(std::clamp(round_even_small(-lo[c] / scale[c]), 0.f, qmax_asym));
      zpf[c] = zpu[c];
    }
  }
  QuantizedWeight q;
  q.symmetric = symmetric;
  std::vector<int64_t> sdims = per_tensor ? std::vector<int64_t>{} : std::vector<int64_t>{channels};
  q.scales = Tensor::from_vector(prefix + "_scale", DType::kF32, sdims, scale);
  // Written straight into the tensor's own buffer (every byte, so no zero fill first).
  const DType qtype = symmetric ? DType::kI8 : DType::kU8;
  q.values = Tensor::uninitialized(prefix + "_quantized", qtype, {K, N});
  uint8_t* out = q.values.mutable_data();
  over_rows([&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const float* s = scale.data() + (row_channels ? k : 0);
      const float* z = zpf.data() + (row_channels ? k : 0);
      const float* row = p + k * N;
      uint8_t* o = out + k * N;
      if (symmetric) {
        if (column_channels) quantize_row_sym<true>(row, N, s, qmax_sym, reinterpret_cast<int8_t*>(o));
        else quantize_row_sym<false>(row, N, s, qmax_sym, reinterpret_cast<int8_t*>(o));
      } else {
        if (column_channels) quantize_row_asym<true>(row, N, s, z, qmax_asym, o);
        else quantize_row_asym<false>(row, N, s, z, qmax_asym, o);
      }
    }
  });
  if (!symmetric) q.zero_points = Tensor::from_vector(prefix + "_zero_point", DType::kU8, sdims, zpu);
  return q;
}

// Converted in 2 MB pieces across the pool's threads, straight into the new tensor. A weight
// mapped from the input file is read once: each piece's pages go back to the kernel as soon
// as it is converted, so the resident set holds the float16 model plus a few pieces, not the
// float32 model too (the pieces start at 2 MB boundaries of the mapping: whole pages; fewer,
// larger releases also mean fewer TLB shootdowns, each an interrupt to the other core).
Tensor convert_weight_fp16(const Tensor& t, float max_finite, float min_positive, rt::ThreadPool* pool,
                           int64_t* large, int64_t* small) {
  const int64_t n = t.numel();
  Tensor r = Tensor::uninitialized(t.name(), DType::kF16, t.dims());
  r.set_doc_string(t.doc_string());
  uint16_t* h = reinterpret_cast<uint16_t*>(r.mutable_data());
  const float* p = t.data_as<float>();
  constexpr int64_t kPiece = int64_t(512) << 10;  // floats
  const bool release = t.nbytes() >= (size_t(1) << 20) && rt::in_read_only_file_mapping(p, t.nbytes());
  const int64_t ahead = static_cast<int64_t>(reinterpret_cast<uintptr_t>(p) % (kPiece * 4) / 4);  // floats before p
  const int64_t pieces = (n + ahead + kPiece - 1) / kPiece;
  std::atomic<int64_t> clamped_large{0}, clamped_small{0};
  auto convert = [&](int64_t b, int64_t e) {
    int64_t nl = 0, ns = 0;
    for (int64_t k = b; k < e; ++k) {
      const int64_t i0 = std::max<int64_t>(0, k * kPiece - ahead), i1 = std::min(n, (k + 1) * kPiece - ahead);
      convert_span(p + i0, h + i0, i1 - i0, max_finite, min_positive, nl, ns);
      if (release) rt::drop_file_pages(p + i0, static_cast<size_t>(i1 - i0) * 4);
    }
    clamped_large += nl, clamped_small += ns;
  };
  if (pool && pieces > 1) pool->parallel_for(pieces, 1, convert);
  else convert(0, pieces);
  *large = clamped_large, *small = clamped_small;
  return r;
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
  // The two products a low-rank pass made of one layer answer to the layer's own names too.
  auto layer = [](const std::string& name) {
    for (const char* suffix : {kLowRankASuffix, kLowRankBSuffix}) {
      const size_t n = std::strlen(suffix);
      if (name.size() > n && name.compare(name.size() - n, n, suffix) == 0) return name.substr(0, name.size() - n);
    }
    return name;
  };
  const std::string node_layer = layer(node_name), weight_layer = layer(weight_name);
  for (size_t i = 0; i < patterns_.size(); ++i) {
    const auto& [text, re] = patterns_[i];
    for (const std::string* name : {&node_name, &weight_name, &node_layer, &weight_layer})
      if (*name == text || std::regex_match(*name, re)) {
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
