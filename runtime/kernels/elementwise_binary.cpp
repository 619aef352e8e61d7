// Broadcasting elementwise kernels on two inputs: arithmetic (Add Sub Mul Div Pow Mod PRelu
// SwiGLU), comparisons and logic (And Or Xor). All run through the broadcast plan
// (broadcast_plan.h); float16 and bfloat16 are computed in float. Where and the variadic
// Min Max Sum Mean are in elementwise_nary.cpp.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <type_traits>

#include "runtime/kernels/broadcast_plan.h"
#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/elementwise_types.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {
namespace {

// ---- element types --------------------------------------------------------------------------

using namespace elementwise;

template <typename T> constexpr bool is_float_v = std::is_floating_point_v<typename Num<T>::C>;


// An op on two inputs of one dtype T (in Mask); MakeF(T{}) returns the functor on Num<T>::C.
// The output has dtype `out` (kUndefined: same as the inputs).
template <unsigned M, typename MakeF>
KernelFn same_type_binary(MakeF make, DType out = DType::kUndefined) {
  return [make, out](KernelContext& ctx) -> Status {
    LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
    const Value& a = ctx.in(0);
    const Value& b = ctx.in(1);
    LLMC_RETURN_IF_ERROR(same_dtype(a, b));
    const bool same_shape = a.shape() == b.shape();
    const bool b_scalar = !same_shape && b.numel() == 1 && b.rank() <= a.rank();
    const bool a_scalar = !same_shape && !b_scalar && a.numel() == 1 && a.rank() <= b.rank();
    if (a.dtype() == DType::kF16 && out == DType::kUndefined && (M & kFloat) && (same_shape || a_scalar || b_scalar)) {
      // float16 of one shape (or with a scalar): the same widen / float32 op / round once, in
      // 1024-value blocks on the stack instead of three whole temporaries (decode's residual
      // adds and gate products are 768-2048 values, where the allocations cost more than the op).
      Value& y = ctx.output(0, DType::kF16, a_scalar ? b.shape() : a.shape());
      const uint16_t* pa = a.data<uint16_t>();
      const uint16_t* pb = b.data<uint16_t>();
      uint16_t* py = y.mutable_data<uint16_t>();
      const bool sa = a_scalar, sb = b_scalar;
      constexpr int64_t kBlock = 1024;
      const auto f = make(float{});
      ctx.pool().parallel_for((y.numel() + kBlock - 1) / kBlock, kGrain / kBlock, [&](int64_t c0, int64_t c1) {
        float fa[kBlock], fb[kBlock];
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t off = c * kBlock, n = std::min(kBlock, y.numel() - off);
          halfs_to_floats(sa ? pa : pa + off, fa, sa ? 1 : n);
          halfs_to_floats(sb ? pb : pb + off, fb, sb ? 1 : n);
          const float a0 = fa[0], b0 = fb[0];
          for (int64_t i = 0; i < n; ++i) fa[i] = f(sa ? a0 : fa[i], sb ? b0 : fb[i]);
          floats_to_halfs(fa, py + off, n);
        }
      });
      return Status::ok();
    }
    if (a.dtype() == DType::kF16 && out != DType::kBool && (M & kFloat)) {
      // float16: widen with F16C in bulk, run the float32 loop, round once to float16 (the same
      // result as converting element by element, several times faster).
      auto wide = [&](const Value& v) {
        Value w = Value::allocate(DType::kF32, v.shape());
        halfs_to_floats(v.data<uint16_t>(), w.mutable_data<float>(), v.numel());
        return w;
      };
      const Value wa = wide(a), wb = wide(b);
      KernelContext inner(ctx.node(), ctx.opset(), {&wa, &wb}, ctx.pool(), nullptr);
      const Status st = run_binary<float, float, float>(inner, wa, wb, DType::kF32, make(float{}));
      if (!st.is_ok()) return st;
      const Value& y32 = inner.outputs()[0];
      Value& y = ctx.output(0, DType::kF16, y32.shape());
      floats_to_halfs(y32.data<float>(), y.mutable_data<uint16_t>(), y32.numel());
      return Status::ok();
    }
    return dispatch<M>(a.dtype(), [&](auto tag) -> Status {
      using T = decltype(tag);
      auto f = make(tag);
      if (out == DType::kBool) return run_binary<T, T, bool>(ctx, a, b, DType::kBool, f);
      return run_binary<T, T, T>(ctx, a, b, a.dtype(), f);
    });
  };
}

// ---- arithmetic -----------------------------------------------------------------------------

