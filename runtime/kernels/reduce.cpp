// Reductions (ReduceSum/Mean/Max/Min/Prod/SumSquare/L1/L2/LogSum/LogSumExp), ArgMax/ArgMin,
// CumSum and TopK.
//
// Reduce ops take `axes` as an attribute in older opsets (ReduceSum < 13, the others < 18) and
// as an optional second input later; the kernel accepts whichever form the node carries. Empty
// axes reduce everything unless noop_with_empty_axes=1 (then the input passes through).
// Float sums accumulate in double, integer sums in 64 bits. float16/bfloat16 inputs run through
// float32 and are rounded back.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <type_traits>

#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/rowwise.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {
namespace {

// ---- reduce ops ----

template <typename T>
using Wide = std::conditional_t<std::is_floating_point_v<T>, double,
                                std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;

template <typename T>
struct SumOp {
  using Acc = Wide<T>;
  static constexpr bool kBool = false;
  static Acc init() { return 0; }
  static void add(Acc& a, T x) { a += static_cast<Acc>(x); }
  static void combine(Acc& a, Acc b) { a += b; }  // merges partial accumulators
  static T finish(Acc a, int64_t) { return static_cast<T>(a); }
};
template <typename T>
struct MeanOp : SumOp<T> {
  using Acc = Wide<T>;
  static T finish(Acc a, int64_t n) {
    if constexpr (std::is_floating_point_v<T>) return static_cast<T>(a / static_cast<double>(n));
    else return n == 0 ? T(0) : static_cast<T>(a / static_cast<Acc>(n));
  }
};
template <typename T>
struct SumSquareOp : SumOp<T> {
  using Acc = Wide<T>;
  static void add(Acc& a, T x) { a += static_cast<Acc>(x) * static_cast<Acc>(x); }
};
template <typename T>
struct L2Op : SumSquareOp<T> {
  using Acc = Wide<T>;
  static T finish(Acc a, int64_t) { return static_cast<T>(std::sqrt(static_cast<double>(a))); }
};
template <typename T>
struct L1Op : SumOp<T> {
  using Acc = Wide<T>;
  static void add(Acc& a, T x) {
    if constexpr (std::is_signed_v<T>) a += x < 0 ? -static_cast<Acc>(x) : static_cast<Acc>(x);
    else a += static_cast<Acc>(x);
  }
};
template <typename T>
struct LogSumOp : SumOp<T> {
  using Acc = Wide<T>;
  static T finish(Acc a, int64_t) { return static_cast<T>(std::log(static_cast<double>(a))); }
};
template <typename T>
struct ProdOp : SumOp<T> {
  using Acc = Wide<T>;
  static Acc init() { return 1; }
  static void add(Acc& a, T x) { a *= static_cast<Acc>(x); }
  static void combine(Acc& a, Acc b) { a *= b; }
};
// Online log-sum-exp: running max and the sum of exp(x - max).
template <typename T>
struct LogSumExpOp {
  struct Acc {
    double m, s;
  };
  static constexpr bool kBool = false;
  static Acc init() { return {-std::numeric_limits<double>::infinity(), 0.0}; }
  static void add(Acc& a, T x) {
    const double v = static_cast<double>(x);
    if (v == -std::numeric_limits<double>::infinity()) return;
    if (v > a.m) {
      a.s = a.s * std::exp(a.m - v) + 1.0;
      a.m = v;
    } else {
      a.s += std::exp(v - a.m);
    }
  }
  static void combine(Acc& a, Acc b) {
    if (b.s == 0) return;
    if (b.m > a.m) std::swap(a, b);
    a.s += b.m == a.m ? b.s : b.s * std::exp(b.m - a.m);  // equal: also both +inf
  }
  static T finish(Acc a, int64_t) { return static_cast<T>(a.s == 0 ? a.m : a.m + std::log(a.s)); }
};
template <typename T>
struct MaxOp {
  using Acc = T;
  static constexpr bool kBool = true;
  static Acc init() {
    if constexpr (std::is_floating_point_v<T>) return -std::numeric_limits<T>::infinity();
    else return std::numeric_limits<T>::lowest();
  }
  static void add(Acc& a, T x) {
    if (x > a || x != x) a = x;  // NaN sticks
  }
  static void combine(Acc& a, Acc b) { add(a, b); }
  static T finish(Acc a, int64_t) { return a; }
};
template <typename T>
struct MinOp {
  using Acc = T;
  static constexpr bool kBool = true;
  static Acc init() {
    if constexpr (std::is_floating_point_v<T>) return std::numeric_limits<T>::infinity();
    else return std::numeric_limits<T>::max();
  }
  static void add(Acc& a, T x) {
    if (x < a || x != x) a = x;
  }
  static void combine(Acc& a, Acc b) { add(a, b); }
  static T finish(Acc a, int64_t) { return a; }
};

template <typename Op, typename T>
void reduce_typed(ThreadPool& pool, const T* x, const std::vector<int64_t>& shape,
                  const std::vector<bool>& red, T* y) {
  using Acc = typename Op::Acc;
  // Merge runs of adjacent reduced / kept dims; size-1 dims do not matter.
  std::vector<int64_t> gsize;
  std::vector<bool> gred;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!gsize.empty() && gred.back() == red[d]) {
      gsize.back() *= shape[d];
    } else {
      gsize.push_back(shape[d]);
      gred.push_back(red[d]);
    }
  }
  int64_t outer = 1, r = 1, inner = 1;
  const size_t g = gsize.size();
  bool simple = true;
  if (g == 1) {
    (gred[0] ? r : outer) = gsize[0];
  } else if (g == 2) {
    if (gred[0]) r = gsize[0], inner = gsize[1];
    else outer = gsize[0], r = gsize[1];
  } else if (g == 3 && gred[1]) {
    outer = gsize[0], r = gsize[1], inner = gsize[2];
  } else if (g >= 3) {
    simple = false;
  }
  if (simple && inner == 1) {  // contiguous rows (reducing the last axes)
    pool.parallel_for(outer, grain_for(r), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* row = x + o * r;
        Acc a = Op::init(), a1 = a, a2 = a, a3 = a;  // independent chains pipeline better
        int64_t k = 0;
        for (; k + 4 <= r; k += 4) {
          Op::add(a, row[k]);
          Op::add(a1, row[k + 1]);
          Op::add(a2, row[k + 2]);
          Op::add(a3, row[k + 3]);
        }
        for (; k < r; ++k) Op::add(a, row[k]);
        Op::combine(a1, a3);
        Op::combine(a, a2);
        Op::combine(a, a1);
        y[o] = Op::finish(a, r);
      }
    });
    return;
  }
  if (simple) {  // [outer, r, inner]: accumulate whole rows of `inner` values
    pool.parallel_for(outer * inner, grain_for(r), [&](int64_t b, int64_t e) {
      std::unique_ptr<Acc[]> acc(new Acc[std::min(inner, e - b)]);  // not vector<bool>
      for_segments(b, e, inner, [&](int64_t o, int64_t i0, int64_t i1) {
        std::fill(acc.get(), acc.get() + (i1 - i0), Op::init());
        for (int64_t k = 0; k < r; ++k) {
          const T* row = x + (o * r + k) * inner;
          for (int64_t i = i0; i < i1; ++i) Op::add(acc[i - i0], row[i]);
        }
        for (int64_t i = i0; i < i1; ++i) y[o * inner + i] = Op::finish(acc[i - i0], r);
      });
    });
    return;
  }
  // General: list the offsets of the reduced elements once, walk the kept dims per output.
  std::vector<int64_t> gstride(g);
  int64_t acc_stride = 1;
  for (size_t i = g; i-- > 0;) gstride[i] = acc_stride, acc_stride *= gsize[i];
  std::vector<int64_t> offs{0}, kept_size, kept_stride;
  for (size_t i = 0; i < g; ++i) {
    if (!gred[i]) {
      kept_size.push_back(gsize[i]);
      kept_stride.push_back(gstride[i]);
      continue;
    }
    std::vector<int64_t> next;
    next.reserve(offs.size() * gsize[i]);
    for (int64_t base : offs)
      for (int64_t k = 0; k < gsize[i]; ++k) next.push_back(base + k * gstride[i]);
    offs.swap(next);
  }
  const int64_t nout = prod(kept_size, 0, kept_size.size());
  const int64_t nr = static_cast<int64_t>(offs.size());
  pool.parallel_for(nout, grain_for(nr), [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      int64_t rem = j, base = 0;
      for (size_t d = kept_size.size(); d-- > 0;) {
        base += (rem % kept_size[d]) * kept_stride[d];
        rem /= kept_size[d];
      }
      Acc a = Op::init();
      for (int64_t k = 0; k < nr; ++k) Op::add(a, x[base + offs[k]]);
      y[j] = Op::finish(a, nr);
    }
  });
}

