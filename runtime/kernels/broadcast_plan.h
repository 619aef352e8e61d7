// The broadcast plan shared by the elementwise kernels (elementwise_binary.cpp,
// elementwise_nary.cpp): the output shape is collapsed (size-1 dims dropped, neighbouring dims
// merged when every input is contiguous or broadcast across both), so equal shapes become one
// flat row, "tensor op scalar" one row with a fixed operand and "[M,N] op [N]" M rows; rows
// are processed by tight loops the compiler vectorises.
#pragma once
#include <algorithm>
#include <array>
#include <vector>

#include "runtime/kernel.h"
#include "runtime/kernels/elementwise_types.h"
#include "runtime/kernels/kernel_util.h"

namespace llmc::rt::elementwise {

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

inline Status same_dtype(const Value& a, const Value& b) {
  if (a.dtype() != b.dtype())
    return invalid_input("inputs have different dtypes: ", dtype_name(a.dtype()), " and ",
                         dtype_name(b.dtype()));
  return Status::ok();
}

}  // namespace llmc::rt::elementwise
