// Data movement kernels: Transpose, Concat, Split, Slice, Gather, GatherElements, Tile, Pad,
// Trilu. All copy elements by byte size, so every fixed-width dtype works (not strings or
// packed sub-byte types). Loops run over contiguous output rows with precomputed input
// strides; the inner copies are memcpy where the input is contiguous too.
#include <algorithm>
#include <cstring>
#include <limits>

#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {
namespace {

constexpr int64_t kGrainElems = 16384;  // elements per parallel chunk, at least

Result<size_t> elem_bytes(DType t) {
  const int bits = dtype_bits(t);
  if (bits <= 0 || bits % 8 != 0)
    return unsupported("dtype ", dtype_name(t), " is not supported by this kernel");
  return static_cast<size_t>(bits / 8);
}

int64_t grain_for(int64_t elems_per_item) {
  return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, elems_per_item));
}

// Calls f(T{}) with an unsigned integer type of `esz` bytes, or f(Bytes16{}) for 16 bytes.
struct Bytes16 {
  uint64_t lo, hi;
};
template <typename F>
void dispatch_size(size_t esz, F&& f) {
  switch (esz) {
    case 1: f(uint8_t{}); break;
    case 2: f(uint16_t{}); break;
    case 4: f(uint32_t{}); break;
    case 8: f(uint64_t{}); break;
    default: f(Bytes16{}); break;
  }
}

// dst[i] = src[i * stride] for `count` elements (stride in elements, may be 0 or negative).
void strided_copy(uint8_t* dst, const uint8_t* src, int64_t stride, int64_t count, size_t esz) {
  if (stride == 1) {
    std::memcpy(dst, src, count * esz);
    return;
  }
  dispatch_size(esz, [&](auto tag) {
    using T = decltype(tag);
    T* d = reinterpret_cast<T*>(dst);
    for (int64_t i = 0; i < count; ++i) std::memcpy(d + i, src + i * stride * int64_t(sizeof(T)), sizeof(T));
  });
}

// Mixed-radix counter over `dims`, tracking an element offset with per-dim `strides`.
struct Odometer {
  const std::vector<int64_t>& dims;
  const std::vector<int64_t>& strides;
  std::vector<int64_t> idx;
  int64_t offset = 0;
  Odometer(const std::vector<int64_t>& d, const std::vector<int64_t>& s, int64_t linear)
      : dims(d), strides(s), idx(d.size(), 0) {
    for (int i = static_cast<int>(d.size()) - 1; i >= 0; --i) {
      if (dims[i] == 0) continue;
      idx[i] = linear % dims[i];
      linear /= dims[i];
      offset += idx[i] * strides[i];
    }
  }
  void next() {
    for (int i = static_cast<int>(dims.size()) - 1; i >= 0; --i) {
      offset += strides[i];
      if (++idx[i] < dims[i]) return;
      offset -= idx[i] * strides[i];
      idx[i] = 0;
    }
  }
};

// ---------------------------------------------------------------- Transpose