// Which dims to reduce; `noop` when axes are empty and noop_with_empty_axes=1.
Result<std::vector<bool>> reduced_dims(const KernelContext& ctx, int rank, bool& noop) {
  std::vector<int64_t> axes;
  if (const Value* a = ctx.input(1)) {
    LLMC_ASSIGN_OR_RETURN(axes, read_int_values(*a, "axes"));
  } else if (const auto* at = ctx.attr_ints("axes")) {
    axes = *at;
  }
  std::vector<bool> red(static_cast<size_t>(rank), axes.empty());
  noop = axes.empty() && ctx.attr_int("noop_with_empty_axes", 0) != 0;
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) return invalid_input("axis ", a, " is out of range for rank ", rank);
    const int d = static_cast<int>(a < 0 ? a + rank : a);
    if (red[d]) return invalid_input("axis ", a, " is listed twice in axes");
    red[d] = true;
  }
  return red;
}

template <template <typename> class Op>
Status reduce_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const Value& x = ctx.in(0);
  bool noop = false;
  LLMC_ASSIGN_OR_RETURN(std::vector<bool> red, reduced_dims(ctx, x.rank(), noop));
  if (noop) {
    ctx.set_output(0, x);
    return Status::ok();
  }
  const bool keepdims = ctx.attr_int("keepdims", 1) != 0;
  std::vector<int64_t> out_shape;
  for (int d = 0; d < x.rank(); ++d) {
    if (!red[d]) out_shape.push_back(x.dim(d));
    else if (keepdims) out_shape.push_back(1);
  }
  return dispatch_numeric(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    if constexpr (std::is_same_v<T, bool> && !Op<T>::kBool) {
      return unsupported("bool input is not supported by ", ctx.node().op_type);
    } else {
      Value& y = ctx.output(0, x.dtype(), out_shape);
      reduce_typed<Op<T>>(ctx.pool(), x.data<T>(), x.shape(), red, y.mutable_data<T>());
      return Status::ok();
    }
  });
}

