// Unary elementwise kernels: math (Sqrt Exp Log Tanh Erf Sin Cos ...), activations (Relu Sigmoid
// Gelu Swish Softplus LeakyRelu Selu Elu HardSigmoid HardSwish ...), rounding, Clip, Not, IsNaN /
// IsInf and Identity. float32/float64 compute natively; float16 / bfloat16 in float.
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/elementwise_types.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {
namespace {

using namespace elementwise;

constexpr int64_t kLightGrain = 16384;  // memory-bound ops
constexpr int64_t kHeavyGrain = 4096;   // transcendental ops

template <typename TI, typename TO, typename F>
void map_into(ThreadPool& pool, const TI* x, TO* y, int64_t n, int64_t grain, const F& f) {
  pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = Num<TO>::st(f(Num<TI>::ld(x[i])));
  });
}

// y = f(x) with y of x's dtype; make(ctx) returns a generic functor on the compute type.
template <unsigned M, typename Make>
KernelFn unary(Make make, int64_t grain) {
  return [make, grain](KernelContext& ctx) -> Status {
    LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
    const Value& x = ctx.in(0);
    const auto f = make(ctx);
    return dispatch<M>(x.dtype(), [&](auto tag) -> Status {
      using T = decltype(tag);
      Value& y = ctx.output(0, x.dtype(), x.shape());
      map_into<T, T>(ctx.pool(), x.data<T>(), y.mutable_data<T>(), x.numel(), grain, f);
      return Status::ok();
    });
  };
}

#define LLMC_UNARY_FN(expr)                    \
  [](const KernelContext&) {                   \
    return [](auto x) {                        \
      using C = decltype(x);                   \
      (void)sizeof(C);                         \
      return expr;                             \
    };                                         \
  }

// -x and |x| without signed-overflow UB on INT_MIN (wraps, as numpy).
template <typename C>
C negate(C x) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(0 - static_cast<std::make_unsigned_t<C>>(x));
  else return -x;
}
template <typename C>
C absolute(C x) {
  if constexpr (std::is_unsigned_v<C>) return x;
  else return x < 0 ? negate(x) : x;
}

template <typename C>
C sigmoid(C x) {  // stable for large |x|: exp of a non-positive number only
  C e;  // (float32 Sigmoid has a vectorised kernel, sigmoid_f32 below)
  e = std::exp(-std::fabs(x));
  const C s = C(1) / (C(1) + e);
  return x >= 0 ? s : e * s;
}

template <typename C>
C softplus(C x) {  // log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))
  return (x > 0 ? x : C(0)) + std::log1p(std::exp(-std::fabs(x)));
}

template <typename C>
C sign(C x) {
  if constexpr (std::is_floating_point_v<C>) {
    if (x != x) return x;
  }
  if constexpr (std::is_unsigned_v<C>) return x > 0 ? C(1) : C(0);
  else return x > 0 ? C(1) : (x < 0 ? C(-1) : C(0));
}

// Gelu (opset 20): approximate = "none" -> x * Phi(x) = 0.5 x erfc(-x / sqrt 2) (erfc keeps
// precision for negative x); "tanh" -> 0.5 x (1 + tanh(u)) = x * sigmoid(2u),
// u = sqrt(2/pi) (x + 0.044715 x^3).
Status gelu_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const std::string approx = ctx.attr_string("approximate", "none");
  const Value& x = ctx.in(0);
  if (approx != "none" && approx != "tanh")
    return invalid_input("approximate must be \"none\" or \"tanh\", got \"", approx, "\"");
  return dispatch<kFloat>(x.dtype(), [&](auto tag) -> Status {
    using T = decltype(tag);
    Value& y = ctx.output(0, x.dtype(), x.shape());
    if (approx == "none") {
      map_into<T, T>(ctx.pool(), x.data<T>(), y.mutable_data<T>(), x.numel(), kHeavyGrain, [](auto v) {
        using C = decltype(v);
        return C(0.5) * v * std::erfc(-v * C(0.70710678118654752440));
      });
    } else {
      map_into<T, T>(ctx.pool(), x.data<T>(), y.mutable_data<T>(), x.numel(), kHeavyGrain, [](auto v) {
        using C = decltype(v);
        const C u = C(0.79788456080286535588) * (v + C(0.044715) * v * v * v);
        return v * sigmoid<C>(C(2) * u);
      });
    }
    return Status::ok();
  });
}