Status transpose(KernelContext& ctx) {
  if (!ctx.input(0)) return ctx.fail("input 0 (data) is required");
  const Value& x = ctx.in(0);
  const int r = x.rank();
  std::vector<int64_t> perm(r);
  if (const auto* p = ctx.attr_ints("perm")) {
    perm = *p;
  } else {
    for (int i = 0; i < r; ++i) perm[i] = r - 1 - i;
  }
  if (static_cast<int>(perm.size()) != r)
    return ctx.fail("perm ", shape_str(perm), " does not match input rank ", r);
  std::vector<bool> seen(r, false);
  for (int64_t p : perm) {
    if (p < 0 || p >= r || seen[p]) return ctx.fail("perm ", shape_str(perm), " is not a permutation of 0..", r - 1);
    seen[p] = true;
  }
  std::vector<int64_t> out_shape(r);
  for (int i = 0; i < r; ++i) out_shape[i] = x.shape()[perm[i]];
  LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(x.dtype()));

  // Coalesce: drop size-1 dims, merge input dims that stay adjacent in the output.
  std::vector<int> keep_new(r, -1);
  std::vector<int64_t> d1;  // kept input dims
  for (int i = 0; i < r; ++i)
    if (x.shape()[i] != 1) {
      keep_new[i] = static_cast<int>(d1.size());
      d1.push_back(x.shape()[i]);
    }
  std::vector<int> p1;  // output order of kept input axes
  for (int i = 0; i < r; ++i)
    if (keep_new[perm[i]] >= 0) p1.push_back(keep_new[perm[i]]);
  std::vector<std::pair<int, int64_t>> groups;  // (first input axis, merged size), output order
  for (size_t i = 0; i < p1.size(); ++i) {
    if (i > 0 && p1[i] == p1[i - 1] + 1) {
      groups.back().second *= d1[p1[i]];
    } else {
      groups.push_back({p1[i], d1[p1[i]]});
    }
  }
  if (groups.size() <= 1 || x.numel() == 0) {  // order of the data unchanged
    ctx.set_output(0, x.reshaped(out_shape));
    return Status::ok();
  }
  const int rr = static_cast<int>(groups.size());
  std::vector<int> order(rr);  // group indices sorted by input position
  for (int i = 0; i < rr; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return groups[a].first < groups[b].first; });
  std::vector<int64_t> in_dims(rr), gperm(rr);
  for (int k = 0; k < rr; ++k) {
    in_dims[k] = groups[order[k]].second;
    gperm[order[k]] = k;
  }
  const auto in_strides = contiguous_strides(in_dims);
  std::vector<int64_t> odims(rr), istr(rr);  // output dims and their input strides
  for (int i = 0; i < rr; ++i) {
    odims[i] = in_dims[gperm[i]];
    istr[i] = in_strides[gperm[i]];
  }
  Value& out = ctx.output(0, x.dtype(), out_shape);
  const uint8_t* src = static_cast<const uint8_t*>(x.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());

  if (gperm[rr - 1] == rr - 1) {
    // The input's last dim stays last: copy contiguous blocks in output order.
    const int64_t block = odims[rr - 1];
    std::vector<int64_t> od(odims.begin(), odims.end() - 1), is(istr.begin(), istr.end() - 1);
    const int64_t rows = x.numel() / block;
    ctx.pool().parallel_for(rows, grain_for(block), [&](int64_t b, int64_t e) {
      Odometer it(od, is, b);
      for (int64_t row = b; row < e; ++row, it.next())
        std::memcpy(dst + row * block * esz, src + it.offset * esz, block * esz);
    });
    return Status::ok();
  }

  // Tiled 2-D transpose between output axis q (the input's contiguous axis) and the output's
  // last axis a, for every index of the other output axes.
  const int a = rr - 1;
  int q = 0;
  while (gperm[q] != rr - 1) ++q;
  const auto ostr = contiguous_strides(odims);
  std::vector<int64_t> od, is, os;
  for (int i = 0; i < rr; ++i)
    if (i != a && i != q) {
      od.push_back(odims[i]);
      is.push_back(istr[i]);
      os.push_back(ostr[i]);
    }
  constexpr int64_t kTile = 16;  // 16x16 tiles: a tile's input lines stay in L1
  const int64_t nq = odims[q], na = odims[a], sa = istr[a], oq = ostr[q];
  const int64_t qtiles = (nq + kTile - 1) / kTile;
  const int64_t outer = x.numel() / (nq * na);
  dispatch_size(esz, [&](auto tag) {
    using T = decltype(tag);
    const T* in = reinterpret_cast<const T*>(src);
    T* o = reinterpret_cast<T*>(dst);
    ctx.pool().parallel_for(outer * qtiles, grain_for(kTile * na), [&](int64_t b, int64_t e) {
      for (int64_t item = b; item < e; ++item) {
        const int64_t oi = item / qtiles, qt = item % qtiles;
        int64_t in_base = 0, out_base = 0, rem = oi;
        for (int d = static_cast<int>(od.size()) - 1; d >= 0; --d) {
          const int64_t v = rem % od[d];
          rem /= od[d];
          in_base += v * is[d];
          out_base += v * os[d];
        }
        const int64_t i0 = qt * kTile, i1 = std::min(nq, i0 + kTile);
        for (int64_t j0 = 0; j0 < na; j0 += kTile) {
          const int64_t j1 = std::min(na, j0 + kTile);
          for (int64_t i = i0; i < i1; ++i) {
            T* orow = o + out_base + i * oq;
            const T* irow = in + in_base + i;
            for (int64_t j = j0; j < j1; ++j) orow[j] = irow[j * sa];
          }
        }
      }
    });
  });
  return Status::ok();
}

