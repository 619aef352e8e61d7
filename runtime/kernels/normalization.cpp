// Softmax, LogSoftmax, LayerNormalization, RMSNormalization and the onnxruntime contrib norms
// (SimplifiedLayerNormalization = RMSNorm, SkipLayerNormalization, SkipSimplifiedLayerNormalization).
//
// Softmax/LogSoftmax: opset >= 13 normalises along one axis (default -1); opset < 13 flattens
// the input to 2-D at `axis` (default 1) and normalises each row. Max is subtracted first;
// exp runs in the input type, sums accumulate in double. Norm statistics are computed in double.
// float16/bfloat16 inputs run through float32 and are rounded back (statistics outputs stay float32).
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/rowwise.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {
namespace {

// ---- Softmax / LogSoftmax ----

inline double exp_of(double x) { return std::exp(x); }
inline float exp_of(float x) { return exp_f32(x); }

// Sum of f(i), i < n, in double with four independent accumulators (keeps the adds pipelined).
template <typename F>
double sum_double(int64_t n, F&& f) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += f(i);
    a1 += f(i + 1);
    a2 += f(i + 2);
    a3 += f(i + 3);
  }
  for (; i < n; ++i) a0 += f(i);
  return (a0 + a1) + (a2 + a3);
}

template <typename T>
T max_of(const T* v, int64_t n) {
  T m[4] = {-std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity(),
            -std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity()};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) m[j] = v[i + j] > m[j] ? v[i + j] : m[j];
  for (; i < n; ++i) m[0] = v[i] > m[0] ? v[i] : m[0];
  return std::max(std::max(m[0], m[1]), std::max(m[2], m[3]));
}

template <bool kLog, typename T>
void softmax_row(const T* x, T* y, int64_t n) {
  const T m = max_of(x, n);
  for (int64_t i = 0; i < n; ++i) y[i] = exp_of(x[i] - m);  // for LogSoftmax, scratch
  const double s = sum_double(n, [&](int64_t i) { return static_cast<double>(y[i]); });
  if constexpr (kLog) {
    const T ls = static_cast<T>(std::log(s));
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) - ls;  // not x - (m + ls): m may be large
  } else {
    const T inv = static_cast<T>(1.0 / s);
    for (int64_t i = 0; i < n; ++i) y[i] *= inv;
  }
}

template <bool kLog>
Status softmax_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const Value& x = ctx.in(0);
  const bool legacy = ctx.opset() < 13;
  const int rank = x.rank();
  LLMC_ASSIGN_OR_RETURN(const int axis, normalize_axis(ctx.attr_int("axis", legacy ? 1 : -1), rank));
  const auto& s = x.shape();
  int64_t outer = prod(s, 0, axis), r, inner;
  if (legacy) {  // coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])]
    r = prod(s, axis, s.size());
    inner = 1;
  } else {
    r = rank == 0 ? 1 : s[axis];
    inner = prod(s, axis + 1, s.size());
  }
  return dispatch_float(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    const T* xd = x.data<T>();
    T* yd = ctx.output(0, x.dtype(), x.shape()).template mutable_data<T>();
    if (inner == 1) {
      ctx.pool().parallel_for(outer, grain_for(r * 4), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) softmax_row<kLog>(xd + o * r, yd + o * r, r);
      });
      return Status::ok();
    }
    // Along a middle axis: whole rows of `inner` values at a time.
    ctx.pool().parallel_for(outer * inner, grain_for(r * 4), [&](int64_t b, int64_t e) {
      std::vector<T> m;
      std::vector<double> sum;
      for_segments(b, e, inner, [&](int64_t o, int64_t i0, int64_t i1) {
        const int64_t w = i1 - i0;
        const T* xb = xd + o * r * inner + i0;
        T* yb = yd + o * r * inner + i0;
        m.assign(w, -std::numeric_limits<T>::infinity());
        sum.assign(w, 0.0);
        for (int64_t k = 0; k < r; ++k)
          for (int64_t i = 0; i < w; ++i) m[i] = std::max(m[i], xb[k * inner + i]);
        for (int64_t k = 0; k < r; ++k)
          for (int64_t i = 0; i < w; ++i) {
            const T ex = exp_of(xb[k * inner + i] - m[i]);
            if constexpr (!kLog) yb[k * inner + i] = ex;
            sum[i] += ex;
          }
        for (int64_t i = 0; i < w; ++i)
          sum[i] = kLog ? std::log(sum[i]) : 1.0 / sum[i];
        for (int64_t k = 0; k < r; ++k)
          for (int64_t i = 0; i < w; ++i) {
            if constexpr (kLog) yb[k * inner + i] = (xb[k * inner + i] - m[i]) - static_cast<T>(sum[i]);
            else yb[k * inner + i] *= static_cast<T>(sum[i]);
          }
      });
    });
    return Status::ok();
  });
}