// float32 Sigmoid, vectorised: exp_f32 (rel err <= 1e-7) in one pass, then the rare
// |x| >= 87 elements, where exp_f32 flushes the subnormal tail to 0, redone with libm.
// Cloned per ISA (the loader picks the widest this CPU runs): the same float operations at
// every width, and this file is built with -ffp-contract=off, so every clone gives the same bits.
__attribute__((target_clones("avx512f", "avx2", "default"))) void sigmoid_f32_span(const float* in, float* out,
                                                                                   int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = in[i];
    const float ex = exp_f32(-std::fabs(v));
    const float s = 1.0f / (1.0f + ex);
    // Select by the sign bit with integer ops: a float compare would block vectorisation
    // under -ftrapping-math.
    const int32_t neg = -static_cast<int32_t>(std::bit_cast<uint32_t>(v) >> 31);
    out[i] = std::bit_cast<float>((std::bit_cast<int32_t>(s) & ~neg) | (std::bit_cast<int32_t>(ex * s) & neg));
  }
  for (int64_t i = 0; i < n; ++i)
    if (!(std::fabs(in[i]) < 87.0f)) out[i] = sigmoid<float>(in[i]);
}

// float32 Tanh, vectorised (Hugging Face GPT-2's gelu_new runs it on every MLP activation):
// for |x| < 0.625 Cephes' odd polynomial (relative error ~2e-7, no cancellation near 0),
// otherwise (1 - e) / (1 + e) with e = exp_f32(-2|x|) <= 0.29, well conditioned; both on |x|,
// the sign copied back by bits. Selected with integer ops on |x|'s bits, as in sigmoid_f32_span. NaN
// takes the exp branch and stays NaN; +-inf give +-1.
__attribute__((target_clones("avx512f", "avx2", "default"))) void tanh_f32_span(const float* in, float* out,
                                                                                int64_t n) {
  constexpr int32_t kSmallBits = std::bit_cast<int32_t>(0.625f);
  for (int64_t i = 0; i < n; ++i) {
    const float v = in[i];
    const int32_t vb = std::bit_cast<int32_t>(v);
    const int32_t ab = vb & 0x7fffffff;
    const float a = std::bit_cast<float>(ab);
    const float e = exp_f32(-2.0f * a);
    const float big = (1.0f - e) / (1.0f + e);
    const float z = v * v;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    const float small = p * z * a + a;  // on |x|, so -0 keeps its sign below
    const int32_t use_small = -static_cast<int32_t>(ab < kSmallBits);
    const int32_t magnitude = (std::bit_cast<int32_t>(small) & use_small) | (std::bit_cast<int32_t>(big) & ~use_small);
    out[i] = std::bit_cast<float>(magnitude | (vb & static_cast<int32_t>(0x80000000u)));
  }
}

Status tanh_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const Value& x = ctx.in(0);
  if (x.dtype() == DType::kF16) {  // widened in chunks, computed in float32, rounded once
    const uint16_t* in = x.data<uint16_t>();
    uint16_t* out = ctx.output(0, x.dtype(), x.shape()).mutable_data<uint16_t>();
    ctx.pool().parallel_for(x.numel(), kLightGrain, [&](int64_t b, int64_t e) {
      constexpr int64_t kChunk = 1024;
      float buf[kChunk];
      for (int64_t c = b; c < e; c += kChunk) {
        const int64_t n = std::min(kChunk, e - c);
        halfs_to_floats(in + c, buf, n);
        tanh_f32_span(buf, buf, n);
        floats_to_halfs(buf, out + c, n);
      }
    });
    return Status::ok();
  }
  if (x.dtype() != DType::kF32) return unary<kFloat>(LLMC_UNARY_FN(std::tanh(x)), kHeavyGrain)(ctx);
  const float* in = x.data<float>();
  float* out = ctx.output(0, x.dtype(), x.shape()).mutable_data<float>();
  ctx.pool().parallel_for(x.numel(), kLightGrain, [&](int64_t b, int64_t e) { tanh_f32_span(in + b, out + b, e - b); });
  return Status::ok();
}

