// com.llmcompress NMSparseMatMul(A, values, indices, scales?) -> Y, attribute n (1 or 2):
// Y = A · B where B [K, N] is the n:4-sparse weight in the packed form of ir/nm_sparse.h
// (docs/nm_sparse_format.md).
//  - float32 or float16 values: A has B's dtype and so has Y; products accumulate in float32
//    (float16 Y rounded once).
//  - int8 values (symmetric, zeros exact): A float32 is quantised to uint8 per tensor as ONNX's
//    DynamicQuantizeLinear does, products are exact in int32, and Y = float(acc) ·
//    (a_scale · scales[n]) with scales float32 per column or one: the dense int8 graph's
//    result (DynamicQuantizeLinear → MatMulInteger → Cast → Mul), bit for bit.
// Decode rows stream the session's packed panels (nm_sparse.h); prefill widens a band of rows of
// B at a time back to dense and runs the dense GEMM on it.
#include <algorithm>
#include <cstring>

#include "runtime/file_pages.h"
#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/nm_sparse.h"
#include "runtime/kernels/qgemm.h"
#include "runtime/kernels/quantize_util.h"
#include "runtime/kernels/register.h"
#include "runtime/kernels/sgemm.h"

namespace llmc::rt {

namespace {

// Rows of A up to this many run as matrix-vector products over the panels.
constexpr int64_t kMaxGemvRows = 4;
// Prefill widens B in bands of about this many elements.
constexpr int64_t kBandElements = int64_t{1} << 21;

struct Packed {
  std::unique_ptr<NMPacked> b;
};

int64_t band_groups(const NMSparseShape& s) { return std::clamp<int64_t>(kBandElements / (4 * s.N), 1, s.K / 4); }

// Float values: A and Y of the values' dtype.
Status run_float(KernelContext& ctx, const NMPacked& b, int64_t M, Value& y) {
  const Value& a = ctx.in(0);
  const NMSparseShape& s = b.shape;
  const bool half = b.dtype == DType::kF16;
  thread_local std::vector<float> af, yf, band;
  const float* A = a.data<float>();
  if (half) {
    af.resize(static_cast<size_t>(M * s.K));
    halfs_to_floats(a.data<uint16_t>(), af.data(), M * s.K);
    A = af.data();
  }
  float* Y = half ? (yf.resize(static_cast<size_t>(M * s.N)), yf.data()) : y.mutable_data<float>();
  if (M <= kMaxGemvRows) {
    for (int64_t m = 0; m < M; ++m) nm_gemv_float(b, A + m * s.K, Y + m * s.N, &ctx.pool());
  } else {
    const int64_t gb = band_groups(s);
    band.resize(static_cast<size_t>(4 * gb * s.N));
    for (int64_t g0 = 0; g0 < s.K / 4; g0 += gb) {
      const int64_t g1 = std::min(s.K / 4, g0 + gb);
      nm_unpack_float(b, g0, g1, band.data(), s.N);
      sgemm(M, s.N, 4 * (g1 - g0), A + 4 * g0, s.K, band.data(), s.N, Y, s.N, g0 > 0, &ctx.pool());
    }
  }
  if (half) floats_to_halfs(Y, y.mutable_data<uint16_t>(), M * s.N);
  return Status::ok();
}

Status run_int8(KernelContext& ctx, const NMPacked& b, int64_t M, Value& y) {
  const Value& a = ctx.in(0);
  const NMSparseShape& s = b.shape;
  const Value* scales = ctx.input(3);
  if (!scales) return ctx.fail("int8 values need input 3, the weight scales");
  if (scales->numel() != 1 && scales->numel() != s.N)
    return ctx.fail("scales has ", scales->numel(), " values; expected 1 or N = ", s.N);
  thread_local std::vector<float> scale_tmp;
  const float* ws = quant::as_floats(*scales, scale_tmp);
  const bool per_col = scales->numel() > 1;
  // Activations quantised once; 16 spare zero bytes after each row for the last block's window.
  thread_local std::vector<uint8_t> aq, rowq;
  thread_local std::vector<int32_t> acc, band_acc;
  thread_local std::vector<int8_t> band;
  aq.resize(static_cast<size_t>(M * s.K));
  float a_scale;
  uint8_t a_zp;
  quant::dynamic_quantize(ctx.pool(), a.data<float>(), M * s.K, aq.data(), a_scale, a_zp);
  acc.resize(static_cast<size_t>(M * s.N));
  if (M <= kMaxGemvRows) {
    rowq.assign(static_cast<size_t>(s.K + 16), 0);
    for (int64_t m = 0; m < M; ++m) {
      std::memcpy(rowq.data(), aq.data() + m * s.K, static_cast<size_t>(s.K));
      nm_gemv_int8(b, rowq.data(), a_zp, acc.data() + m * s.N, &ctx.pool());
    }
  } else {
    const int64_t gb = band_groups(s);
    band.resize(static_cast<size_t>(4 * gb * s.N));
    band_acc.resize(acc.size());
    std::fill(acc.begin(), acc.end(), 0);
    const int32_t az = a_zp;
    for (int64_t g0 = 0; g0 < s.K / 4; g0 += gb) {
      const int64_t g1 = std::min(s.K / 4, g0 + gb);
      nm_unpack_int8(b, g0, g1, band.data(), s.N);
      QGemmArgs q;
      q.M = M;
      q.N = s.N;
      q.K = 4 * (g1 - g0);
      q.A = aq.data() + 4 * g0;
      q.lda = s.K;
      q.a_signed = false;
      q.a_zp = &az;
      q.B = band.data();
      q.ldb = s.N;
      q.b_signed = true;
      q.C = band_acc.data();
      q.ldc = s.N;
      qgemm(q, &ctx.pool());
      // Band sums add up to the whole product exactly (wrapping like the dense kernel).
      for (size_t i = 0; i < acc.size(); ++i)
        acc[i] = static_cast<int32_t>(static_cast<uint32_t>(acc[i]) + static_cast<uint32_t>(band_acc[i]));
    }
  }
  float* Y = y.mutable_data<float>();
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < s.N; ++c) {
      const float scale = a_scale * ws[per_col ? c : 0];
      Y[m * s.N + c] = static_cast<float>(acc[m * s.N + c]) * scale;
    }
  return Status::ok();
}

Status nm_sparse_matmul(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(3));
  const Value& a = ctx.in(0);
  const Value& values = ctx.in(1);
  const Value& indices = ctx.in(2);
  const int64_t n = ctx.attr_int("n", 0);
  if (n != 1 && n != 2) return ctx.fail("attribute n must be 1 or 2 (the kept weights of every four), got ", n);
  if (values.rank() != 2 || indices.rank() != 2 || indices.dtype() != DType::kU8)
    return ctx.fail("values must be 2-D and indices 2-D uint8, got ", shape_str(values.shape()), " and ",
                    dtype_name(indices.dtype()), " ", shape_str(indices.shape()));
  if (a.rank() < 1) return ctx.fail("A must have rank >= 1");
  const int64_t K = a.dim(-1);
  if (values.dim(0) % n != 0 || values.dim(0) / n * 4 != K)
    return ctx.fail("values has ", values.dim(0), " rows; ", n, ":4 of K = ", K, " needs ", K / 4 * n);
  LLMC_ASSIGN_OR_RETURN(const NMSparseShape s, nm_sparse_shape(K, values.dim(1), static_cast<int>(n)));
  if (indices.dim(0) != s.rows || indices.dim(1) != s.index_cols)
    return ctx.fail("indices shape ", shape_str(indices.shape()), ", expected [", s.rows, ", ", s.index_cols, "]");
  const DType vt = values.dtype();
  const DType want_a = vt == DType::kF16 ? DType::kF16 : DType::kF32;
  if (!nm_sparse_dtype(vt) || a.dtype() != want_a)
    return ctx.fail("A of type ", dtype_name(a.dtype()), " with values of type ", dtype_name(vt),
                    " (float32 x float32/int8, float16 x float16)");
  // The panels: built once per session from the constant weight, or for this call.
  Status pack_status = Status::ok();
  auto build = [&]() -> std::shared_ptr<Packed> {
    auto p = nm_pack(values.data<uint8_t>(), indices.data<uint8_t>(), vt, s, &ctx.pool(), ctx.arena());
    if (!p.is_ok()) {
      pack_status = p.status();
      return nullptr;
    }
    auto out = std::make_shared<Packed>();
    out->b = std::move(*p);
    return out;
  };
  std::shared_ptr<Packed> local;
  const Packed* packed = nullptr;
  if (ctx.input_is_constant(1) && ctx.input_is_constant(2)) {
    packed = ctx.cached<Packed>([&] {
      auto p = build();
      if (p) {
        ctx.add_stream(p->b->data.data(), p->b->data.size());
        release_file_pages(values.raw(), values.nbytes());
        release_file_pages(indices.raw(), indices.nbytes());
      }
      return p;
    });
  }
  if (!packed) {
    if (!pack_status.is_ok()) return ctx.fail(pack_status.message());
    local = build();
    if (!local) return ctx.fail(pack_status.message());
    packed = local.get();
  }
  std::vector<int64_t> out_shape = a.shape();
  out_shape.back() = s.N;
  const int64_t M = a.numel() / K;
  Value& y = ctx.output(0, a.dtype(), out_shape);
  if (M == 0) return Status::ok();
  return vt == DType::kI8 ? run_int8(ctx, *packed->b, M, y) : run_float(ctx, *packed->b, M, y);
}

}  // namespace

void register_nm_sparse_kernels(KernelRegistry& r) { r.add(kLlmcDomain, kNMSparseMatMul, nm_sparse_matmul); }

}  // namespace llmc::rt
