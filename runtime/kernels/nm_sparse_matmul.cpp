// com.llmcompress NMSparseMatMul(A, values, indices, scales?) -> Y, attribute n (1 or 2):
// Y = A · B where B [K, N] is the n:4-sparse weight in the packed form of ir/nm_sparse.h
// (docs/nm_sparse_format.md).
//  - float32 or float16 values: A has B's dtype and so has Y; products accumulate in float32
//    (float16 Y rounded once).
//  - int8 values (symmetric, zeros exact): A float32 is quantised to uint8 per tensor as ONNX's
//    DynamicQuantizeLinear does, products are exact in int32, and Y = float(acc) ·
//    (a_scale · scales[n]) with scales float32 per column or one: the dense int8 graph's
//    result (DynamicQuantizeLinear → MatMulInteger → Cast → Mul), bit for bit.
// Decode rows stream the session's packed panels (nm_sparse.h); prefill runs the sparse GEMM over
// the same panels (CPUs without AVX-512: B widened band by band, the dense GEMM on each band).
#include <algorithm>
#include <climits>
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
constexpr int64_t kBandElements = int64_t{1} << 18;

// At least 32 groups (128 rows) a band: a wide B (an LM head) would otherwise make many thin GEMMs.
int64_t band_groups(const NMSparseShape& s) {
  return std::clamp<int64_t>(kBandElements / (4 * s.N), std::min<int64_t>(32, s.K / 4), s.K / 4);
}

// The product's shapes from its inputs (A, then values, indices, scales at `in`, in + 1, in + 2).
Result<NMSparseShape> product_shape(const KernelContext& ctx, size_t in, int64_t n) {
  const Value& a = ctx.in(0);
  const Value& values = ctx.in(in);
  const Value& indices = ctx.in(in + 1);
  if (n != 1 && n != 2) return invalid_input("attribute n must be 1 or 2 (the kept weights of every four), got ", n);
  if (values.rank() != 2 || indices.rank() != 2 || indices.dtype() != DType::kU8)
    return invalid_input("values must be 2-D and indices 2-D uint8, got ", shape_str(values.shape()), " and ",
                         dtype_name(indices.dtype()), " ", shape_str(indices.shape()));
  if (a.rank() < 1) return invalid_input("A must have rank >= 1");
  const int64_t K = a.dim(-1);
  LLMC_ASSIGN_OR_RETURN(const NMSparseShape s, nm_sparse_shape(K, values.dim(1), static_cast<int>(n)));
  if (values.dim(0) != s.rows)
    return invalid_input("values has ", values.dim(0), " rows; ", n, ":4 of K = ", K, " needs ", s.rows);
  if (indices.dim(0) != s.rows || indices.dim(1) != s.index_cols)
    return invalid_input("indices shape ", shape_str(indices.shape()), ", expected [", s.rows, ", ", s.index_cols, "]");
  const DType vt = values.dtype();
  const DType want_a = vt == DType::kF16 ? DType::kF16 : DType::kF32;
  if (!nm_sparse_dtype(vt) || a.dtype() != want_a)
    return unsupported("A of type ", dtype_name(a.dtype()), " with values of type ", dtype_name(vt),
                       " (float32 x float32/int8, float16 x float16)");
  const Value* scales = ctx.input(in + 2);
  if (vt == DType::kI8 && !scales) return invalid_input("int8 values need the weight scales (input ", in + 2, ")");
  if (scales && (scales->numel() != 1 && scales->numel() != s.N))
    return invalid_input("scales has ", scales->numel(), " values; expected 1 or N = ", s.N);
  return s;
}

// Prefill of one product: the sparse GEMM over the panels, or (no AVX-512) B widened band by
// band and the dense GEMM on each band.
void prefill_float(KernelContext& ctx, const NMPacked& b, const float* A, int64_t M, float* Y) {
  if (nm_gemm_float(b, A, M, Y, &ctx.pool())) return;
  const NMSparseShape& s = b.shape;
  thread_local std::vector<float> band;
  const int64_t gb = band_groups(s);
  band.resize(static_cast<size_t>(4 * gb * s.N));
  for (int64_t g0 = 0; g0 < s.K / 4; g0 += gb) {
    const int64_t g1 = std::min(s.K / 4, g0 + gb);
    nm_unpack_float(b, g0, g1, band.data(), s.N, &ctx.pool());
    sgemm(M, s.N, 4 * (g1 - g0), A + 4 * g0, s.K, band.data(), s.N, Y, s.N, g0 > 0, &ctx.pool());
  }
}

