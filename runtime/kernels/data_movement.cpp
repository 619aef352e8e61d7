// Data movement kernels: Transpose, Concat, Split, Slice (Gather, GatherElements, Tile, Pad,
// Trilu are in gather_pad.cpp). All copy elements by byte size, so every fixed-width dtype works (not strings or
// packed sub-byte types). Loops run over contiguous output rows with precomputed input
// strides; the inner copies are memcpy where the input is contiguous too.
#include <algorithm>
#include <cstring>
#include <limits>

#include "runtime/kernels/data_movement_util.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {
namespace {

using namespace data_movement;

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

// Concat(cache, rows) along `axis` into padded storage (kKvAppend): in place when the cache is
// padded, nobody appended past it yet and the rows fit; else into new storage with room to
// grow by half again, so each step copies only the new rows (amortised).
Status kv_append(KernelContext& ctx, const Value& cache, const Value& rows, int axis, size_t esz) {
  const int64_t T = cache.dim(axis), n = rows.dim(axis), total = T + n;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= cache.dim(d);
  for (int d = axis + 1; d < cache.rank(); ++d) inner *= cache.dim(d);
  const Value src_rows = rows.densified();
  Value out;
  if (!cache.dense() && cache.padded_axis() == axis && cache.filled() == T && total <= cache.padded_extent()) {
    out = cache.grown_to(total);
  } else {
    std::vector<int64_t> shape = cache.shape();
    shape[axis] = total;
    out = Value::allocate_padded(cache.dtype(), shape, axis, total + std::max<int64_t>(64, total / 2));
    const int64_t old_stride = cache.dense() ? T : cache.padded_extent();
    const auto* src = static_cast<const uint8_t*>(cache.raw());
    auto* dst = static_cast<uint8_t*>(out.mutable_raw());
    const size_t run = static_cast<size_t>(T * inner) * esz;
    ctx.pool().parallel_for(outer, 1, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o)
        if (run) std::memcpy(dst + o * out.padded_extent() * inner * esz, src + o * old_stride * inner * esz, run);
    });
  }
  auto* dst = static_cast<uint8_t*>(out.mutable_raw());
  const auto* src = static_cast<const uint8_t*>(src_rows.raw());
  const size_t run = static_cast<size_t>(n * inner) * esz;
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + (o * out.padded_extent() + T) * inner * esz, src + o * run, run);
  out.mark_filled(total);
  ctx.set_output(0, out);
  return Status::ok();
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
  const bool kv = ctx.attr_int(kKvAppend, 0) != 0 && ins.size() == 2;
  // Padded inputs reach this kernel (it declares it handles them); other uses get dense copies.
  auto needs_copy = [&](const Value* v) { return !v->dense() && !(kv && v == ins[0]); };
  std::vector<Value> dense_copies;
  if (std::any_of(ins.begin(), ins.end(), needs_copy)) {
    dense_copies.reserve(ins.size());  // pointers into it must stay valid
    for (auto& v : ins)
      if (needs_copy(v)) v = &dense_copies.emplace_back(v->densified());
  }
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
  if (kv) return kv_append(ctx, *ins[0], *ins[1], axis, esz);
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
    // A step longer than the dim takes one element, as the dim's length does: clamping it keeps
    // the count and the strides below (step * stride) free of overflow for steps near 2^63.
    const int64_t stp = std::clamp<int64_t>(steps[i], -std::max<int64_t>(d, 1), std::max<int64_t>(d, 1));
    int64_t count;
    if (stp > 0) {
      s = std::clamp<int64_t>(s, 0, d);
      e = std::clamp<int64_t>(e, 0, d);
      count = e > s ? (e - s - 1) / stp + 1 : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, d - 1);
      e = std::clamp<int64_t>(e, -1, d - 1);
      count = s > e ? (s - e - 1) / -stp + 1 : 0;
    }
    st[ax] = s;
    step[ax] = stp;
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

}  // namespace

void register_data_movement_kernels(KernelRegistry& r) {
  r.add("Transpose", transpose);
  r.add("Concat", concat);
  r.add("Split", split);
  r.add("Slice", slice);
}

}  // namespace llmc::rt