template <template <typename> class Op>
KernelFn reduce_fn() {
  return [](KernelContext& ctx) { return run_widened(ctx, {0}, reduce_kernel<Op>); };
}

// ---- ArgMax / ArgMin ----

template <bool kMax>
Status arg_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const Value& x = ctx.in(0);
  if (x.rank() == 0) return invalid_input("input must have rank >= 1");
  LLMC_ASSIGN_OR_RETURN(const int axis, normalize_axis(ctx.attr_int("axis", 0), x.rank()));
  const bool keepdims = ctx.attr_int("keepdims", 1) != 0;
  const bool last = ctx.attr_int("select_last_index", 0) != 0;
  const int64_t outer = prod(x.shape(), 0, axis), r = x.dim(axis);
  const int64_t inner = prod(x.shape(), axis + 1, x.shape().size());
  if (r == 0) return invalid_input("cannot take ", kMax ? "ArgMax" : "ArgMin", " over axis ", axis, " of size 0 (shape ", shape_str(x.shape()), ")");
  std::vector<int64_t> out_shape = x.shape();
  if (keepdims) out_shape[axis] = 1;
  else out_shape.erase(out_shape.begin() + axis);
  return dispatch_numeric(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    const T* xd = x.data<T>();
    int64_t* yd = ctx.output(0, DType::kI64, out_shape).template mutable_data<int64_t>();
    ctx.pool().parallel_for(outer * inner, grain_for(r), [&](int64_t b, int64_t e) {
      std::unique_ptr<T[]> best(new T[std::min(inner, e - b)]);  // not vector<bool>
      for_segments(b, e, inner, [&](int64_t o, int64_t i0, int64_t i1) {
        const T* base = xd + o * r * inner;
        int64_t* yo = yd + o * inner;
        std::copy(base + i0, base + i1, best.get());
        for (int64_t i = i0; i < i1; ++i) yo[i] = 0;
        for (int64_t k = 1; k < r; ++k) {
          const T* row = base + k * inner;
          for (int64_t i = i0; i < i1; ++i) {
            const T v = row[i];
            T& cur = best[i - i0];
            bool take;
            if constexpr (std::is_floating_point_v<T>) {
              if (cur != cur) take = last && v != v;  // the first (or last) NaN wins
              else if (v != v) take = true;
              else take = kMax ? (last ? v >= cur : v > cur) : (last ? v <= cur : v < cur);
            } else {
              take = kMax ? (last ? v >= cur : v > cur) : (last ? v <= cur : v < cur);
            }
            if (take) cur = v, yo[i] = k;
          }
        }
      });
    });
    return Status::ok();
  });
}

