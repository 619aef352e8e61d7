// MatMul (numpy semantics: 1-D promotion, broadcast batch dims) and Gemm, on top of sgemm
// (float32) and hgemm (float16: float32 accumulation, outputs rounded once).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/packed_weights.h"
#include "runtime/kernels/register.h"
#include "runtime/kernels/sgemm.h"

namespace llmc::rt {

std::unique_ptr<SPackedB> pack_f32_weight(KernelContext& ctx, const float* B, int64_t K, int64_t N) {
  auto packed = sgemm_pack_b(B, K, N, N, &ctx.pool(), true, ctx.arena());
  ctx.add_stream(packed->data.data(), packed->data.size());
  return packed;
}

std::unique_ptr<HPackedB> pack_f16_weight(KernelContext& ctx, const uint16_t* B, int64_t K, int64_t N) {
  auto packed = hgemm_pack_b(B, K, N, N, &ctx.pool(), true, ctx.arena());
  ctx.add_stream(packed->data.data(), packed->data.size());
  return packed;
}

namespace {

// Float64 matmul for the rare double models (plain loops).
void dgemm_plain(int64_t M, int64_t N, int64_t K, const double* A, const double* B, double* C) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += A[i * K + k] * B[k * N + j];
      C[i * N + j] = s;
    }
}

// Float16 MatMul: same batching as float32; hgemm does the arithmetic in float32.
template <typename Offsets>
Status matmul_f16(KernelContext& ctx, const Value& a, const Value& b, Value& y, bool trans_b, int64_t b_block,
                  int64_t M, int64_t N, int64_t K, const std::vector<int64_t>& a_batch,
                  const std::vector<int64_t>& b_batch, int64_t nbatch, const Offsets& offsets) {
  const uint16_t* A = a.data<uint16_t>();
  const uint16_t* B = b.data<uint16_t>();
  uint16_t* Y = y.mutable_data<uint16_t>();
  if (trans_b) {
    // B bytes are [.., N, K]. Decode (M == 1): dot products against the float16 rows; else the
    // block is transposed (still float16) and goes through hgemm.
    if (M == 1 && nbatch < ctx.pool().size()) {
      // Few wide products (e.g. a tied lm_head): split each one's rows across the threads.
      std::vector<float> af(static_cast<size_t>(K)), yf(static_cast<size_t>(N));
      for (int64_t t = 0; t < nbatch; ++t) {
        int64_t ao, bo;
        offsets(t, ao, bo);
        halfs_to_floats(A + ao * K, af.data(), K);
        const uint16_t* blk = B + bo * b_block;
        ctx.pool().parallel_for(N, std::max<int64_t>(16, 65536 / std::max<int64_t>(K, 1)), [&](int64_t n0, int64_t n1) {
          hgemv_bt(n1 - n0, K, af.data(), blk + n0 * K, K, yf.data() + n0);
        });
        floats_to_halfs(yf.data(), Y + t * N, N);
      }
      return Status::ok();
    }
    auto run_t = [&](int64_t t0, int64_t t1) {
      thread_local std::vector<uint16_t> bt;
      thread_local std::vector<float> af, yf;
      for (int64_t t = t0; t < t1; ++t) {
        int64_t ao, bo;
        offsets(t, ao, bo);
        const uint16_t* blk = B + bo * b_block;
        if (M == 1) {
          af.resize(static_cast<size_t>(K));
          yf.resize(static_cast<size_t>(N));
          halfs_to_floats(A + ao * K, af.data(), K);
          hgemv_bt(N, K, af.data(), blk, K, yf.data());
          floats_to_halfs(yf.data(), Y + t * N, N);
          continue;
        }
        bt.resize(static_cast<size_t>(K * N));
        for (int64_t n = 0; n < N; ++n)
          for (int64_t k = 0; k < K; ++k) bt[k * N + n] = blk[n * K + k];
        hgemm(M, N, K, A + ao * M * K, K, bt.data(), N, Y + t * M * N, N, nullptr);
      }
    };
    ctx.pool().parallel_for(nbatch, 1, run_t);
    return Status::ok();
  }
  if ((b_batch.empty() || shape_numel(b_batch) == 1) && shape_numel(a_batch) == nbatch) {
    // A constant weight is packed once for decode (the session keeps it).
    const HPackedB* packed = nullptr;
    if (b_batch.empty() && ctx.input_is_constant(1) && N >= kMinPackedColumns)
      packed = ctx.cached<HPackedB>([&] { return std::shared_ptr<HPackedB>(pack_f16_weight(ctx, B, K, N)); });
    hgemm(nbatch * M, N, K, A, K, B, N, Y, N, &ctx.pool(), packed);
    return Status::ok();
  }
  const bool per_thread = nbatch >= ctx.pool().size();
  auto run = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t ao, bo;
      offsets(t, ao, bo);
      hgemm(M, N, K, A + ao * M * K, K, B + bo * b_block, N, Y + t * M * N, N,
            per_thread ? nullptr : &ctx.pool());
    }
  };
  if (per_thread) ctx.pool().parallel_for(nbatch, 1, run);
  else run(0, nbatch);
  return Status::ok();
}

}  // namespace