// ---- row normalisation shared by LayerNorm / RMSNorm and the contrib ops ----

// `p` (scale or bias) broadcast over the normalised dims x.shape[axis:], as a dense vector.
// p must broadcast to x and be 1 on every dim before `axis`.
Result<std::vector<double>> expand_param(const Value& p, const std::vector<int64_t>& xs, int axis, const char* what) {
  const int rank = static_cast<int>(xs.size()), pr = p.rank();
  std::vector<int64_t> norm_shape(xs.begin() + axis, xs.end()), q;
  bool ok = pr <= rank;
  for (int j = 0; ok && j < pr; ++j) {
    const int d = rank - pr + j;
    const int64_t pd = p.shape()[j];
    if (d < axis) ok = pd == 1;
    else ok = pd == 1 || pd == xs[d], q.push_back(pd);
  }
  if (!ok)
    return invalid_input(what, " shape ", shape_str(p.shape()), " does not broadcast to the normalized dims ",
                         shape_str(norm_shape), " of input shape ", shape_str(xs), " (axis ", axis, ")");
  const std::vector<int64_t> st = broadcast_strides(q, norm_shape);
  const int64_t n = shape_numel(norm_shape);
  std::vector<double> out(static_cast<size_t>(n));
  Status s = dispatch_float(p.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    const T* pd = p.data<T>();
    for (int64_t i = 0; i < n; ++i) {
      int64_t rem = i, off = 0;
      for (size_t d = norm_shape.size(); d-- > 0;) {
        off += (rem % norm_shape[d]) * st[d];
        rem /= norm_shape[d];
      }
      out[i] = static_cast<double>(pd[off]);
    }
    return Status::ok();
  });
  if (!s.is_ok()) return s;
  return out;
}

struct NormSpec {
  bool center = true;  // LayerNorm (subtract the mean) vs RMSNorm
  double eps = 1e-5;
  const double* scale = nullptr;
  const double* bias = nullptr;  // may be null
};

