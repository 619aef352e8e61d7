// The step the Session folds a rotary-embedding op chain into (session_fold_rotary.cpp):
//
//   e, o = Split(x, [k, k], axis=-1)
//   y = Concat(e * c - o * s, e * s + o * c, axis=-1)
//
// (the llama2c import's interleaved-pair rotation, x [B, S, H, D/2, 2] with k = 1). The result
// is what the six elementwise ops and the Concat give, broadcasting included: each product and
// each sum rounded to float32 in the same order (this file is built with -ffp-contract=off, so
// no product is fused into the subtraction). Float16 inputs round every intermediate to float16
// as the float16 Mul/Sub/Add kernels do (float32 arithmetic, one rounding per op).
#include <algorithm>
#include <vector>

#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {

Status rotary_pairs_chain(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(3));
  const Value& x = ctx.in(0);
  const Value& c = ctx.in(1);
  const Value& s = ctx.in(2);
  const DType dt = x.dtype();
  if ((dt != DType::kF32 && dt != DType::kF16) || c.dtype() != dt || s.dtype() != dt)
    return unsupported("rotary chain on ", dtype_name(x.dtype()), ", ", dtype_name(c.dtype()), " and ",
                       dtype_name(s.dtype()), " (float32 or float16, all alike)");
  const int64_t k = ctx.attr_int("half", 0);
  if (x.rank() == 0 || k <= 0 || x.dim(-1) != 2 * k)
    return ctx.fail("split [", k, ", ", k, "] does not match the last axis of ", shape_str(x.shape()));
  // The halves' shape, then what the products broadcast to (every op of the chain agrees).
  std::vector<int64_t> half_shape = x.shape();
  half_shape.back() = k;
  LLMC_ASSIGN_OR_RETURN(auto hc, broadcast_shapes(half_shape, c.shape()));
  LLMC_ASSIGN_OR_RETURN(auto h, broadcast_shapes(hc, s.shape()));
  std::vector<int64_t> out_shape = h;
  if (out_shape.empty()) out_shape.push_back(1);
  const int64_t L = h.empty() ? 1 : h.back();
  out_shape.back() = 2 * L;
  Value& y = ctx.output(0, dt, out_shape);
  if (y.numel() == 0) return Status::ok();

  // Strides over h (rank R >= 1) for the halves (x's layout), c and s; broadcast dims get 0.
  if (h.empty()) h.push_back(1);
  const size_t R = h.size();
  auto x_str = contiguous_strides(x.shape());
  std::vector<int64_t> xs(R, 0);
  for (size_t d = 0; d < x.shape().size(); ++d) {
    const size_t hd = R - x.shape().size() + d;
    xs[hd] = half_shape[d] == 1 && h[hd] != 1 ? 0 : x_str[d];
  }
  const auto cs = broadcast_strides(c.shape(), h), ss = broadcast_strides(s.shape(), h);
  const bool half = dt == DType::kF16;
  // Float16 operands widened once into per-thread buffers (decode runs this 24 times a token:
  // no allocation per call once they have grown).
  thread_local std::vector<float> xw, cw, sw;
  auto widen = [&](const Value& v, std::vector<float>& w) {
    if (!half) return v.data<float>();
    w.resize(static_cast<size_t>(v.numel()));
    halfs_to_floats(v.data<uint16_t>(), w.data(), v.numel());
    return static_cast<const float*>(w.data());
  };
  const float* xp = widen(x, xw);
  const float* cp = widen(c, cw);
  const float* sp = widen(s, sw);
  float* yp = half ? nullptr : y.mutable_data<float>();
  uint16_t* yh = half ? y.mutable_data<uint16_t>() : nullptr;
  // Outer rows: every index but the last two axes; the inner two are plain loops.
  const int64_t inner1 = h[R - 1], inner2 = R >= 2 ? h[R - 2] : 1;
  const int64_t rows = shape_numel(h) / (inner1 * inner2);
  const int64_t x2 = R >= 2 ? xs[R - 2] : 0, c2 = R >= 2 ? cs[R - 2] : 0, s2 = R >= 2 ? ss[R - 2] : 0;
  const int64_t x1 = xs[R - 1], c1 = cs[R - 1], s1 = ss[R - 1];
  // One row of float16 intermediates rounded in bulk: float16 -> float32 is exact, so a round
  // trip gives each op's float16 result as a float32 operand for the next op.
  auto round_half = [](float* v, int64_t n, std::vector<uint16_t>& tmp) {
    tmp.resize(static_cast<size_t>(n));
    floats_to_halfs(v, tmp.data(), n);
    halfs_to_floats(tmp.data(), v, n);
  };
  const int64_t row_len = inner2 * inner1;
  auto run = [&](int64_t r0, int64_t r1) {
    // Float16: the chunk's four products, each rounded in one call, then the sums.
    thread_local std::vector<float> ec, os, es, oc, row;
    thread_local std::vector<uint16_t> tmp;
    const int64_t n = (r1 - r0) * row_len;
    if (half) {
      for (auto* v : {&ec, &os, &es, &oc}) v->resize(static_cast<size_t>(n));
      row.resize(static_cast<size_t>(2 * n));
    }
    for (int64_t r = r0; r < r1; ++r) {
      int64_t xo = 0, co = 0, so = 0, rem = r;
      for (size_t d = R >= 2 ? R - 2 : 0; d-- > 0;) {
        const int64_t i = rem % h[d];
        rem /= h[d];
        xo += i * xs[d];
        co += i * cs[d];
        so += i * ss[d];
      }
      if (!half) {
        float* out = yp + r * 2 * row_len;
        for (int64_t i2 = 0; i2 < inner2; ++i2, out += 2 * L) {
          const float* e = xp + xo + i2 * x2;
          const float* cv = cp + co + i2 * c2;
          const float* sv = sp + so + i2 * s2;
          for (int64_t j = 0; j < inner1; ++j) {
            const float ev = e[j * x1], ov = e[j * x1 + k], cj = cv[j * c1], sj = sv[j * s1];
            const float p_ec = ev * cj, p_os = ov * sj, p_es = ev * sj, p_oc = ov * cj;
            out[j] = p_ec - p_os;
            out[L + j] = p_es + p_oc;
          }
        }
        continue;
      }
      for (int64_t i2 = 0, t = (r - r0) * row_len; i2 < inner2; ++i2)
        for (int64_t j = 0; j < inner1; ++j, ++t) {
          const float ev = xp[xo + i2 * x2 + j * x1], ov = xp[xo + i2 * x2 + j * x1 + k];
          const float cj = cp[co + i2 * c2 + j * c1], sj = sp[so + i2 * s2 + j * s1];
          ec[t] = ev * cj;
          os[t] = ov * sj;
          es[t] = ev * sj;
          oc[t] = ov * cj;
        }
    }
    if (!half) return;
    for (auto* v : {&ec, &os, &es, &oc}) round_half(v->data(), n, tmp);
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t i2 = 0, t = (r - r0) * row_len; i2 < inner2; ++i2)
        for (int64_t j = 0; j < inner1; ++j, ++t) {
          float* out = row.data() + (r - r0) * 2 * row_len + i2 * 2 * L;
          out[j] = ec[t] - os[t];
          out[L + j] = es[t] + oc[t];
        }
    floats_to_halfs(row.data(), yh + r0 * 2 * row_len, 2 * n);
  };
  ctx.pool().parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, inner1 * inner2)), run);
  return Status::ok();
}

}  // namespace llmc::rt