// MatMul of a_in and b_given (the node's inputs, or the grouped-query view of them).
Status matmul_of(KernelContext& ctx, const Value& a_in, const Value& b_given) {
  // Padded inputs (a KV cache grown in place, see Value::dense) reach this kernel: B padded
  // along its second-to-last axis is read with a larger batch stride; anything else is copied
  // dense first.
  Value a_dense, b_dense;
  const Value& a = a_in.dense() ? a_in : (a_dense = a_in.densified());
  const bool b_strided = !b_given.dense() && b_given.padded_axis() == b_given.rank() - 2;
  const Value& b_in = b_given.dense() || b_strided ? b_given : (b_dense = b_given.densified());
  // The Session folds a Transpose of B's last two axes into this flag (see session.cpp).
  const bool trans_b = ctx.attr_int(kMatMulTransB, 0) != 0;
  Value b = b_in;
  if (trans_b) {
    if (b_in.rank() < 2) return internal_error("transposed B must have rank >= 2");
    auto shape = b_in.shape();
    std::swap(shape[shape.size() - 1], shape[shape.size() - 2]);
    b = b_in.reshaped(shape);  // logical shape only; bytes stay [.., N, K]
  }
  if (a.dtype() != b.dtype())
    return invalid_input("input dtypes differ: ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  if (a.dtype() != DType::kF32 && a.dtype() != DType::kF64 && a.dtype() != DType::kF16)
    return unsupported("MatMul on ", dtype_name(a.dtype()), " (float32/float64/float16 only)");
  if (a.rank() == 0 || b.rank() == 0) return invalid_input("MatMul inputs must have rank >= 1");
  // Promote 1-D operands, remembering which dims to drop from the result.
  std::vector<int64_t> as = a.shape(), bs = b.shape();
  const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  if (a_vec) as.insert(as.begin(), 1);
  if (b_vec) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  if (bs[bs.size() - 2] != K)
    return invalid_input("inner dimensions differ: ", shape_str(a.shape()), " x ", shape_str(b.shape()));
  const std::vector<int64_t> a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  LLMC_ASSIGN_OR_RETURN(auto batch, broadcast_shapes(a_batch, b_batch));
  std::vector<int64_t> out_shape = batch;
  if (!a_vec) out_shape.push_back(M);
  if (!b_vec) out_shape.push_back(N);
  Value& y = ctx.output(0, a.dtype(), out_shape);
  const int64_t nbatch = shape_numel(batch);
  if (y.numel() == 0) return Status::ok();
  const auto a_str = broadcast_strides(a_batch, batch), b_str = broadcast_strides(b_batch, batch);
  const auto out_str = contiguous_strides(batch);
  auto offsets = [&](int64_t idx, int64_t& ao, int64_t& bo) {
    ao = bo = 0;
    for (size_t d = 0; d < batch.size(); ++d) {
      const int64_t i = (idx / out_str[d]) % batch[d];
      ao += i * a_str[d];
      bo += i * b_str[d];
    }
  };
  // Elements between consecutive matrices of B: K * N, or more when B is padded.
  const int64_t b_block = b_strided ? b_in.padded_extent() * b_in.dim(-1) : K * N;
  if (a.dtype() == DType::kF64) {
    if (trans_b) return unsupported("transposed-B MatMul on float64");
    for (int64_t t = 0; t < nbatch; ++t) {
      int64_t ao, bo;
      offsets(t, ao, bo);
      dgemm_plain(M, N, K, a.data<double>() + ao * M * K, b.data<double>() + bo * b_block,
                  y.mutable_data<double>() + t * M * N);
    }
    return Status::ok();
  }
  if (a.dtype() == DType::kF16)
    return matmul_f16(ctx, a, b, y, trans_b, b_block, M, N, K, a_batch, b_batch, nbatch, offsets);
  const float* A = a.data<float>();
  const float* B = b.data<float>();
  float* Y = y.mutable_data<float>();
  if (trans_b) {
    auto run_t = [&](int64_t t0, int64_t t1) {
      thread_local std::vector<float> bt;
      for (int64_t t = t0; t < t1; ++t) {
        int64_t ao, bo;
        offsets(t, ao, bo);
        const float* blk = B + bo * b_block;  // [N, K]
        if (M <= 8) {  // decode, or the heads of one grouped-query group: rows against B's rows
          for (int64_t i = 0; i < M; ++i) sgemv_bt(N, K, A + (ao * M + i) * K, blk, K, Y + (t * M + i) * N);
          continue;
        }
        bt.resize(static_cast<size_t>(K * N));
        for (int64_t n = 0; n < N; ++n)
          for (int64_t k = 0; k < K; ++k) bt[k * N + n] = blk[n * K + k];
        sgemm(M, N, K, A + ao * M * K, K, bt.data(), N, Y + t * M * N, N, false, nullptr);
      }
    };
    ctx.pool().parallel_for(nbatch, 1, run_t);
    return Status::ok();
  }
  // A weight shared by the whole batch (the projection case): one big GEMM over all rows.
  if (b_batch.empty() || shape_numel(b_batch) == 1) {
    if (shape_numel(a_batch) == nbatch) {
      // A constant weight is packed once (the session keeps it); when it lies in a mapped
      // file, its pages are given back (packed_weights.h).
      const SPackedB* packed = nullptr;
      if (b_batch.empty() && ctx.input_is_constant(1) && N >= kMinPackedColumns) {
        struct Cache {
          std::unique_ptr<SPackedB> packed;
        };
        const Cache* c = ctx.cached<Cache>([&] {
          auto cache = std::make_shared<Cache>();
          cache->packed = pack_f32_weight(ctx, B, K, N);
          return cache;
        });
        if (c) packed = c->packed.get();
      }
      sgemm(nbatch * M, N, K, A, K, B, N, Y, N, false, &ctx.pool(), packed);
      return Status::ok();
    }
  }
  // Many small products (attention heads): one per thread when there are enough of them.
  const bool per_thread = nbatch >= ctx.pool().size();
  auto run = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t ao, bo;
      offsets(t, ao, bo);
      sgemm(M, N, K, A + ao * M * K, K, B + bo * b_block, N, Y + t * M * N, N, false,
            per_thread ? nullptr : &ctx.pool());
    }
  };
  if (per_thread) ctx.pool().parallel_for(nbatch, 1, run);
  else run(0, nbatch);
  return Status::ok();
}