// Normalises one row of n values; returns (mean, inv_std). `y` may alias nothing in x.
template <typename T, typename X>
std::pair<double, double> norm_row(const X* x, T* y, int64_t n, const NormSpec& sp) {
  const double mean = sp.center ? sum_double(n, [&](int64_t i) { return static_cast<double>(x[i]); }) / static_cast<double>(n) : 0.0;
  const double var = sum_double(n, [&](int64_t i) {
    const double d = static_cast<double>(x[i]) - mean;
    return d * d;
  }) / static_cast<double>(n);
  const double inv = 1.0 / std::sqrt(var + sp.eps);
  if (sp.bias) {
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>((static_cast<double>(x[i]) - mean) * inv * sp.scale[i] + sp.bias[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>((static_cast<double>(x[i]) - mean) * inv * sp.scale[i]);
  }
  return {mean, inv};
}

// Writes per-row statistics to output `i` (when requested) with dtype `dt` and shape `shape`.
Status write_stats(KernelContext& ctx, size_t i, DType dt, const std::vector<int64_t>& shape, const std::vector<double>& v) {
  if (!ctx.wants_output(i)) return Status::ok();
  return dispatch_float(dt, [&](auto t) -> Status {
    using U = decltype(t);
    U* d = ctx.output(i, dt, shape).template mutable_data<U>();
    for (size_t k = 0; k < v.size(); ++k) d[k] = static_cast<U>(v[k]);
    return Status::ok();
  });
}

// RMSNorm as the ONNX ops compute it, in one pass per row (inputs x, weight; attribute epsilon):
//   y = w * (x * (1 / sqrt(float(sum_double(x*x) / D) + eps)))
// with every step rounded to float32 where the op chain rounds it (Pow, ReduceMean's double sum
// and float result, Add, Sqrt, Reciprocal, Mul, Mul), so the fold changes no bit of the result:
// an int8 model's dynamic quantisation after the norm would amplify even 1-ulp differences.
//
// The float16 form (a float16 model whose norm statistics stay float32, as `quantize --mode
// fp16` writes it): x and w float16, the statistics computed on Cast<float>(x), the reciprocal
// Cast back to float16, and both Muls float16 ops (float32 products rounded to float16, as the
// float16 binary kernels compute them).
// 1 / sqrt(ReduceMean(Pow(x, 2)) + eps) of one row, rounded as the ops round it: float32
// squares, ReduceMean's double sum and float32 result, float32 Add, Sqrt and Reciprocal.
float chain_inverse_rms(const float* x, int64_t D, float eps) {
  double acc = 0;
  for (int64_t i = 0; i < D; ++i) {
    const float sq = x[i] * x[i];
    acc += static_cast<double>(sq);
  }
  const float ms = static_cast<float>(acc / static_cast<double>(D));
  const float s = std::sqrt(ms + eps);
  return 1.0f / s;
}

Status rms_norm_chain_f16(KernelContext& ctx, const Value& x, const Value& w, int64_t D, int64_t rows, float eps) {
  const uint16_t* xd = x.data<uint16_t>();
  // Per-thread buffers: decode runs this 25 times a token, one row each.
  thread_local std::vector<float> wf;
  wf.resize(static_cast<size_t>(D));
  halfs_to_floats(w.data<uint16_t>(), wf.data(), D);
  const float* wp = wf.data();  // the caller's buffer, read by every thread
  uint16_t* yd = ctx.output(0, DType::kF16, x.shape()).mutable_data<uint16_t>();
  ctx.pool().parallel_for(rows, grain_for(D * 8), [&](int64_t r0, int64_t r1) {
    thread_local std::vector<float> xf, t;
    thread_local std::vector<uint16_t> t16;
    xf.resize(static_cast<size_t>(D));
    t.resize(static_cast<size_t>(D));
    t16.resize(static_cast<size_t>(D));
    for (int64_t r = r0; r < r1; ++r) {
      halfs_to_floats(xd + r * D, xf.data(), D);
      float inv = chain_inverse_rms(xf.data(), D, eps);
      uint16_t inv16;
      floats_to_halfs(&inv, &inv16, 1);
      halfs_to_floats(&inv16, &inv, 1);
      for (int64_t i = 0; i < D; ++i) t[i] = xf[i] * inv;
      floats_to_halfs(t.data(), t16.data(), D);
      halfs_to_floats(t16.data(), t.data(), D);
      for (int64_t i = 0; i < D; ++i) t[i] = wp[i] * t[i];
      floats_to_halfs(t.data(), yd + r * D, D);
    }
  });
  return Status::ok();
}

Status rms_norm_chain(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& x = ctx.in(0);
  const Value& w = ctx.in(1);
  const bool f16 = x.dtype() == DType::kF16 && w.dtype() == DType::kF16;
  if (!(f16 || (x.dtype() == DType::kF32 && w.dtype() == DType::kF32)) || x.rank() == 0)
    return unsupported("RMSNorm chain on ", dtype_name(x.dtype()), " x ", dtype_name(w.dtype()),
                       " (float32 or float16 only)");
  const int64_t D = x.dim(-1), rows = x.numel() / std::max<int64_t>(1, D);
  if (w.numel() != D) return invalid_input("weight of ", w.numel(), " values for rows of ", D);
  const float eps = ctx.attr_float("epsilon", 1e-5f);
  if (f16) return rms_norm_chain_f16(ctx, x, w, D, rows, eps);
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  float* yd = ctx.output(0, DType::kF32, x.shape()).mutable_data<float>();
  ctx.pool().parallel_for(rows, grain_for(D * 4), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = xd + r * D;
      const float inv = chain_inverse_rms(xr, D, eps);
      for (int64_t i = 0; i < D; ++i) {
        const float xn = xr[i] * inv;
        yd[r * D + i] = wd[i] * xn;
      }
    }
  });
  return Status::ok();
}