// ---------------------------------------------------------------- Concat / Split

// memcpy for blocks, a plain move for the 4- and 8-byte blocks of concatenating or splitting
// on a last axis of size 1 (the rotary embedding's pairs), where a memcpy call per element
// dominated.
inline void copy_bytes(uint8_t* dst, const uint8_t* src, size_t n) {
  if (n == 4) {
    uint32_t v;
    std::memcpy(&v, src, 4);
    std::memcpy(dst, &v, 4);
  } else if (n == 8) {
    uint64_t v;
    std::memcpy(&v, src, 8);
    std::memcpy(dst, &v, 8);
  } else {
    std::memcpy(dst, src, n);
  }
}

Status concat(KernelContext& ctx) {
  std::vector<const Value*> ins;
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.input(i)) ins.push_back(ctx.input(i));
  if (ins.empty()) return ctx.fail("needs at least one input");
  const Value& first = *ins[0];
  if (!ctx.has_attr("axis")) return ctx.fail("missing 'axis' attribute");
  LLMC_ASSIGN_OR_RETURN(int axis, normalize_axis(ctx.attr_int("axis", 0), first.rank()));
  LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(first.dtype()));
  std::vector<int64_t> out_shape = first.shape();
  out_shape[axis] = 0;
  for (const Value* v : ins) {
    bool ok = v->dtype() == first.dtype() && v->rank() == first.rank();
    for (int d = 0; ok && d < first.rank(); ++d) ok = d == axis || v->shape()[d] == first.shape()[d];
    if (!ok)
      return ctx.fail("input shapes ", shape_str(first.shape()), " (", dtype_name(first.dtype()), ") and ",
                      shape_str(v->shape()), " (", dtype_name(v->dtype()), ") cannot be concatenated on axis ",
                      axis);
    out_shape[axis] += v->shape()[axis];
  }
  Value& out = ctx.output(0, first.dtype(), out_shape);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= out_shape[d];
  for (int d = axis + 1; d < first.rank(); ++d) inner *= out_shape[d];
  const int64_t total = out_shape[axis];
  std::vector<int64_t> offsets;
  int64_t off = 0;
  for (const Value* v : ins) {
    offsets.push_back(off);
    off += v->shape()[axis];
  }
  const int64_t n_in = static_cast<int64_t>(ins.size());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  std::vector<const uint8_t*> srcs;
  std::vector<int64_t> sizes;  // bytes each input contributes per outer index
  for (const Value* v : ins) {
    srcs.push_back(static_cast<const uint8_t*>(v->raw()));
    sizes.push_back(v->shape()[axis] * inner * static_cast<int64_t>(esz));
  }
  const int64_t row = total * inner * static_cast<int64_t>(esz);
  ctx.pool().parallel_for(outer, grain_for(total * inner + 1), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      uint8_t* d = dst + o * row;
      for (int64_t k = 0; k < n_in; ++k) {
        copy_bytes(d, srcs[k] + o * sizes[k], sizes[k]);
        d += sizes[k];
      }
    }
  });
  return Status::ok();
}