namespace {

Status matmul(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  if (ctx.attr_int(kMatMulKvGroups, 0) != 0) return grouped_kv_matmul(ctx);
  return matmul_of(ctx, ctx.in(0), ctx.in(1));
}

// Row-major transpose of a [r, c] matrix.
template <typename T>
std::vector<T> transposed(const T* p, int64_t r, int64_t c) {
  std::vector<T> t(static_cast<size_t>(r * c));
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) t[j * r + i] = p[i * c + j];
  return t;
}

// Gemm with a constant float32 B (Hugging Face GPT-2's Conv1D projections export as Gemm with
// a bias): B packed once as MatMul packs its weights (transposed first when transB), the bias
// broadcast into Y and the product accumulated onto it, as ONNX Runtime orders it.
Status gemm_constant_b(KernelContext& ctx, const float* A, const float* B, const Value* c, float beta,
                       const std::vector<int64_t>& cstride, int64_t M, int64_t N, int64_t K, bool tb, float* Y) {
  struct Cache {
    std::unique_ptr<SPackedB> packed;
  };
  const Cache* cache = ctx.cached<Cache>([&] {
    auto fresh = std::make_shared<Cache>();
    fresh->packed = tb ? pack_f32_weight(ctx, transposed(B, N, K).data(), K, N) : pack_f32_weight(ctx, B, K, N);
    return fresh;
  });
  const SPackedB* packed = cache ? cache->packed.get() : nullptr;
  std::vector<float> bt;
  if (!packed && tb) B = (bt = transposed(B, N, K)).data();
  const bool with_c = c && beta != 0.0f;
  if (with_c) {
    const float* C = c->data<float>();
    ctx.pool().parallel_for(M, std::max<int64_t>(1, 16384 / std::max<int64_t>(N, 1)), [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i)
        for (int64_t j = 0; j < N; ++j) Y[i * N + j] = beta * C[i * cstride[0] + j * cstride[1]];
    });
  }
  sgemm(M, N, K, A, K, B, N, Y, N, with_c, &ctx.pool(), packed);
  return Status::ok();
}