// LayerNormalization (center=true), RMSNormalization / SimplifiedLayerNormalization (false).
// Outputs: Y, then for LayerNorm Mean (1) and InvStdDev (2), for SimplifiedLayerNorm inv_std_var (1).
template <bool kCenter, bool kContrib>
Status layer_norm_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& x = ctx.in(0);
  if (x.rank() == 0) return invalid_input("input must have rank >= 1");
  LLMC_ASSIGN_OR_RETURN(const int axis, normalize_axis(ctx.attr_int("axis", -1), x.rank()));
  NormSpec sp;
  sp.center = kCenter;
  sp.eps = ctx.attr_float("epsilon", 1e-5f);
  const int64_t stash = ctx.attr_int("stash_type", 1);
  DType stat_type = stash == 11 ? DType::kF64 : DType::kF32;
  if (kContrib) stat_type = x.dtype() == DType::kF64 ? DType::kF64 : DType::kF32;
  else if (stash != 1 && stash != 11) return unsupported("stash_type ", stash, " (only 1 = float and 11 = double)");
  LLMC_ASSIGN_OR_RETURN(std::vector<double> scale, expand_param(ctx.in(1), x.shape(), axis, "scale"));
  std::vector<double> bias;
  if (kCenter && ctx.input(2)) {
    LLMC_ASSIGN_OR_RETURN(bias, expand_param(*ctx.input(2), x.shape(), axis, "bias"));
  }
  sp.scale = scale.data();
  sp.bias = bias.empty() ? nullptr : bias.data();
  const int64_t m = prod(x.shape(), 0, axis), n = prod(x.shape(), axis, x.shape().size());
  std::vector<double> means(static_cast<size_t>(m)), invs(static_cast<size_t>(m));
  LLMC_RETURN_IF_ERROR(dispatch_float(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    const T* xd = x.data<T>();
    T* yd = ctx.output(0, x.dtype(), x.shape()).template mutable_data<T>();
    ctx.pool().parallel_for(m, grain_for(n * 2), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) std::tie(means[o], invs[o]) = norm_row(xd + o * n, yd + o * n, n, sp);
    });
    return Status::ok();
  }));
  std::vector<int64_t> stat_shape = x.shape();
  for (int d = axis; d < x.rank(); ++d) stat_shape[d] = 1;
  if (kCenter) {
    LLMC_RETURN_IF_ERROR(write_stats(ctx, 1, stat_type, stat_shape, means));
    return write_stats(ctx, 2, stat_type, stat_shape, invs);
  }
  if (kContrib) return write_stats(ctx, 1, stat_type, stat_shape, invs);
  return Status::ok();
}

