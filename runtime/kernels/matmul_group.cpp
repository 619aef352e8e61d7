// Float MatMuls of one activation with constant 2-D weights, run as one step (the session's
// plan-time group fold, session_fold_matmul_group.cpp: a Llama layer's Q, K and V projections,
// and the MLP's gate and up). Inputs A, B_1 .. B_n; output i is A · B_i, exactly what the MatMul
// kernel gives: the same packed panels (packed on the same conditions) and the same per-panel
// arithmetic. Decode rows (A one row) over packed weights run every product's panels in one
// parallel loop, so the threads meet once per group instead of once per product; anything else
// runs the products one after another as MatMul does.
#include <memory>
#include <vector>

#include "runtime/kernels/packed_weights.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {

Status matmul_group(KernelContext& ctx) {
  const size_t n = ctx.num_inputs() > 1 ? ctx.num_inputs() - 1 : 0;
  if (n == 0 || ctx.num_outputs() != n) return invalid_input("a MatMul group takes A, then one weight per output");
  const Value& a = ctx.in(0);
  const DType dt = a.dtype();
  if ((dt != DType::kF32 && dt != DType::kF16) || a.rank() == 0)
    return unsupported("MatMul group on ", dtype_name(dt), " ", shape_str(a.shape()));
  const int64_t K = a.dim(-1), rows = K > 0 ? a.numel() / K : 0;
  for (size_t i = 0; i < n; ++i) {
    const Value& b = ctx.in(1 + i);
    if (b.dtype() != dt || b.rank() != 2 || b.dim(0) != K)
      return invalid_input("MatMul group: A ", shape_str(a.shape()), " and weight ", i, " ", dtype_name(b.dtype()), " ",
                           shape_str(b.shape()), " do not multiply");
  }
  // Packed weights, as the MatMul kernel packs them (packed_weights.h); narrow ones never.
  struct Packs {
    std::vector<std::unique_ptr<SPackedB>> f32;
    std::vector<std::unique_ptr<HPackedB>> f16;
  };
  const Packs* packs = ctx.cached<Packs>([&] {
    auto p = std::make_shared<Packs>();
    p->f32.resize(n);
    p->f16.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const Value& b = ctx.in(1 + i);
      const int64_t N = b.dim(1);
      if (!ctx.input_is_constant(1 + i) || N < kMinPackedColumns) continue;
      if (dt == DType::kF32) p->f32[i] = pack_f32_weight(ctx, b.data<float>(), K, N);
      else p->f16[i] = pack_f16_weight(ctx, b.data<uint16_t>(), K, N);
    }
    return p;
  });
  thread_local std::vector<const SPackedB*> spk;
  thread_local std::vector<const HPackedB*> hpk;
  thread_local std::vector<float*> yf;
  thread_local std::vector<uint16_t*> yh;
  spk.assign(n, nullptr);
  hpk.assign(n, nullptr);
  yf.assign(n, nullptr);
  yh.assign(n, nullptr);
  bool all_packed = packs != nullptr;
  for (size_t i = 0; i < n; ++i) {
    std::vector<int64_t> shape = a.shape();
    shape.back() = ctx.in(1 + i).dim(1);
    Value& y = ctx.output(i, dt, std::move(shape));
    if (dt == DType::kF32) {
      yf[i] = y.mutable_data<float>();
      const SPackedB* pk = packs ? packs->f32[i].get() : nullptr;
      spk[i] = pk && pk->isa == active_isa() ? pk : nullptr;
      all_packed = all_packed && spk[i];
    } else {
      yh[i] = y.mutable_data<uint16_t>();
      hpk[i] = packs ? packs->f16[i].get() : nullptr;
      all_packed = all_packed && hpk[i];
    }
  }
  if (rows == 1 && K > 0 && all_packed) {  // decode: one parallel loop over every product's panels
    if (dt == DType::kF32) {
      sgemv_packed_batch(a.data<float>(), spk.data(), yf.data(), n, &ctx.pool());
    } else {
      thread_local std::vector<float> af;
      af.resize(static_cast<size_t>(K));
      halfs_to_floats(a.data<uint16_t>(), af.data(), K);
      hgemv_packed_batch(af.data(), hpk.data(), yh.data(), n, &ctx.pool());
    }
    return Status::ok();
  }
  for (size_t i = 0; i < n; ++i) {
    const Value& b = ctx.in(1 + i);
    const int64_t N = b.dim(1);
    if (dt == DType::kF32)
      sgemm(rows, N, K, a.data<float>(), K, b.data<float>(), N, yf[i], N, false, &ctx.pool(), spk[i]);
    else
      hgemm(rows, N, K, a.data<uint16_t>(), K, b.data<uint16_t>(), N, yh[i], N, &ctx.pool(), hpk[i]);
  }
  return Status::ok();
}

}  // namespace llmc::rt
