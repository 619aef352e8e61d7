// Elementwise kernels on three or more inputs, through the broadcast plan (broadcast_plan.h):
// Where (condition, X, Y) and the variadic Min, Max, Sum and Mean (folded left, pairwise).
#include <type_traits>

#include "runtime/kernels/broadcast_plan.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {
namespace {

using namespace elementwise;

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

}  // namespace

void register_nary_kernels(KernelRegistry& r) {
  r.add("Where", where_kernel);
  r.add("Min", variadic_kernel<Fold::kMin, kNumeric>);
  r.add("Max", variadic_kernel<Fold::kMax, kNumeric>);
  r.add("Sum", variadic_kernel<Fold::kSum, kNumeric>);
  r.add("Mean", variadic_kernel<Fold::kMean, kFloat>);
}

}  // namespace llmc::rt