// Sigmoid of float32, or of float16 widened in bulk (F16C), computed in float32 and rounded
// once; with `times_x`, then x * Sigmoid(x) rounded as the Mul kernel rounds it (float16: the
// sigmoid rounded to float16 first, as the separate Sigmoid's output would be).
Status sigmoid_float(KernelContext& ctx, bool times_x) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const Value& x = ctx.in(0);
  const bool half = x.dtype() == DType::kF16;
  const int64_t n = x.numel();
  // Float16 goes through float32 buffers kept per thread (decode runs the SiLU fold 12 times a
  // token: no allocation per call once they have grown).
  thread_local std::vector<float> wide, y32;
  if (half) {
    wide.resize(static_cast<size_t>(n));
    y32.resize(static_cast<size_t>(n));
    halfs_to_floats(x.data<uint16_t>(), wide.data(), n);
  }
  const float* in = half ? wide.data() : x.data<float>();
  float* out = half ? y32.data() : ctx.output(0, x.dtype(), x.shape()).mutable_data<float>();
  ctx.pool().parallel_for(n, kLightGrain, [&](int64_t b, int64_t e) {
    sigmoid_f32_span(in + b, out + b, e - b);
    if (!times_x) return;
    if (half) {
      thread_local std::vector<uint16_t> tmp;
      tmp.resize(static_cast<size_t>(e - b));
      floats_to_halfs(out + b, tmp.data(), e - b);
      halfs_to_floats(tmp.data(), out + b, e - b);
    }
    for (int64_t i = b; i < e; ++i) out[i] = in[i] * out[i];
  });
  if (half) floats_to_halfs(out, ctx.output(0, DType::kF16, x.shape()).mutable_data<uint16_t>(), n);
  return Status::ok();
}

Status sigmoid_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const Value& x = ctx.in(0);
  if (x.dtype() != DType::kF32 && x.dtype() != DType::kF16)
    return unary<kFloat>(LLMC_UNARY_FN(sigmoid<C>(x)), kHeavyGrain)(ctx);
  return sigmoid_float(ctx, false);
}

// Clip: opset >= 11 takes optional scalar inputs min / max (of x's dtype); older opsets the
// float attributes min / max. Missing bounds are the dtype's lowest / max. min > max gives max.
Status clip_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const Value& x = ctx.in(0);
  const bool attr_form = ctx.opset() < 11;
  return dispatch<kNumeric>(x.dtype(), [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = typename Num<T>::C;
    C lo = std::numeric_limits<C>::lowest(), hi = std::numeric_limits<C>::max();
    if (attr_form) {
      if constexpr (std::is_floating_point_v<C>) {
        if (ctx.has_attr("min")) lo = static_cast<C>(ctx.attr_float("min", 0.f));
        if (ctx.has_attr("max")) hi = static_cast<C>(ctx.attr_float("max", 0.f));
      } else {
        return unsupported("Clip before opset 11 supports float types only, got ", dtype_name(x.dtype()));
      }
    } else {
      for (int i = 1; i <= 2; ++i) {
        const Value* b = ctx.input(i);
        if (!b) continue;
        const char* what = i == 1 ? "min" : "max";
        if (b->dtype() != x.dtype())
          return invalid_input(what, " has dtype ", dtype_name(b->dtype()), " but input is ",
                               dtype_name(x.dtype()));
        if (b->numel() != 1)
          return invalid_input(what, " must be a scalar, got shape ", shape_str(b->shape()));
        (i == 1 ? lo : hi) = Num<T>::ld(b->data<T>()[0]);
      }
    }
    Value& y = ctx.output(0, x.dtype(), x.shape());
    map_into<T, T>(ctx.pool(), x.data<T>(), y.mutable_data<T>(), x.numel(), kLightGrain, [lo, hi](C v) {
      const C m = v < lo ? lo : v;  // NaN passes through
      return hi < m ? hi : m;
    });
    return Status::ok();
  });
}

// IsNaN / IsInf: float in, bool out.
Status isnan_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const Value& x = ctx.in(0);
  return dispatch<kFloat>(x.dtype(), [&](auto tag) -> Status {
    using T = decltype(tag);
    Value& y = ctx.output(0, DType::kBool, x.shape());
    map_into<T, bool>(ctx.pool(), x.data<T>(), y.mutable_data<bool>(), x.numel(), kLightGrain,
                      [](auto v) { return v != v; });
    return Status::ok();
  });
}

Status isinf_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const Value& x = ctx.in(0);
  const bool neg = ctx.attr_int("detect_negative", 1) != 0, pos = ctx.attr_int("detect_positive", 1) != 0;
  return dispatch<kFloat>(x.dtype(), [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = typename Num<T>::C;
    Value& y = ctx.output(0, DType::kBool, x.shape());
    const C inf = std::numeric_limits<C>::infinity();
    map_into<T, bool>(ctx.pool(), x.data<T>(), y.mutable_data<bool>(), x.numel(), kLightGrain,
                      [=](C v) { return (pos && v == inf) || (neg && v == -inf); });
    return Status::ok();
  });
}

Status identity_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  ctx.set_output(0, ctx.in(0));  // shares the bytes
  return Status::ok();
}

}  // namespace

