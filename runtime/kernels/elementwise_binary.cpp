// Broadcasting elementwise kernels: arithmetic (Add Sub Mul Div Pow Mod PRelu SwiGLU),
// comparisons, logic (And Or Xor), Where, and the variadic Min Max Sum Mean.
//
// All of them run through one broadcast plan: the output shape is collapsed (size-1 dims
// dropped, neighbouring dims merged when every input is contiguous or broadcast across both),
// so equal shapes become one flat row, "tensor op scalar" one row with a fixed operand and
// "[M,N] op [N]" M rows. Rows are then processed by tight loops the compiler vectorises for
// float32 / int types; float16 and bfloat16 are computed in float.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <type_traits>

#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/elementwise_types.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {
namespace {

// ---- element types --------------------------------------------------------------------------

using namespace elementwise;

template <typename T> constexpr bool is_float_v = std::is_floating_point_v<typename Num<T>::C>;

// ---- broadcast plan -------------------------------------------------------------------------

constexpr int64_t kGrain = 16384;

template <size_t K>
using Offs = std::array<int64_t, K>;

template <size_t K>
struct Plan {
  std::vector<int64_t> dims;                    // collapsed output dims, at least one
  std::array<std::vector<int64_t>, K> strides;  // element strides of each input per dim
  int64_t numel = 0;
};

template <size_t K>
Plan<K> make_plan(const std::vector<int64_t>& out, const std::array<const std::vector<int64_t>*, K>& ins) {
  std::array<std::vector<int64_t>, K> full;
  for (size_t k = 0; k < K; ++k) full[k] = broadcast_strides(*ins[k], out);
  Plan<K> p;
  p.numel = shape_numel(out);
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1) continue;
    bool merge = !p.dims.empty();
    for (size_t k = 0; k < K && merge; ++k) merge = p.strides[k].back() == full[k][d] * out[d];
    if (merge) {
      p.dims.back() *= out[d];
      for (size_t k = 0; k < K; ++k) p.strides[k].back() = full[k][d];
      continue;
    }
    p.dims.push_back(out[d]);
    for (size_t k = 0; k < K; ++k) p.strides[k].push_back(full[k][d]);
  }
  if (p.dims.empty()) {
    p.dims.push_back(1);
    for (size_t k = 0; k < K; ++k) p.strides[k].push_back(0);
  }
  return p;
}

// Calls row(out_offset, in_offsets, in_steps, n) over runs of the innermost dim; in_steps are
// 0 (broadcast) or 1 (contiguous). Chunks of the flat output index run in parallel.
template <size_t K, typename Row>
void run_plan(ThreadPool& pool, const Plan<K>& p, int64_t grain, const Row& row) {
  if (p.numel == 0) return;
  const int r = static_cast<int>(p.dims.size());
  const int64_t inner = p.dims.back();
  std::array<int64_t, K> step;
  for (size_t k = 0; k < K; ++k) step[k] = p.strides[k].back();
  pool.parallel_for(p.numel, grain, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> idx(r);
    std::array<int64_t, K> off{};
    int64_t rem = begin;
    for (int d = r - 1; d >= 0; --d) {
      idx[d] = rem % p.dims[d];
      rem /= p.dims[d];
      for (size_t k = 0; k < K; ++k) off[k] += idx[d] * p.strides[k][d];
    }
    int64_t pos = begin;
    while (pos < end) {
      const int64_t n = std::min(inner - idx[r - 1], end - pos);
      row(pos, off, step, n);
      pos += n;
      if (pos >= end) break;
      for (size_t k = 0; k < K; ++k) off[k] -= idx[r - 1] * step[k];
      idx[r - 1] = 0;
      for (int d = r - 2; d >= 0; --d) {
        ++idx[d];
        for (size_t k = 0; k < K; ++k) off[k] += p.strides[k][d];
        if (idx[d] < p.dims[d]) break;
        for (size_t k = 0; k < K; ++k) off[k] -= p.dims[d] * p.strides[k][d];
        idx[d] = 0;
      }
    }
  });
}