Status split(KernelContext& ctx) {
  if (!ctx.input(0)) return ctx.fail("input 0 (data) is required");
  const Value& x = ctx.in(0);
  LLMC_ASSIGN_OR_RETURN(int axis, normalize_axis(ctx.attr_int("axis", 0), x.rank()));
  LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(x.dtype()));
  const int64_t n_out = static_cast<int64_t>(ctx.num_outputs());
  const int64_t dim = x.shape()[axis];
  std::vector<int64_t> sizes;
  bool given = false;
  if (ctx.opset() < 13) {
    if (const auto* s = ctx.attr_ints("split")) {
      sizes = *s;
      given = true;
    }
  } else if (ctx.input(1)) {
    LLMC_ASSIGN_OR_RETURN(sizes, read_int_values(ctx.in(1), "split"));
    given = true;
  }
  if (given) {
    if (static_cast<int64_t>(sizes.size()) != n_out)
      return ctx.fail("split ", shape_str(sizes), " has ", sizes.size(), " entries for ", n_out, " outputs");
    int64_t sum = 0;
    for (int64_t s : sizes) {
      if (s < 0) return ctx.fail("split ", shape_str(sizes), " has a negative size");
      sum += s;
    }
    if (sum != dim)
      return ctx.fail("split ", shape_str(sizes), " sums to ", sum, " but axis ", axis, " of ",
                      shape_str(x.shape()), " has ", dim);
  } else {
    const bool has_num = ctx.opset() >= 18 && ctx.has_attr("num_outputs");
    if (has_num && ctx.attr_int("num_outputs", 0) != n_out)
      return ctx.fail("num_outputs ", ctx.attr_int("num_outputs", 0), " but the node has ", n_out, " outputs");
    if (n_out <= 0) return ctx.fail("no outputs");
    if (dim % n_out != 0 && ctx.opset() < 18)
      return ctx.fail("axis ", axis, " of ", shape_str(x.shape()), " cannot be split evenly into ", n_out);
    const int64_t chunk = (dim + n_out - 1) / n_out;  // opset 18: the last chunk may be smaller
    int64_t rem = dim;
    for (int64_t k = 0; k < n_out; ++k) {
      sizes.push_back(std::min(chunk, rem));
      rem -= sizes.back();
    }
  }
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.shape()[d];
  for (int d = axis + 1; d < x.rank(); ++d) inner *= x.shape()[d];
  const uint8_t* src = static_cast<const uint8_t*>(x.raw());
  int64_t off = 0;
  for (int64_t k = 0; k < n_out; ++k) {
    const int64_t s = sizes[k], start = off;
    off += s;
    if (!ctx.wants_output(k)) continue;
    std::vector<int64_t> shape = x.shape();
    shape[axis] = s;
    Value& out = ctx.output(k, x.dtype(), shape);
    uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
    const int64_t n = s * inner;
    if (n == 0) continue;
    ctx.pool().parallel_for(outer, grain_for(n), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o)
        copy_bytes(dst + o * n * esz, src + (o * dim + start) * inner * esz, n * esz);
    });
  }
  return Status::ok();
}

// ---------------------------------------------------------------- Slice