// com.microsoft SkipLayerNormalization (inputs input, skip, gamma, beta?, bias?) and
// SkipSimplifiedLayerNormalization (input, skip, gamma, bias?): s = input + skip (+ bias), then
// norm over the last axis. Outputs: output, mean?, inv_std_var?, input_skip_bias_sum?.
template <bool kCenter>
Status skip_norm_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(3));
  const Value& x = ctx.in(0);
  const Value& skip = ctx.in(1);
  if (x.rank() == 0) return invalid_input("input must have rank >= 1");
  const int axis = x.rank() - 1;
  const int64_t n = x.dim(-1), m = x.numel() / std::max<int64_t>(n, 1);
  // skip: same shape as input, or broadcast over its leading dims.
  auto bs = broadcast_shapes(x.shape(), skip.shape());
  if (skip.dtype() != x.dtype() || !bs.is_ok() || *bs != x.shape() || skip.rank() == 0 || skip.dim(-1) != n)
    return invalid_input("skip (", dtype_name(skip.dtype()), " ", shape_str(skip.shape()),
                         ") must match or broadcast to input (", dtype_name(x.dtype()), " ", shape_str(x.shape()), ")");
  const std::vector<int64_t> skip_strides = broadcast_strides(skip.shape(), x.shape());
  NormSpec sp;
  sp.center = kCenter;
  sp.eps = ctx.attr_float("epsilon", 1e-12f);
  const Value* beta = kCenter ? ctx.input(3) : nullptr;
  const Value* bias = ctx.input(kCenter ? 4 : 3);
  const Value& gamma = ctx.in(2);
  for (const Value* p : {&gamma, beta, bias})
    if (p && p->numel() != n)
      return invalid_input("gamma/beta/bias must hold hidden size ", n, " values, got shape ", shape_str(p->shape()));
  LLMC_ASSIGN_OR_RETURN(std::vector<double> g, expand_param(gamma.reshaped({n}), x.shape(), axis, "gamma"));
  std::vector<double> bt, bi;
  if (beta) {
    LLMC_ASSIGN_OR_RETURN(bt, expand_param(beta->reshaped({n}), x.shape(), axis, "beta"));
  }
  if (bias) {
    LLMC_ASSIGN_OR_RETURN(bi, expand_param(bias->reshaped({n}), x.shape(), axis, "bias"));
  }
  sp.scale = g.data();
  sp.bias = bt.empty() ? nullptr : bt.data();
  std::vector<double> means(static_cast<size_t>(m)), invs(static_cast<size_t>(m));
  const bool want_sum = ctx.wants_output(3);
  LLMC_RETURN_IF_ERROR(dispatch_float(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    const T* xd = x.data<T>();
    const T* sd = skip.data<T>();
    T* yd = ctx.output(0, x.dtype(), x.shape()).template mutable_data<T>();
    T* sum_out = want_sum ? ctx.output(3, x.dtype(), x.shape()).template mutable_data<T>() : nullptr;
    ctx.pool().parallel_for(m, grain_for(n * 3), [&](int64_t b, int64_t e) {
      std::vector<T> tmp(static_cast<size_t>(sum_out ? 0 : n));
      for (int64_t o = b; o < e; ++o) {
        int64_t rem = o, soff = 0;
        for (int d = axis - 1; d >= 0; --d) {
          soff += (rem % x.shape()[d]) * skip_strides[d];
          rem /= x.shape()[d];
        }
        T* s = sum_out ? sum_out + o * n : tmp.data();
        const T* xr = xd + o * n;
        const T* sr = sd + soff;
        for (int64_t i = 0; i < n; ++i) s[i] = bi.empty() ? xr[i] + sr[i] : static_cast<T>(xr[i] + sr[i] + bi[i]);
        std::tie(means[o], invs[o]) = norm_row(s, yd + o * n, n, sp);
      }
    });
    return Status::ok();
  }));
  std::vector<int64_t> stat_shape = x.shape();
  stat_shape.back() = 1;
  const DType stat_type = x.dtype() == DType::kF64 ? DType::kF64 : DType::kF32;
  LLMC_RETURN_IF_ERROR(write_stats(ctx, 1, stat_type, stat_shape, means));
  return write_stats(ctx, 2, stat_type, stat_shape, invs);
}

}  // namespace

Status rms_norm_onnx_chain(KernelContext& ctx) { return rms_norm_chain(ctx); }

void register_normalization_kernels(KernelRegistry& r) {
  r.add("Softmax", widened({0}, softmax_kernel<false>));
  r.add("LogSoftmax", widened({0}, softmax_kernel<true>));
  r.add("LayerNormalization", widened({0}, layer_norm_kernel<true, false>));
  r.add("RMSNormalization", widened({0}, layer_norm_kernel<false, false>));
  // onnxruntime defines SimplifiedLayerNormalization in the ONNX domain; accept both.
  r.add("SimplifiedLayerNormalization", widened({0}, layer_norm_kernel<false, true>));
  r.add("com.microsoft", "SimplifiedLayerNormalization", widened({0}, layer_norm_kernel<false, true>));
  r.add("com.microsoft", "SkipLayerNormalization", widened({0, 3}, skip_norm_kernel<true>));
  r.add("com.microsoft", "SkipSimplifiedLayerNormalization", widened({0, 3}, skip_norm_kernel<false>));
}

}  // namespace llmc::rt