// out = f(a, b) elementwise with broadcasting; `out` has shape `os` (already broadcast).
template <typename TA, typename TB, typename TO, typename F>
void binary_into(ThreadPool& pool, const TA* a, const std::vector<int64_t>& as, const TB* b,
                 const std::vector<int64_t>& bs, TO* o, const std::vector<int64_t>& os, const F& f) {
  using NA = Num<TA>;
  using NB = Num<TB>;
  using NO = Num<TO>;
  const Plan<2> p = make_plan<2>(os, {&as, &bs});
  run_plan<2>(pool, p, kGrain, [&](int64_t oo, const Offs<2>& off, const Offs<2>& st, int64_t n) {
    const TA* pa = a + off[0];
    const TB* pb = b + off[1];
    TO* po = o + oo;
    if (st[0] && st[1]) {
      for (int64_t i = 0; i < n; ++i) po[i] = NO::st(f(NA::ld(pa[i]), NB::ld(pb[i])));
    } else if (st[0]) {
      const auto bv = NB::ld(pb[0]);
      for (int64_t i = 0; i < n; ++i) po[i] = NO::st(f(NA::ld(pa[i]), bv));
    } else if (st[1]) {
      const auto av = NA::ld(pa[0]);
      for (int64_t i = 0; i < n; ++i) po[i] = NO::st(f(av, NB::ld(pb[i])));
    } else {
      std::fill(po, po + n, NO::st(f(NA::ld(pa[0]), NB::ld(pb[0]))));
    }
  });
}

template <typename TA, typename TB, typename TO, typename F>
Status run_binary(KernelContext& ctx, const Value& a, const Value& b, DType out_dtype, const F& f) {
  LLMC_ASSIGN_OR_RETURN(auto shape, broadcast_shapes(a.shape(), b.shape()));
  Value& out = ctx.output(0, out_dtype, shape);
  binary_into<TA, TB, TO>(ctx.pool(), a.data<TA>(), a.shape(), b.data<TB>(), b.shape(),
                          out.mutable_data<TO>(), shape, f);
  return Status::ok();
}

Status same_dtype(const Value& a, const Value& b) {
  if (a.dtype() != b.dtype())
    return invalid_input("inputs have different dtypes: ", dtype_name(a.dtype()), " and ",
                         dtype_name(b.dtype()));
  return Status::ok();
}

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
        if (b.numel() == 1 && Num<T>::ld(b.data<T>()[0]) == C(2))
          return run_binary<T, T, T>(ctx, a, b, a.dtype(), [](C x, C) { return x * x; });
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

// ---- Where ----------------------------------------------------------------------------------

template <typename T>
void where_into(ThreadPool& pool, const Value& c, const Value& x, const Value& y, Value& out) {
  const Plan<3> p = make_plan<3>(out.shape(), {&c.shape(), &x.shape(), &y.shape()});
  const bool* pc = c.data<bool>();
  const T* px = x.data<T>();
  const T* py = y.data<T>();
  T* po = out.mutable_data<T>();
  run_plan<3>(pool, p, kGrain, [&](int64_t oo, const Offs<3>& off, const Offs<3>& st, int64_t n) {
    const bool* cc = pc + off[0];
    const T* xx = px + off[1];
    const T* yy = py + off[2];
    T* o = po + oo;
    if (st[0] && st[1] && st[2]) {
      for (int64_t i = 0; i < n; ++i) o[i] = cc[i] ? xx[i] : yy[i];
    } else {
      for (int64_t i = 0; i < n; ++i) o[i] = cc[i * st[0]] ? xx[i * st[1]] : yy[i * st[2]];
    }
  });
}

