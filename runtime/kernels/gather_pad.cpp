// Index-driven data movement kernels: Gather, GatherElements, ScatterND, Tile, Pad, Trilu. Like
// data_movement.cpp they copy elements by byte size, so every fixed-width dtype works.
#include <algorithm>
#include <cstring>
#include <limits>

#include "ir/checked_math.h"
#include "runtime/kernels/data_movement_util.h"
#include "runtime/kernels/elementwise_types.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {
namespace {

using namespace data_movement;

// ---------------------------------------------------------------- Gather / GatherElements

Status gather(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& x = ctx.in(0);
  const Value& ind = ctx.in(1);
  if (x.rank() < 1) return ctx.fail("data must have rank >= 1, got a scalar");
  LLMC_ASSIGN_OR_RETURN(int axis, normalize_axis(ctx.attr_int("axis", 0), x.rank()));
  LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(x.dtype()));
  if (ind.dtype() != DType::kI64 && ind.dtype() != DType::kI32)
    return ctx.fail("indices must be int32 or int64, got ", dtype_name(ind.dtype()));
  const int64_t dim = x.shape()[axis], n = ind.numel();
  std::vector<int64_t> idx(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = ind.dtype() == DType::kI64 ? ind.data<int64_t>()[i] : ind.data<int32_t>()[i];
    if (v < -dim || v >= dim)
      return ctx.fail("index ", v, " is out of range for axis ", axis, " of shape ", shape_str(x.shape()));
    idx[i] = v < 0 ? v + dim : v;
  }
  std::vector<int64_t> out_shape(x.shape().begin(), x.shape().begin() + axis);
  out_shape.insert(out_shape.end(), ind.shape().begin(), ind.shape().end());
  out_shape.insert(out_shape.end(), x.shape().begin() + axis + 1, x.shape().end());
  LLMC_RETURN_IF_ERROR(ctx.check_output(x.dtype(), out_shape));
  Value& out = ctx.output(0, x.dtype(), out_shape);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.shape()[d];
  for (int d = axis + 1; d < x.rank(); ++d) inner *= x.shape()[d];
  if (out.numel() == 0) return Status::ok();
  const uint8_t* src = static_cast<const uint8_t*>(x.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  const size_t row = inner * esz;
  if (inner == 1) {
    dispatch_size(esz, [&](auto tag) {
      using T = decltype(tag);
      const T* s = reinterpret_cast<const T*>(src);
      T* o = reinterpret_cast<T*>(dst);
      ctx.pool().parallel_for(outer * n, kGrainElems, [&](int64_t b, int64_t e) {
        for (int64_t item = b; item < e; ++item) o[item] = s[(item / n) * dim + idx[item % n]];
      });
    });
    return Status::ok();
  }
  ctx.pool().parallel_for(outer * n, grain_for(inner), [&](int64_t b, int64_t e) {
    for (int64_t item = b; item < e; ++item)
      std::memcpy(dst + item * row, src + ((item / n) * dim + idx[item % n]) * row, row);
  });
  return Status::ok();
}

Status gather_elements(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& x = ctx.in(0);
  const Value& ind = ctx.in(1);
  const int r = x.rank();
  if (r < 1 || ind.rank() != r)
    return ctx.fail("data ", shape_str(x.shape()), " and indices ", shape_str(ind.shape()), " must have one rank >= 1");
  LLMC_ASSIGN_OR_RETURN(int axis, normalize_axis(ctx.attr_int("axis", 0), r));
  LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(x.dtype()));
  if (ind.dtype() != DType::kI64 && ind.dtype() != DType::kI32)
    return ctx.fail("indices must be int32 or int64, got ", dtype_name(ind.dtype()));
  for (int d = 0; d < r; ++d)
    if (d != axis && ind.shape()[d] > x.shape()[d])
      return ctx.fail("indices ", shape_str(ind.shape()), " exceed data ", shape_str(x.shape()), " on axis ", d);
  const int64_t dim = x.shape()[axis];
  const auto in_str = contiguous_strides(x.shape());
  Value& out = ctx.output(0, x.dtype(), ind.shape());
  const int64_t n = out.numel();
  std::vector<int64_t> str = in_str;
  str[axis] = 0;  // the axis coordinate comes from the index
  const uint8_t* src = static_cast<const uint8_t*>(x.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  // Single-threaded: this op is not on a hot path.
  Odometer it(ind.shape(), str, 0);
  for (int64_t i = 0; i < n; ++i, it.next()) {
    int64_t v = ind.dtype() == DType::kI64 ? ind.data<int64_t>()[i] : ind.data<int32_t>()[i];
    if (v < -dim || v >= dim)
      return ctx.fail("index ", v, " is out of range for axis ", axis, " of shape ", shape_str(x.shape()));
    if (v < 0) v += dim;
    std::memcpy(dst + i * esz, src + (it.offset + v * in_str[axis]) * esz, esz);
  }
  return Status::ok();
}

// ScatterND: a copy of data with the slices the index tuples name replaced by (reduction
// "none") or combined with (add, mul, max, min) the updates. Hugging Face's Llama/Qwen2
// exports build their causal mask with it (a slice assignment). Tuples apply in order, as
// ONNX Runtime's serial loop does, so on duplicates the last one wins.
Status scatter_nd(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(3));
  const Value& x = ctx.in(0);
  const Value& ind = ctx.in(1);
  const Value& upd = ctx.in(2);
  const std::string reduction = ctx.attr_string("reduction", "none");
  if (reduction != "none" && reduction != "add" && reduction != "mul" && reduction != "max" && reduction != "min")
    return ctx.fail("reduction '", reduction, "' is not one of none, add, mul, max, min");
  if (ind.dtype() != DType::kI64) return ctx.fail("indices must be int64, got ", dtype_name(ind.dtype()));
  if (upd.dtype() != x.dtype()) return ctx.fail("updates must have the data's dtype");
  LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(x.dtype()));
  const int r = x.rank(), q = ind.rank();
  if (q < 1 || r < 1) return ctx.fail("data and indices must have rank >= 1");
  const int64_t k = ind.shape().back();
  if (k < 1 || k > r) return ctx.fail("indices ", shape_str(ind.shape()), " index more dims than data ", shape_str(x.shape()));
  std::vector<int64_t> want(ind.shape().begin(), ind.shape().end() - 1);
  want.insert(want.end(), x.shape().begin() + k, x.shape().end());
  if (upd.shape() != want)
    return ctx.fail("updates ", shape_str(upd.shape()), " must have shape ", shape_str(want));
  int64_t slice = 1;
  for (int d = static_cast<int>(k); d < r; ++d) slice *= x.shape()[d];
  const int64_t tuples = ind.numel() / k;
  const auto strides = contiguous_strides(x.shape());
  std::vector<int64_t> offsets(static_cast<size_t>(tuples));
  const int64_t* idx = ind.data<int64_t>();
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t offset = 0;
    for (int64_t d = 0; d < k; ++d) {
      const int64_t v = idx[t * k + d], dim = x.shape()[d];
      if (v < -dim || v >= dim)
        return ctx.fail("index ", v, " is out of range for dim ", d, " of shape ", shape_str(x.shape()));
      offset += (v < 0 ? v + dim : v) * strides[d];
    }
    offsets[t] = offset;
  }
  Value& out = ctx.output(0, x.dtype(), x.shape());
  if (out.numel() == 0) return Status::ok();
  std::memcpy(out.mutable_raw(), x.raw(), out.numel() * esz);
  if (reduction == "none") {
    uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
    const uint8_t* src = static_cast<const uint8_t*>(upd.raw());
    for (int64_t t = 0; t < tuples; ++t) std::memcpy(dst + offsets[t] * esz, src + t * slice * esz, slice * esz);
    return Status::ok();
  }
  return elementwise::dispatch<elementwise::kNumeric>(x.dtype(), [&](auto tag) -> Status {
    using T = decltype(tag);
    using N = elementwise::Num<T>;
    using C = typename N::C;
    T* dst = out.mutable_data<T>();
    const T* src = upd.data<T>();
    const int op = reduction == "add" ? 0 : reduction == "mul" ? 1 : reduction == "max" ? 2 : 3;
    for (int64_t t = 0; t < tuples; ++t)
      for (int64_t i = 0; i < slice; ++i) {
        const C a = N::ld(dst[offsets[t] + i]), b = N::ld(src[t * slice + i]);
        const C v = op == 0 ? C(a + b) : op == 1 ? C(a * b) : op == 2 ? std::max(a, b) : std::min(a, b);
        dst[offsets[t] + i] = N::st(v);
      }
    return Status::ok();
  });
}