Status slice(KernelContext& ctx) {
  if (!ctx.input(0)) return ctx.fail("input 0 (data) is required");
  const Value& x = ctx.in(0);
  const int r = x.rank();
  std::vector<int64_t> starts, ends, axes, steps;
  if (ctx.opset() < 10) {
    const auto* s = ctx.attr_ints("starts");
    const auto* e = ctx.attr_ints("ends");
    if (!s || !e) return ctx.fail("missing 'starts' / 'ends' attributes");
    starts = *s;
    ends = *e;
    if (const auto* a = ctx.attr_ints("axes")) axes = *a;
  } else {
    if (!ctx.input(1) || !ctx.input(2)) return ctx.fail("inputs 1 (starts) and 2 (ends) are required");
    LLMC_ASSIGN_OR_RETURN(starts, read_int_values(ctx.in(1), "starts"));
    LLMC_ASSIGN_OR_RETURN(ends, read_int_values(ctx.in(2), "ends"));
    if (ctx.input(3)) {
      LLMC_ASSIGN_OR_RETURN(axes, read_int_values(ctx.in(3), "axes"));
    }
    if (ctx.input(4)) {
      LLMC_ASSIGN_OR_RETURN(steps, read_int_values(ctx.in(4), "steps"));
    }
  }
  const size_t n = starts.size();
  if (axes.empty() && !(ctx.opset() >= 10 && ctx.input(3)))
    for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty() && !(ctx.opset() >= 10 && ctx.input(4))) steps.assign(n, 1);
  if (ends.size() != n || axes.size() != n || steps.size() != n)
    return ctx.fail("starts ", shape_str(starts), ", ends ", shape_str(ends), ", axes ", shape_str(axes),
                    " and steps ", shape_str(steps), " must have one length");
  std::vector<int64_t> st(r, 0), step(r, 1), out_shape = x.shape();
  std::vector<bool> seen(r, false);
  for (size_t i = 0; i < n; ++i) {
    LLMC_ASSIGN_OR_RETURN(int ax, normalize_axis(axes[i], r));
    if (seen[ax]) return ctx.fail("axes ", shape_str(axes), " repeat axis ", axes[i]);
    seen[ax] = true;
    if (steps[i] == 0) return ctx.fail("steps ", shape_str(steps), " has a 0 step");
    const int64_t d = x.shape()[ax];
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += d;
    if (e < 0) e += d;
    int64_t count;
    if (steps[i] > 0) {
      s = std::clamp<int64_t>(s, 0, d);
      e = std::clamp<int64_t>(e, 0, d);
      count = e > s ? (e - s + steps[i] - 1) / steps[i] : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, d - 1);
      e = std::clamp<int64_t>(e, -1, d - 1);
      count = s > e ? (s - e + (-steps[i]) - 1) / (-steps[i]) : 0;
    }
    st[ax] = s;
    step[ax] = steps[i];
    out_shape[ax] = count;
  }
  if (out_shape == x.shape() && std::all_of(step.begin(), step.end(), [](int64_t v) { return v == 1; })) {
    ctx.set_output(0, x);
    return Status::ok();
  }
  LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(x.dtype()));
  Value& out = ctx.output(0, x.dtype(), out_shape);
  if (out.numel() == 0) return Status::ok();
  const auto in_str = contiguous_strides(x.shape());
  // Trailing dims taken whole form a contiguous block; axis k is the last one sliced.
  int k = r - 1;
  int64_t block = 1;
  while (k >= 0 && st[k] == 0 && step[k] == 1 && out_shape[k] == x.shape()[k]) block *= out_shape[k--];
  const int64_t cnt = k >= 0 ? out_shape[k] : 1, kstep = k >= 0 ? step[k] * in_str[k] : 0;
  int64_t base = 0;
  for (int d = 0; d < r; ++d) base += st[d] * in_str[d];
  std::vector<int64_t> od, is;
  for (int d = 0; d < k; ++d) {
    od.push_back(out_shape[d]);
    is.push_back(step[d] * in_str[d]);
  }
  const int64_t row = cnt * block, rows = out.numel() / row;
  const uint8_t* src = static_cast<const uint8_t*>(x.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  ctx.pool().parallel_for(rows, grain_for(row), [&](int64_t b, int64_t e) {
    Odometer it(od, is, b);
    for (int64_t ri = b; ri < e; ++ri, it.next()) {
      const uint8_t* s = src + (base + it.offset) * static_cast<int64_t>(esz);
      uint8_t* o = dst + ri * row * esz;
      if (block == 1) {
        strided_copy(o, s, kstep, cnt, esz);
      } else if (kstep == block) {
        std::memcpy(o, s, row * esz);
      } else {
        for (int64_t j = 0; j < cnt; ++j) std::memcpy(o + j * block * esz, s + j * kstep * int64_t(esz), block * esz);
      }
    }
  });
  return Status::ok();
}

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
    out_shape[d] = x.shape()[d] * reps[d];
  }
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
  for (int d = 0; d < r; ++d) {
    const int64_t crop_b = std::max<int64_t>(0, -pb[d]), crop_e = std::max<int64_t>(0, -pe[d]);
    const int64_t D = x.shape()[d] - crop_b - crop_e, before = std::max<int64_t>(0, pb[d]);
    if (D < 0) return ctx.fail("pads ", shape_str(pads), " remove more than dim ", d, " of ", shape_str(x.shape()));
    out_shape[d] = D + before + std::max<int64_t>(0, pe[d]);
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
      const int64_t split = upper ? std::clamp<int64_t>(i + k, 0, M) : std::clamp<int64_t>(i + k + 1, 0, M);
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

void register_data_movement_kernels(KernelRegistry& r) {
  r.add("Transpose", transpose);
  r.add("Concat", concat);
  r.add("Split", split);
  r.add("Slice", slice);
  r.add("Gather", gather);
  r.add("GatherElements", gather_elements);
  r.add("Tile", tile);
  r.add("Pad", pad);
  r.add("Trilu", trilu);
}

}  // namespace llmc::rt
