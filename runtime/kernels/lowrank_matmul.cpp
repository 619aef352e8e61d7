// Low-rank pairs y_i = (x · A_i) · B_i of one activation x, run as one step (the session's
// plan-time fold, session_fold_lowrank.cpp: a factorised layer's two products, and the Q, K, V
// or gate/up pairs of one input together). Inputs x, A_1, B_1, .., A_n, B_n (constant 2-D
// float32); output i is y_i, exactly what the two MatMul kernels give one after the other: the
// same packed panels (packed on the same conditions) and the same per-panel arithmetic. Decode
// rows run every A's panels in one parallel loop, then every B's, the r-wide intermediates
// staying in a thread-local buffer in cache; anything else runs sgemm twice per pair.
#include <cstring>
#include <memory>
#include <vector>

#include "runtime/kernels/packed_weights.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {

Status lowrank_matmul_group(KernelContext& ctx) {
  const size_t n = ctx.num_inputs() > 1 ? (ctx.num_inputs() - 1) / 2 : 0;
  if (n == 0 || ctx.num_inputs() != 1 + 2 * n || ctx.num_outputs() != n)
    return invalid_input("a low-rank group takes x, then A and B per output");
  const Value& x = ctx.in(0);
  if (x.dtype() != DType::kF32 || x.rank() == 0)
    return unsupported("low-rank group on ", dtype_name(x.dtype()), " ", shape_str(x.shape()));
  const int64_t K = x.dim(-1), rows = K > 0 ? x.numel() / K : 0;
  for (size_t i = 0; i < n; ++i) {
    const Value &a = ctx.in(1 + 2 * i), &b = ctx.in(2 + 2 * i);
    if (a.dtype() != DType::kF32 || b.dtype() != DType::kF32 || a.rank() != 2 || b.rank() != 2 || a.dim(0) != K ||
        b.dim(0) != a.dim(1))
      return invalid_input("low-rank group: x ", shape_str(x.shape()), ", A ", shape_str(a.shape()), " and B ",
                           shape_str(b.shape()), " do not multiply");
  }
  // Packed weights, as the MatMul kernel packs them (packed_weights.h): 2n, narrow ones never.
  struct Packs {
    std::vector<std::unique_ptr<SPackedB>> w;
  };
  const Packs* packs = ctx.cached<Packs>([&] {
    auto p = std::make_shared<Packs>();
    p->w.resize(2 * n);
    for (size_t j = 0; j < 2 * n; ++j) {
      const Value& w = ctx.in(1 + j);
      if (ctx.input_is_constant(1 + j) && w.dim(1) >= kMinPackedColumns)
        p->w[j] = pack_f32_weight(ctx, w.data<float>(), w.dim(0), w.dim(1));
    }
    return p;
  });
  thread_local std::vector<const SPackedB*> apk, bpk;
  thread_local std::vector<float*> ts, ys;
  thread_local std::vector<const float*> tin;
  thread_local std::vector<float> mid;
  apk.assign(n, nullptr);
  bpk.assign(n, nullptr);
  ys.assign(n, nullptr);
  // The intermediates and outputs are sized from the data (rows of x times a factor's width):
  // within the session's limits, or an error, as the two MatMul steps would allocate them.
  int64_t mid_size = 0;
  for (size_t i = 0; i < n; ++i) {
    const int64_t r = ctx.in(1 + 2 * i).dim(1), N = ctx.in(2 + 2 * i).dim(1);
    LLMC_RETURN_IF_ERROR(ctx.check_output(DType::kF32, {rows, r}));
    LLMC_RETURN_IF_ERROR(ctx.check_output(DType::kF32, {rows, N}));
    mid_size += rows * r;
  }
  LLMC_RETURN_IF_ERROR(ctx.check_output(DType::kF32, {mid_size}));
  mid.resize(static_cast<size_t>(mid_size));
  ts.assign(n, nullptr);
  tin.assign(n, nullptr);
  bool all_packed = packs != nullptr;
  for (size_t i = 0, at = 0; i < n; ++i) {
    std::vector<int64_t> shape = x.shape();
    shape.back() = ctx.in(2 + 2 * i).dim(1);
    Value& y = ctx.output(i, DType::kF32, std::move(shape));
    ys[i] = y.mutable_data<float>();
    if (K == 0) std::memset(ys[i], 0, y.nbytes());  // an empty sum: zeros, as MatMul gives
    ts[i] = mid.data() + at;
    tin[i] = ts[i];
    at += static_cast<size_t>(rows * ctx.in(1 + 2 * i).dim(1));
    auto usable = [&](size_t j) {
      const SPackedB* pk = packs ? packs->w[j].get() : nullptr;
      return pk && pk->isa == active_isa() ? pk : nullptr;
    };
    apk[i] = usable(2 * i);
    bpk[i] = usable(2 * i + 1);
    all_packed = all_packed && apk[i] && bpk[i];
  }
  if (K == 0) return Status::ok();
  if (rows == 1 && all_packed) {  // decode: the A panels in one loop, then the B panels
    sgemv_packed_batch(x.data<float>(), apk.data(), ts.data(), n, &ctx.pool());
    sgemv_packed_each(tin.data(), bpk.data(), ys.data(), n, &ctx.pool());
    return Status::ok();
  }
  for (size_t i = 0; i < n; ++i) {
    const Value &a = ctx.in(1 + 2 * i), &b = ctx.in(2 + 2 * i);
    const int64_t r = a.dim(1), N = b.dim(1);
    sgemm(rows, r, K, x.data<float>(), K, a.data<float>(), r, ts[i], r, false, &ctx.pool(), apk[i]);
    sgemm(rows, N, r, ts[i], r, b.data<float>(), N, ys[i], N, false, &ctx.pool(), bpk[i]);
  }
  return Status::ok();
}

}  // namespace llmc::rt