// ---------------------------------------------------------------- Tile / Pad / Trilu

Status tile(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& x = ctx.in(0);
  const int r = x.rank();
  LLMC_ASSIGN_OR_RETURN(auto reps, read_int_values(ctx.in(1), "repeats"));
  if (static_cast<int>(reps.size()) != r)
    return ctx.fail("repeats ", shape_str(reps), " must have one entry per dim of ", shape_str(x.shape()));
  LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(x.dtype()));
  std::vector<int64_t> out_shape(r);
  for (int d = 0; d < r; ++d) {
    if (reps[d] < 0) return ctx.fail("repeats ", shape_str(reps), " has a negative entry");
    const auto n = checked_mul(x.shape()[d], reps[d]);
    if (!n) return ctx.fail("repeats ", shape_str(reps), " of ", shape_str(x.shape()), " make an output too large");
    out_shape[d] = *n;
  }
  LLMC_RETURN_IF_ERROR(ctx.check_output(x.dtype(), out_shape));
  Value& out = ctx.output(0, x.dtype(), out_shape);
  if (out.numel() == 0) return Status::ok();
  if (r == 0) {
    std::memcpy(out.mutable_raw(), x.raw(), esz);
    return Status::ok();
  }
  // Each output row (last dim) is the matching input row repeated reps[r-1] times.
  const int64_t in_row = x.shape()[r - 1], out_row = out_shape[r - 1];
  const auto in_str = contiguous_strides(x.shape());
  const int64_t rows = out.numel() / out_row;
  const uint8_t* src = static_cast<const uint8_t*>(x.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  ctx.pool().parallel_for(rows, grain_for(out_row), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      int64_t in_off = 0, rem = row;
      for (int d = r - 2; d >= 0; --d) {
        in_off += (rem % out_shape[d]) % x.shape()[d] * in_str[d];
        rem /= out_shape[d];
      }
      for (int64_t k = 0; k < reps[r - 1]; ++k)
        std::memcpy(dst + (row * out_row + k * in_row) * esz, src + in_off * esz, in_row * esz);
    }
  });
  return Status::ok();
}