// ---- CumSum ----

Status cumsum_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& x = ctx.in(0);
  LLMC_ASSIGN_OR_RETURN(std::vector<int64_t> axis_v, read_int_values(ctx.in(1), "axis"));
  if (axis_v.size() != 1) return invalid_input("axis must hold one value, got ", axis_v.size());
  if (x.rank() == 0) return invalid_input("input must have rank >= 1");
  LLMC_ASSIGN_OR_RETURN(const int axis, normalize_axis(axis_v[0], x.rank()));
  const bool exclusive = ctx.attr_int("exclusive", 0) != 0, reverse = ctx.attr_int("reverse", 0) != 0;
  const int64_t outer = prod(x.shape(), 0, axis), r = x.dim(axis);
  const int64_t inner = prod(x.shape(), axis + 1, x.shape().size());
  return dispatch_numeric(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    if constexpr (std::is_same_v<T, bool>) {
      return unsupported("bool input is not supported by CumSum");
    } else {
      using Acc = Wide<T>;
      const T* xd = x.data<T>();
      T* yd = ctx.output(0, x.dtype(), x.shape()).template mutable_data<T>();
      ctx.pool().parallel_for(outer * inner, grain_for(r), [&](int64_t b, int64_t e) {
        std::vector<Acc> acc;
        for_segments(b, e, inner, [&](int64_t o, int64_t i0, int64_t i1) {
          acc.assign(static_cast<size_t>(i1 - i0), Acc(0));
          for (int64_t step = 0; step < r; ++step) {
            const int64_t k = reverse ? r - 1 - step : step;
            const int64_t off = (o * r + k) * inner;
            for (int64_t i = i0; i < i1; ++i) {
              Acc& a = acc[i - i0];
              if (exclusive) {
                yd[off + i] = static_cast<T>(a);
                a += static_cast<Acc>(xd[off + i]);
              } else {
                a += static_cast<Acc>(xd[off + i]);
                yd[off + i] = static_cast<T>(a);
              }
            }
          }
        });
      });
      return Status::ok();
    }
  });
}

// ---- TopK ----