// Exact int32 sums of every row with an int8 B, band by band (the bands add up exactly, wrapping
// like the dense kernel).
void prefill_int8(KernelContext& ctx, const NMPacked& b, const uint8_t* aq, int32_t a_zp, int64_t M, int32_t* acc) {
  const NMSparseShape& s = b.shape;
  thread_local std::vector<int8_t> band;
  thread_local std::vector<int32_t> part;
  const int64_t gb = band_groups(s);
  band.resize(static_cast<size_t>(4 * gb * s.N));
  part.resize(static_cast<size_t>(M * s.N));
  std::fill(acc, acc + M * s.N, 0);
  for (int64_t g0 = 0; g0 < s.K / 4; g0 += gb) {
    const int64_t g1 = std::min(s.K / 4, g0 + gb);
    nm_unpack_int8(b, g0, g1, band.data(), s.N, &ctx.pool());
    QGemmArgs q;
    q.M = M;
    q.N = s.N;
    q.K = 4 * (g1 - g0);
    q.A = aq + 4 * g0;
    q.lda = s.K;
    q.a_signed = false;
    q.a_zp = &a_zp;
    q.B = band.data();
    q.ldb = s.N;
    q.b_signed = true;
    q.C = part.data();
    q.ldc = s.N;
    qgemm(q, &ctx.pool());
    for (int64_t i = 0; i < M * s.N; ++i)
      acc[i] = static_cast<int32_t>(static_cast<uint32_t>(acc[i]) + static_cast<uint32_t>(part[i]));
  }
}

}  // namespace