Status pad(KernelContext& ctx) {
  if (!ctx.input(0)) return ctx.fail("input 0 (data) is required");
  const Value& x = ctx.in(0);
  const int r = x.rank();
  LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(x.dtype()));
  const std::string mode = ctx.attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    return unsupported("Pad mode '", mode, "' is not supported");
  std::vector<int64_t> pads, axes;
  std::vector<uint8_t> cval(esz, 0);
  if (ctx.opset() < 11) {
    const auto* p = ctx.attr_ints("pads");
    if (!p) return ctx.fail("missing 'pads' attribute");
    pads = *p;
    const double v = ctx.attr_float("value", 0.f);
    LLMC_RETURN_IF_ERROR(dispatch_numeric(x.dtype(), [&](auto t) -> Status {
      const auto c = static_cast<decltype(t)>(v);
      std::memcpy(cval.data(), &c, sizeof(c));
      return Status::ok();
    }));
  } else {
    if (!ctx.input(1)) return ctx.fail("input 1 (pads) is required");
    LLMC_ASSIGN_OR_RETURN(pads, read_int_values(ctx.in(1), "pads"));
    if (const Value* c = ctx.input(2)) {
      if (c->dtype() != x.dtype() || c->numel() != 1)
        return ctx.fail("constant_value must be one ", dtype_name(x.dtype()), " value, got ",
                        dtype_name(c->dtype()), " ", shape_str(c->shape()));
      std::memcpy(cval.data(), c->raw(), esz);
    }
    if (ctx.opset() >= 18 && ctx.input(3)) {
      LLMC_ASSIGN_OR_RETURN(axes, read_int_values(ctx.in(3), "axes"));
    }
  }
  if (axes.empty())
    for (int d = 0; d < r; ++d) axes.push_back(d);
  const size_t na = axes.size();
  if (pads.size() != 2 * na)
    return ctx.fail("pads ", shape_str(pads), " must have 2 x ", na, " entries for input ", shape_str(x.shape()));
  std::vector<int64_t> pb(r, 0), pe(r, 0);
  std::vector<bool> seen(r, false);
  for (size_t i = 0; i < na; ++i) {
    LLMC_ASSIGN_OR_RETURN(int ax, normalize_axis(axes[i], r));
    if (seen[ax]) return ctx.fail("axes ", shape_str(axes), " repeat axis ", axes[i]);
    seen[ax] = true;
    pb[ax] = pads[i];
    pe[ax] = pads[i + na];
  }
  std::vector<int64_t> out_shape(r);
  std::vector<std::vector<int64_t>> maps(r);  // output coordinate -> input coordinate, -1 = constant
  // Negative pads crop first; the remaining pads grow the cropped input (as onnxruntime does).
  // Pads come from data: a crop past the dim or a size past int64 is refused before anything
  // (the coordinate maps included) is sized from them.
  std::vector<int64_t> kept(r);
  for (int d = 0; d < r; ++d) {
    const int64_t dim = x.shape()[d];
    if ((pb[d] < 0 && pb[d] < -dim) || (pe[d] < 0 && pe[d] < -dim) ||
        (pb[d] < 0 && pe[d] < 0 && -pb[d] > dim + pe[d]))
      return ctx.fail("pads ", shape_str(pads), " remove more than dim ", d, " of ", shape_str(x.shape()));
    kept[d] = dim + std::min<int64_t>(0, pb[d]) + std::min<int64_t>(0, pe[d]);
    auto grown = checked_add(kept[d], std::max<int64_t>(0, pb[d]));
    if (grown) grown = checked_add(*grown, std::max<int64_t>(0, pe[d]));
    if (!grown) return ctx.fail("pads ", shape_str(pads), " make dim ", d, " too large");
    out_shape[d] = *grown;
  }
  LLMC_RETURN_IF_ERROR(ctx.check_output(x.dtype(), out_shape));
  for (int d = 0; d < r; ++d) {
    const int64_t crop_b = std::max<int64_t>(0, -pb[d]);
    const int64_t D = kept[d], before = std::max<int64_t>(0, pb[d]);
    if (mode != "constant" && D == 0 && out_shape[d] > 0)
      return ctx.fail("mode '", mode, "' cannot pad empty dim ", d, " of ", shape_str(x.shape()));
    maps[d].resize(out_shape[d]);
    for (int64_t o = 0; o < out_shape[d]; ++o) {
      int64_t i = o - before;
      if (i < 0 || i >= D) {
        if (mode == "constant") {
          maps[d][o] = -1;
          continue;
        } else if (mode == "edge") {
          i = std::clamp<int64_t>(i, 0, D - 1);
        } else if (mode == "wrap") {
          i = ((i % D) + D) % D;
        } else if (D == 1) {
          i = 0;
        } else {
          const int64_t p = 2 * (D - 1);
          i = ((i % p) + p) % p;
          if (i >= D) i = p - i;
        }
      }
      maps[d][o] = i + crop_b;
    }
  }
  Value& out = ctx.output(0, x.dtype(), out_shape);
  if (out.numel() == 0) return Status::ok();
  if (r == 0) {
    std::memcpy(out.mutable_raw(), x.raw(), esz);
    return Status::ok();
  }
  // Output columns [lo, hi) of the last dim copy a contiguous input run.
  const int64_t O = out_shape[r - 1];
  const int64_t lo = std::min<int64_t>(std::max<int64_t>(0, pb[r - 1]), O);
  const int64_t hi = std::min<int64_t>(lo + x.shape()[r - 1] - std::max<int64_t>(0, -pb[r - 1]) -
                                           std::max<int64_t>(0, -pe[r - 1]), O);
  const auto in_str = contiguous_strides(x.shape());
  const uint8_t* src = static_cast<const uint8_t*>(x.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  const auto& last = maps[r - 1];
  ctx.pool().parallel_for(out.numel() / O, grain_for(O), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      uint8_t* o = dst + row * O * esz;
      int64_t in_off = 0, rem = row;
      bool constant_row = false;
      for (int d = r - 2; d >= 0; --d) {
        const int64_t i = maps[d][rem % out_shape[d]];
        rem /= out_shape[d];
        if (i < 0) constant_row = true;
        in_off += i * in_str[d];
      }
      auto put = [&](int64_t j) {
        const int64_t i = constant_row ? -1 : last[j];
        std::memcpy(o + j * esz, i < 0 ? cval.data() : src + (in_off + i) * esz, esz);
      };
      for (int64_t j = 0; j < lo; ++j) put(j);
      if (constant_row) {
        for (int64_t j = lo; j < hi; ++j) put(j);
      } else if (hi > lo) {
        std::memcpy(o + lo * esz, src + (in_off + last[lo]) * esz, (hi - lo) * esz);
      }
      for (int64_t j = hi; j < O; ++j) put(j);
    }
  });
  return Status::ok();
}