template <typename C>
C int_div(C a, C b) {
  if (b == 0) return 0;  // undefined in ONNX; avoid the trap
  if constexpr (std::is_signed_v<C>) {
    if (b == -1) return static_cast<C>(0 - static_cast<std::make_unsigned_t<C>>(a));  // INT_MIN / -1
  }
  return a / b;
}

// Python-style (fmod=0: sign of the divisor) or C-style (fmod=1: sign of the dividend) remainder.
template <typename C>
C mod_op(C a, C b, bool c_style) {
  if constexpr (std::is_floating_point_v<C>) {
    C r = std::fmod(a, b);
    if (!c_style && r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  } else {
    if (b == 0) return 0;
    if constexpr (std::is_signed_v<C>) {
      if (b == -1) return 0;
    }
    C r = a % b;
    if constexpr (std::is_signed_v<C>) {
      if (!c_style && r != 0 && ((r < 0) != (b < 0))) r += b;
    }
    return r;
  }
}

// Integer power by squaring; negative exponents give the truncated 1 / a^-e.
template <typename C>
C int_pow(C a, int64_t e) {
  if (e < 0) {
    if (a == 1) return 1;
    if constexpr (std::is_signed_v<C>) {
      if (a == -1) return (e & 1) ? C(-1) : C(1);
    }
    return 0;
  }
  using U = std::make_unsigned_t<C>;
  U result = 1, base = static_cast<U>(a);  // wrap on overflow, as numpy does
  while (e) {
    if (e & 1) result *= base;
    base *= base;
    e >>= 1;
  }
  return static_cast<C>(result);
}

// Converts any numeric value to float64 or int64 (the exponent of a mixed-type Pow).
template <typename Dst>
Result<Value> convert_to(const Value& v, DType dst) {
  Value out = Value::allocate(dst, v.shape());
  Status st = dispatch<kNumeric>(v.dtype(), [&](auto tag) -> Status {
    using T = decltype(tag);
    const T* s = v.data<T>();
    Dst* d = out.mutable_data<Dst>();
    for (int64_t i = 0; i < v.numel(); ++i) d[i] = static_cast<Dst>(Num<T>::ld(s[i]));
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  return out;
}

Status pow_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& a = ctx.in(0);
  const Value& b = ctx.in(1);
  return dispatch<kFloat | kSigned | kUnsigned>(a.dtype(), [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = typename Num<T>::C;
    if constexpr (is_float_v<T>) {
      if (b.dtype() == a.dtype()) {
        // Squares and cubes multiplied out, as ONNX Runtime does (GPT-2's gelu_new cubes
        // every MLP activation; std::pow is ~20x slower and not vectorised).
        if (b.numel() == 1 && Num<T>::ld(b.data<T>()[0]) == C(2))
          return run_binary<T, T, T>(ctx, a, b, a.dtype(), [](C x, C) { return x * x; });
        if (b.numel() == 1 && Num<T>::ld(b.data<T>()[0]) == C(3))
          return run_binary<T, T, T>(ctx, a, b, a.dtype(), [](C x, C) { return x * x * x; });
        return run_binary<T, T, T>(ctx, a, b, a.dtype(), [](C x, C y) { return std::pow(x, y); });
      }
    }
    if (is_float_v<T> || dtype_is_float(b.dtype())) {  // computed in double, as numpy promotes
      LLMC_ASSIGN_OR_RETURN(Value e, convert_to<double>(b, DType::kF64));
      return run_binary<T, double, T>(ctx, a, e, a.dtype(), [](C x, double y) {
        const double r = std::pow(static_cast<double>(x), y);
        if constexpr (std::is_floating_point_v<C>) {
          return static_cast<C>(r);
        } else {  // truncate, saturating (NaN -> 0)
          if (!(r == r)) return C(0);
          using L = std::numeric_limits<C>;
          if (r <= static_cast<double>(L::lowest())) return L::lowest();
          if (r >= static_cast<double>(L::max())) return L::max();
          return static_cast<C>(r);
        }
      });
    } else {
      if constexpr (!is_float_v<T>) {
        const auto ipow = [](C x, int64_t y) { return int_pow<C>(x, y); };
        if (b.dtype() == DType::kI64) return run_binary<T, int64_t, T>(ctx, a, b, a.dtype(), ipow);
        LLMC_ASSIGN_OR_RETURN(Value e, convert_to<int64_t>(b, DType::kI64));
        return run_binary<T, int64_t, T>(ctx, a, e, a.dtype(), ipow);
      }
      return internal_error("unreachable");
    }
  });
}

Status mod_kernel(KernelContext& ctx) {
  const bool c_style = ctx.attr_int("fmod", 0) != 0;
  return same_type_binary<kNumeric>([c_style](auto tag) {
    using C = typename Num<decltype(tag)>::C;
    return [c_style](C a, C b) { return mod_op<C>(a, b, c_style); };
  })(ctx);
}

// PRelu: y = x < 0 ? slope * x : x, slope broadcast to x's shape (unidirectional).
Status prelu_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& x = ctx.in(0);
  const Value& s = ctx.in(1);
  LLMC_RETURN_IF_ERROR(same_dtype(x, s));
  LLMC_ASSIGN_OR_RETURN(auto shape, broadcast_shapes(x.shape(), s.shape()));
  if (shape != x.shape())
    return invalid_input("slope shape ", shape_str(s.shape()), " does not broadcast to X shape ",
                         shape_str(x.shape()));
  return dispatch<kFloat | kSigned>(x.dtype(), [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = typename Num<T>::C;
    return run_binary<T, T, T>(ctx, x, s, x.dtype(),
                               [](C v, C a) { return v < 0 ? static_cast<C>(a * v) : v; });
  });
}

// SwiGLU (opset 28): Y = A * sigmoid(alpha A) * B, A and B of one shape (no broadcasting).
Status swiglu_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& a = ctx.in(0);
  const Value& b = ctx.in(1);
  LLMC_RETURN_IF_ERROR(same_dtype(a, b));
  if (a.shape() != b.shape())
    return invalid_input("A and B must have the same shape, got ", shape_str(a.shape()), " and ",
                         shape_str(b.shape()));
  const double alpha = ctx.attr_float("alpha", 1.0f);
  return dispatch<kFloat>(a.dtype(), [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = typename Num<T>::C;
    const C al = static_cast<C>(alpha);
    return run_binary<T, T, T>(ctx, a, b, a.dtype(), [al](C g, C v) {
      const C z = al * g;  // g * sigmoid(z), sigmoid computed from exp of a non-positive number
      const C e = std::exp(-std::fabs(z));
      const C s = C(1) / (C(1) + e);
      return g * (z >= 0 ? s : e * s) * v;
    });
  });
}