// x * Sigmoid(x) with the bits of the two separate kernels (session_fold_silu.cpp).
Status silu_chain(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const DType t = ctx.in(0).dtype();
  if (t != DType::kF32 && t != DType::kF16)
    return unsupported("x * Sigmoid(x) on ", dtype_name(t), " (float32 or float16)");
  return sigmoid_float(ctx, true);
}

void register_unary_kernels(KernelRegistry& r) {
  constexpr unsigned F = kFloat;
  constexpr int64_t H = kHeavyGrain, L = kLightGrain;
  r.add("Sqrt", unary<F>(LLMC_UNARY_FN(std::sqrt(x)), L));
  r.add("Reciprocal", unary<F>(LLMC_UNARY_FN(C(1) / x), L));
  r.add("Exp", unary<F>(LLMC_UNARY_FN(std::exp(x)), H));
  r.add("Log", unary<F>(LLMC_UNARY_FN(std::log(x)), H));
  r.add("Tanh", tanh_kernel);
  r.add("Erf", unary<F>(LLMC_UNARY_FN(std::erf(x)), H));
  r.add("Sin", unary<F>(LLMC_UNARY_FN(std::sin(x)), H));
  r.add("Cos", unary<F>(LLMC_UNARY_FN(std::cos(x)), H));
  r.add("Sigmoid", sigmoid_kernel);
  r.add("Softplus", unary<F>(LLMC_UNARY_FN(softplus<C>(x)), H));
  r.add("Softsign", unary<F>(LLMC_UNARY_FN(x / (C(1) + std::fabs(x))), L));
  r.add("Floor", unary<F>(LLMC_UNARY_FN(std::floor(x)), L));
  r.add("Ceil", unary<F>(LLMC_UNARY_FN(std::ceil(x)), L));
  r.add("Round", unary<F>(LLMC_UNARY_FN(std::nearbyint(x)), L));  // half to even
  r.add("Neg", unary<F | kSigned>(LLMC_UNARY_FN(negate<C>(x)), L));
  r.add("Abs", unary<kNumeric>(LLMC_UNARY_FN(absolute<C>(x)), L));
  r.add("Relu", unary<F | kSigned>(LLMC_UNARY_FN(x < C(0) ? C(0) : x), L));
  r.add("Sign", unary<kNumeric>(LLMC_UNARY_FN(sign<C>(x)), L));
  r.add("Not", unary<kBoolT>(LLMC_UNARY_FN(!x), L));
  r.add("HardSwish", unary<F>(LLMC_UNARY_FN(x * std::fmax(C(0), std::fmin(C(1), x / C(6) + C(0.5)))), L));
  r.add("LeakyRelu", unary<F>([](const KernelContext& ctx) {
    const double alpha = ctx.attr_float("alpha", 0.01f);
    return [alpha](auto x) { using C = decltype(x); return x < C(0) ? static_cast<C>(alpha) * x : x; };
  }, L));
  r.add("HardSigmoid", unary<F>([](const KernelContext& ctx) {
    const double alpha = ctx.attr_float("alpha", 0.2f), beta = ctx.attr_float("beta", 0.5f);
    return [alpha, beta](auto x) {
      using C = decltype(x);
      const C v = static_cast<C>(alpha) * x + static_cast<C>(beta);
      return v < C(0) ? C(0) : (v > C(1) ? C(1) : v);
    };
  }, L));
  r.add("Elu", unary<F>([](const KernelContext& ctx) {
    const double alpha = ctx.attr_float("alpha", 1.0f);
    return [alpha](auto x) {
      using C = decltype(x);
      return x < C(0) ? static_cast<C>(alpha) * std::expm1(x) : x;
    };
  }, H));
  r.add("Selu", unary<F>([](const KernelContext& ctx) {
    const double alpha = ctx.attr_float("alpha", 1.67326319217681884765625f);
    const double gamma = ctx.attr_float("gamma", 1.05070102214813232421875f);
    return [alpha, gamma](auto x) {
      using C = decltype(x);
      return static_cast<C>(gamma) * (x > C(0) ? x : static_cast<C>(alpha) * std::expm1(x));
    };
  }, H));
  r.add("Swish", unary<F>([](const KernelContext& ctx) {  // opset 24: x * sigmoid(alpha x)
    const double alpha = ctx.attr_float("alpha", 1.0f);
    return [alpha](auto x) { using C = decltype(x); return x * sigmoid<C>(static_cast<C>(alpha) * x); };
  }, H));
  r.add("Gelu", gelu_kernel);
  r.add("Clip", clip_kernel);
  r.add("IsNaN", isnan_kernel);
  r.add("IsInf", isinf_kernel);
  r.add("Identity", identity_kernel);
}

}  // namespace llmc::rt