Status trilu(KernelContext& ctx) {
  if (!ctx.input(0)) return ctx.fail("input 0 (data) is required");
  const Value& x = ctx.in(0);
  if (x.rank() < 2) return ctx.fail("input must have rank >= 2, got ", shape_str(x.shape()));
  LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(x.dtype()));
  int64_t k = 0;
  if (const Value* kv = ctx.input(1)) {
    LLMC_ASSIGN_OR_RETURN(auto ks, read_int_values(*kv, "k"));
    if (ks.size() != 1) return ctx.fail("k must hold one value, got shape ", shape_str(kv->shape()));
    k = ks[0];
  }
  const bool upper = ctx.attr_int("upper", 1) != 0;
  const int64_t N = x.dim(-2), M = x.dim(-1);
  Value& out = ctx.output(0, x.dtype(), x.shape());
  if (out.numel() == 0) return Status::ok();
  const uint8_t* src = static_cast<const uint8_t*>(x.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  const int64_t rows = out.numel() / M;
  ctx.pool().parallel_for(rows, grain_for(M), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t i = row % N;
      // upper keeps j >= i + k; lower keeps j <= i + k.
      // k comes from data: clamp it first so i + k + 1 cannot overflow.
      const int64_t kk = std::clamp<int64_t>(k, -N - 1, M + 1);
      const int64_t split = upper ? std::clamp<int64_t>(i + kk, 0, M) : std::clamp<int64_t>(i + kk + 1, 0, M);
      uint8_t* o = dst + row * M * esz;
      const uint8_t* s = src + row * M * esz;
      if (upper) {
        std::memset(o, 0, split * esz);
        std::memcpy(o + split * esz, s + split * esz, (M - split) * esz);
      } else {
        std::memcpy(o, s, split * esz);
        std::memset(o + split * esz, 0, (M - split) * esz);
      }
    }
  });
  return Status::ok();
}

}  // namespace

void register_gather_pad_kernels(KernelRegistry& r) {
  r.add("Gather", gather);
  r.add("GatherElements", gather_elements);
  r.add("ScatterND", scatter_nd);
  r.add("Tile", tile);
  r.add("Pad", pad);
  r.add("Trilu", trilu);
}

}  // namespace llmc::rt