Status where_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(3));
  const Value& c = ctx.in(0);
  const Value& x = ctx.in(1);
  const Value& y = ctx.in(2);
  if (c.dtype() != DType::kBool) return invalid_input("condition must be bool, got ", dtype_name(c.dtype()));
  LLMC_RETURN_IF_ERROR(same_dtype(x, y));
  LLMC_ASSIGN_OR_RETURN(auto s1, broadcast_shapes(c.shape(), x.shape()));
  LLMC_ASSIGN_OR_RETURN(auto shape, broadcast_shapes(s1, y.shape()));
  const int bits = dtype_bits(x.dtype());
  Value& out = ctx.output(0, x.dtype(), shape);
  switch (bits) {
    case 8: where_into<uint8_t>(ctx.pool(), c, x, y, out); break;
    case 16: where_into<uint16_t>(ctx.pool(), c, x, y, out); break;
    case 32: where_into<uint32_t>(ctx.pool(), c, x, y, out); break;
    case 64: where_into<uint64_t>(ctx.pool(), c, x, y, out); break;
    default: return unsupported("Where does not support dtype ", dtype_name(x.dtype()));
  }
  return Status::ok();
}

// ---- variadic Min / Max / Sum / Mean --------------------------------------------------------

template <typename C>
C min_op(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (a != a || b != b) return a + b;  // NaN propagates, as numpy.minimum
  }
  return b < a ? b : a;
}
template <typename C>
C max_op(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (a != a || b != b) return a + b;
  }
  return a < b ? b : a;
}

enum class Fold { kMin, kMax, kSum, kMean };

template <Fold kind, unsigned M>
Status variadic_kernel(KernelContext& ctx) {
  const size_t n = ctx.num_inputs();
  if (n == 0) return invalid_input("needs at least one input");
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(n));
  const Value& first = ctx.in(0);
  std::vector<int64_t> shape = first.shape();
  for (size_t i = 1; i < n; ++i) {
    LLMC_RETURN_IF_ERROR(same_dtype(first, ctx.in(i)));
    LLMC_ASSIGN_OR_RETURN(shape, broadcast_shapes(shape, ctx.in(i).shape()));
  }
  return dispatch<M>(first.dtype(), [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = typename Num<T>::C;
    if (n == 1) {
      ctx.set_output(0, first);
      return Status::ok();
    }
    auto f = [](C a, C b) -> C {
      if constexpr (kind == Fold::kMin) return min_op<C>(a, b);
      else if constexpr (kind == Fold::kMax) return max_op<C>(a, b);
      else return static_cast<C>(a + b);
    };
    // Fold left; intermediates in fresh buffers (no in-place aliasing), the last in the output.
    Value acc = first;
    for (size_t i = 1; i < n; ++i) {
      const bool last = i + 1 == n && kind != Fold::kMean;
      Value next = last ? Value() : Value::allocate(first.dtype(), shape);
      Value& dst = last ? ctx.output(0, first.dtype(), shape) : next;
      binary_into<T, T, T>(ctx.pool(), acc.data<T>(), acc.shape(), ctx.in(i).data<T>(), ctx.in(i).shape(),
                           dst.template mutable_data<T>(), shape, f);
      if (!last) acc = dst;
    }
    if constexpr (kind == Fold::kMean) {
      const C count = static_cast<C>(n);
      const T* s = acc.data<T>();
      T* d = ctx.output(0, first.dtype(), shape).template mutable_data<T>();
      ctx.pool().parallel_for(acc.numel(), kGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) d[i] = Num<T>::st(Num<T>::ld(s[i]) / count);
      });
    }
    return Status::ok();
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
  r.add("Where", where_kernel);
  r.add("Min", variadic_kernel<Fold::kMin, kNumeric>);
  r.add("Max", variadic_kernel<Fold::kMax, kNumeric>);
  r.add("Sum", variadic_kernel<Fold::kSum, kNumeric>);
  r.add("Mean", variadic_kernel<Fold::kMean, kFloat>);
}

}  // namespace llmc::rt