// `members` products of A (input 0), each with inputs values, indices, scales (or none) at
// 1 + 3i .. 3 + 3i and n the node's attribute. Decode rows run every product's panels in one
// parallel loop (int8: A quantised once); prefill rows run them one after another.
Status nm_sparse_products(KernelContext& ctx, size_t members) {
  const Value& a = ctx.in(0);
  const int64_t n = ctx.attr_int("n", 0);
  thread_local std::vector<NMSparseShape> shapes;
  shapes.resize(members);
  for (size_t i = 0; i < members; ++i) {
    auto s = product_shape(ctx, 1 + 3 * i, n);
    if (!s.is_ok()) return s.status();
    if (i > 0 && ctx.in(1 + 3 * i).dtype() != ctx.in(1).dtype())
      return invalid_input("NMSparseMatMul group mixes value types");
    shapes[i] = *s;
    // The panels are this product's working copy of the weight: within the session's limits,
    // and never many times the weight itself.
    const DType vt = ctx.in(1 + 3 * i).dtype();
    const auto bytes = nm_packed_bytes(vt, *s);
    if (!bytes || *bytes > uint64_t(INT64_MAX)) return invalid_input("packed n:4 weight ", i, " is too large");
    if (!nm_packable(vt, *s))
      return invalid_input("n:4 weight [", s->K, ", ", s->N, "] is too narrow to pack (", *bytes, " bytes of panels)");
    LLMC_RETURN_IF_ERROR(ctx.check_output(DType::kU8, {static_cast<int64_t>(*bytes)}));
  }
  const DType vt = ctx.in(1).dtype();
  // The panels: built once per session from constant weights, or for this call.
  struct Packs {
    std::vector<std::unique_ptr<NMPacked>> b;
  };
  Status pack_status = Status::ok();
  auto build = [&](bool session) -> std::shared_ptr<Packs> {
    // Every check first: a session's packs go to its arena, so none is made unless all can be.
    for (size_t i = 0; i < members; ++i) {
      pack_status = nm_check_positions(ctx.in(2 + 3 * i).data<uint8_t>(), shapes[i]);
      if (!pack_status.is_ok()) return nullptr;
    }
    auto p = std::make_shared<Packs>();
    for (size_t i = 0; i < members; ++i) {
      const Value& values = ctx.in(1 + 3 * i);
      const Value& indices = ctx.in(2 + 3 * i);
      auto b = nm_pack(values.data<uint8_t>(), indices.data<uint8_t>(), vt, shapes[i], &ctx.pool(),
                       session ? ctx.arena() : nullptr);
      if (!b.is_ok()) {
        pack_status = b.status();
        return nullptr;
      }
      if (session) {
        ctx.add_stream((*b)->data.data(), (*b)->data.size());
        release_file_pages(values.raw(), values.nbytes());
        release_file_pages(indices.raw(), indices.nbytes());
      }
      p->b.push_back(std::move(*b));
    }
    return p;
  };
  bool constant = true;
  for (size_t i = 0; i < members; ++i)
    constant = constant && ctx.input_is_constant(1 + 3 * i) && ctx.input_is_constant(2 + 3 * i);
  std::shared_ptr<Packs> local;
  const Packs* packs = constant ? ctx.cached<Packs>([&] { return build(true); }) : nullptr;
  if (!packs) {
    if (pack_status.is_ok()) local = build(false);
    if (!local) return pack_status;
    packs = local.get();
  }
  const int64_t K = shapes[0].K, M = a.numel() / K;
  thread_local std::vector<Value*> ys;
  thread_local std::vector<std::vector<float>> scale_tmp;
  thread_local std::vector<const float*> scales;
  ys.resize(members);
  scale_tmp.resize(members);
  scales.assign(members, nullptr);
  for (size_t i = 0; i < members; ++i) {
    std::vector<int64_t> shape = a.shape();
    shape.back() = shapes[i].N;
    ys[i] = &ctx.output(i, a.dtype(), std::move(shape));
    if (const Value* sc = ctx.input(3 + 3 * i)) scales[i] = quant::as_floats(*sc, scale_tmp[i]);
  }
  if (M == 0) return Status::ok();
  const bool half = vt == DType::kF16, int8 = vt == DType::kI8;
  // Float inputs as float32 rows; int8: A quantised once (DynamicQuantizeLinear's rule), then
  // 16 zero bytes for the last row's last window.
  thread_local std::vector<float> af;
  thread_local std::vector<uint8_t> aq;
  const float* A = a.data<float>();
  float a_scale = 0;
  uint8_t a_zp = 0;
  if (half) {
    af.resize(static_cast<size_t>(M * K));
    halfs_to_floats(a.data<uint16_t>(), af.data(), M * K);
    A = af.data();
  }
  if (int8) {
    aq.resize(static_cast<size_t>(M * K + 16));
    quant::dynamic_quantize(ctx.pool(), a.data<float>(), M * K, aq.data(), a_scale, a_zp);
    std::fill(aq.begin() + M * K, aq.end(), 0);
  }
  // Float16 results are made in float32, then rounded once.
  thread_local std::vector<std::vector<float>> yf;
  yf.resize(members);
  auto out_f32 = [&](size_t i) {
    if (!half) return ys[i]->mutable_data<float>();
    yf[i].resize(static_cast<size_t>(M * shapes[i].N));
    return yf[i].data();
  };
  auto job = [&](size_t i, int64_t m) {
    NMGemv j;
    j.b = packs->b[i].get();
    j.x = A + m * K;
    // int8: a row's last window may read the next row's bytes (or the zero tail): only zero
    // weights, padding past the last kept row, meet them.
    j.xq = int8 ? aq.data() + m * K : nullptr;
    j.a_zp = a_zp;
    j.a_scale = a_scale;
    j.scales = scales[i];
    j.per_col = scales[i] && ctx.in(3 + 3 * i).numel() > 1;
    j.y = out_f32(i) + m * shapes[i].N;
    return j;
  };
  if (M <= kMaxGemvRows) {
    thread_local std::vector<NMGemv> jobs;
    for (int64_t m = 0; m < M; ++m) {
      jobs.clear();
      for (size_t i = 0; i < members; ++i) jobs.push_back(job(i, m));
      nm_gemv_batch(jobs.data(), members, &ctx.pool());
    }
  } else {
    thread_local std::vector<int32_t> acc;
    for (size_t i = 0; i < members; ++i) {
      const NMPacked& b = *packs->b[i];
      const int64_t N = shapes[i].N;
      float* Y = out_f32(i);
      if (!int8) {
        prefill_float(ctx, b, A, M, Y);
        continue;
      }
      if (nm_gemm_int8(job(i, 0), M, &ctx.pool())) continue;
      acc.resize(static_cast<size_t>(M * N));
      prefill_int8(ctx, b, aq.data(), a_zp, M, acc.data());
      const bool per_col = ctx.in(3 + 3 * i).numel() > 1;
      for (int64_t r = 0; r < M; ++r)
        for (int64_t c = 0; c < N; ++c) {
          const float scale = a_scale * scales[i][per_col ? c : 0];
          Y[r * N + c] = static_cast<float>(acc[r * N + c]) * scale;
        }
    }
  }
  if (half)
    for (size_t i = 0; i < members; ++i) floats_to_halfs(yf[i].data(), ys[i]->mutable_data<uint16_t>(), M * shapes[i].N);
  return Status::ok();
}

namespace {

Status nm_sparse_matmul(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(3));
  return nm_sparse_products(ctx, 1);
}

}  // namespace

// NMSparseMatMuls of one activation run as one step (session_fold_nm_group.cpp): inputs A,
// then (values, indices, scales or none) per product; output i is product i's Y.
Status nm_sparse_matmul_group(KernelContext& ctx) {
  const size_t members = ctx.num_inputs() > 1 ? (ctx.num_inputs() - 1) / 3 : 0;
  if (members == 0 || ctx.num_inputs() != 1 + 3 * members || ctx.num_outputs() != members)
    return invalid_input("an NMSparseMatMul group takes A and three inputs per product, got ", ctx.num_inputs());
  return nm_sparse_products(ctx, members);
}

void register_nm_sparse_kernels(KernelRegistry& r) { r.add(kLlmcDomain, kNMSparseMatMul, nm_sparse_matmul); }

}  // namespace llmc::rt