Status topk_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const Value& x = ctx.in(0);
  int64_t k = 0;
  if (const Value* kv = ctx.input(1)) {
    LLMC_ASSIGN_OR_RETURN(std::vector<int64_t> kk, read_int_values(*kv, "K"));
    if (kk.size() != 1) return invalid_input("K must hold one value, got ", kk.size());
    k = kk[0];
  } else if (ctx.has_attr("k")) {
    k = ctx.attr_int("k", 0);
  } else {
    return invalid_input("K is missing (input 1)");
  }
  if (x.rank() == 0) return invalid_input("input must have rank >= 1");
  LLMC_ASSIGN_OR_RETURN(const int axis, normalize_axis(ctx.attr_int("axis", -1), x.rank()));
  const bool largest = ctx.attr_int("largest", 1) != 0;
  const int64_t outer = prod(x.shape(), 0, axis), r = x.dim(axis);
  const int64_t inner = prod(x.shape(), axis + 1, x.shape().size());
  if (k < 0 || k > r)
    return invalid_input("K = ", k, " is out of range for axis ", axis, " of size ", r, " (shape ", shape_str(x.shape()), ")");
  std::vector<int64_t> out_shape = x.shape();
  out_shape[axis] = k;
  return dispatch_numeric(x.dtype(), [&](auto t) -> Status {
    using T = decltype(t);
    const T* xd = x.data<T>();
    T* vd = ctx.output(0, x.dtype(), out_shape).template mutable_data<T>();
    int64_t* id = ctx.output(1, DType::kI64, out_shape).template mutable_data<int64_t>();
    // NaN ranks above every number; equal values keep the lower index first.
    auto greater = [](T a, T b) {
      if constexpr (std::is_floating_point_v<T>) {
        if (a != a) return b == b;
        if (b != b) return false;
      }
      return a > b;
    };
    ctx.pool().parallel_for(outer * inner, grain_for(r * 4), [&](int64_t b, int64_t e) {
      std::unique_ptr<T[]> vals(new T[r]);  // not vector<bool>
      std::vector<int64_t> idx(static_cast<size_t>(r));
      for (int64_t s = b; s < e; ++s) {
        const int64_t o = s / inner, i = s % inner;
        const T* base = xd + o * r * inner + i;
        for (int64_t j = 0; j < r; ++j) vals[j] = base[j * inner];
        std::iota(idx.begin(), idx.end(), int64_t{0});
        auto before = [&](int64_t a, int64_t c) {
          const T va = vals[a], vc = vals[c];
          if (largest ? greater(va, vc) : greater(vc, va)) return true;
          if (largest ? greater(vc, va) : greater(va, vc)) return false;
          return a < c;
        };
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), before);
        const int64_t ob = o * k * inner + i;
        for (int64_t j = 0; j < k; ++j) {
          vd[ob + j * inner] = vals[idx[j]];
          id[ob + j * inner] = idx[j];
        }
      }
    });
    return Status::ok();
  });
}

}  // namespace

void register_reduce_kernels(KernelRegistry& r) {
  r.add("ReduceSum", reduce_fn<SumOp>());
  r.add("ReduceMean", reduce_fn<MeanOp>());
  r.add("ReduceMax", reduce_fn<MaxOp>());
  r.add("ReduceMin", reduce_fn<MinOp>());
  r.add("ReduceProd", reduce_fn<ProdOp>());
  r.add("ReduceSumSquare", reduce_fn<SumSquareOp>());
  r.add("ReduceL1", reduce_fn<L1Op>());
  r.add("ReduceL2", reduce_fn<L2Op>());
  r.add("ReduceLogSum", reduce_fn<LogSumOp>());
  r.add("ReduceLogSumExp", reduce_fn<LogSumExpOp>());
  r.add("ArgMax", [](KernelContext& ctx) { return run_widened(ctx, {}, arg_kernel<true>); });
  r.add("ArgMin", [](KernelContext& ctx) { return run_widened(ctx, {}, arg_kernel<false>); });
  r.add("CumSum", [](KernelContext& ctx) { return run_widened(ctx, {0}, cumsum_kernel); });
  r.add("TopK", [](KernelContext& ctx) { return run_widened(ctx, {0}, topk_kernel); });
}

}  // namespace llmc::rt