// Functor makers for same_type_binary (the tag gives the storage type).
#define LLMC_BINARY_FN(expr)                                  \
  [](auto tag) {                                              \
    using C = typename Num<decltype(tag)>::C;                 \
    return [](C a, C b) { return expr; };                     \
  }

}  // namespace

void register_binary_kernels(KernelRegistry& r) {
  r.add("Add", same_type_binary<kNumeric>(LLMC_BINARY_FN(static_cast<C>(a + b))));
  r.add("Sub", same_type_binary<kNumeric>(LLMC_BINARY_FN(static_cast<C>(a - b))));
  r.add("Mul", same_type_binary<kNumeric>(LLMC_BINARY_FN(static_cast<C>(a * b))));
  r.add("Div", same_type_binary<kNumeric>([](auto tag) {
    using C = typename Num<decltype(tag)>::C;
    return [](C a, C b) -> C {
      if constexpr (std::is_floating_point_v<C>) return a / b;
      else return int_div<C>(a, b);  // truncates toward zero
    };
  }));
  r.add("Pow", pow_kernel);
  r.add("Mod", mod_kernel);
  r.add("PRelu", prelu_kernel);
  r.add("SwiGLU", swiglu_kernel);
  r.add("Equal", same_type_binary<kAll>(LLMC_BINARY_FN(a == b), DType::kBool));
  r.add("Less", same_type_binary<kNumeric>(LLMC_BINARY_FN(a < b), DType::kBool));
  r.add("Greater", same_type_binary<kNumeric>(LLMC_BINARY_FN(a > b), DType::kBool));
  r.add("LessOrEqual", same_type_binary<kNumeric>(LLMC_BINARY_FN(a <= b), DType::kBool));
  r.add("GreaterOrEqual", same_type_binary<kNumeric>(LLMC_BINARY_FN(a >= b), DType::kBool));
  r.add("And", same_type_binary<kBoolT>(LLMC_BINARY_FN(a && b)));
  r.add("Or", same_type_binary<kBoolT>(LLMC_BINARY_FN(a || b)));
  r.add("Xor", same_type_binary<kBoolT>(LLMC_BINARY_FN(a != b)));
}

}  // namespace llmc::rt