Status gemm(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& a = ctx.in(0);
  const Value& b = ctx.in(1);
  const Value* c = ctx.input(2);
  const DType dt = a.dtype();
  if (b.dtype() != dt || (c && c->dtype() != dt))
    return invalid_input("Gemm input dtypes differ: ", dtype_name(dt), ", ", dtype_name(b.dtype()),
                         c ? ", " + dtype_name(c->dtype()) : std::string());
  if (dt != DType::kF32 && dt != DType::kF16)
    return unsupported("Gemm on ", dtype_name(dt), " (float32/float16 only)");
  if (a.rank() != 2 || b.rank() != 2)
    return invalid_input("Gemm needs 2-D inputs, got ", shape_str(a.shape()), " and ", shape_str(b.shape()));
  const bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  const float alpha = ctx.attr_float("alpha", 1.0f), beta = ctx.attr_float("beta", 1.0f);
  const int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1);
  const int64_t KB = tb ? b.dim(1) : b.dim(0), N = tb ? b.dim(0) : b.dim(1);
  if (K != KB) return invalid_input("Gemm inner dimensions differ: ", shape_str(a.shape()), " x ", shape_str(b.shape()));
  std::vector<int64_t> cstride{0, 0};
  if (c && beta != 0.0f) {
    LLMC_ASSIGN_OR_RETURN(auto cs, broadcast_shapes(c->shape(), {M, N}));
    if (cs != std::vector<int64_t>{M, N})
      return invalid_input("Gemm C shape ", shape_str(c->shape()), " does not broadcast to ", shape_str({M, N}));
    cstride = broadcast_strides(c->shape(), {M, N});
  }
  Value& y = ctx.output(0, dt, {M, N});
  // Float32 result (float16: computed in float32, rounded once at the end).
  std::vector<float> yf(dt == DType::kF32 ? 0 : static_cast<size_t>(M * N));
  float* Y = dt == DType::kF32 ? y.mutable_data<float>() : yf.data();
  if (dt == DType::kF32 && !ta && alpha == 1.0f && ctx.input_is_constant(1) && N >= kMinPackedColumns)
    return gemm_constant_b(ctx, a.data<float>(), b.data<float>(), c, beta, cstride, M, N, K, tb, Y);
  if (dt == DType::kF32) {
    std::vector<float> at, bt;
    const float* A = a.data<float>();
    const float* B = b.data<float>();
    if (ta) A = (at = transposed(A, K, M)).data();
    if (tb) B = (bt = transposed(B, N, K)).data();
    sgemm(M, N, K, A, K, B, N, Y, N, false, &ctx.pool());
  } else {
    std::vector<float> af(static_cast<size_t>(M * K));
    std::vector<uint16_t> bt;
    halfs_to_floats(a.data<uint16_t>(), af.data(), M * K);
    if (ta) af = transposed(af.data(), K, M);
    const uint16_t* B = b.data<uint16_t>();
    if (tb) B = (bt = transposed(B, N, K)).data();
    // A constant B (a float16 artifact's Gemm weights) is packed once: prefill multiplies the
    // panels instead of widening B again every call. Decode rows still stream B itself, so its
    // pages are kept (not handed back as MatMul's are).
    const HPackedB* packed = nullptr;
    if (ctx.input_is_constant(1) && N >= kMinPackedColumns) {
      struct HalfCache {
        std::unique_ptr<HPackedB> packed;
      };
      const HalfCache* hc = ctx.cached<HalfCache>([&] {
        auto fresh = std::make_shared<HalfCache>();
        fresh->packed = hgemm_pack_b(B, K, N, N, &ctx.pool(), false, ctx.arena());
        return fresh;
      });
      if (hc) packed = hc->packed.get();
    }
    hgemm_f32(M, N, K, af.data(), K, B, N, Y, N, &ctx.pool(), packed);
  }
  if (alpha != 1.0f)
    for (int64_t i = 0; i < M * N; ++i) Y[i] *= alpha;
  if (c && beta != 0.0f) {
    std::vector<float> cf;
    const float* C = c->data<float>();
    if (dt == DType::kF16) {
      cf.resize(static_cast<size_t>(c->numel()));
      halfs_to_floats(c->data<uint16_t>(), cf.data(), c->numel());
      C = cf.data();
    }
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) Y[i * N + j] += beta * C[i * cstride[0] + j * cstride[1]];
  }
  if (dt == DType::kF16) floats_to_halfs(Y, y.mutable_data<uint16_t>(), M * N);
  return Status::ok();
}

}  // namespace

void register_matmul_kernels(KernelRegistry& r) {
  r.add("MatMul", matmul);
  r.add("Gemm", gemm);
}

}  // namespace llmc::rt
