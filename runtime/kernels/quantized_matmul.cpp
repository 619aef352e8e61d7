// Integer matrix products: MatMulInteger, QLinearMatMul, and ONNX Runtime's com.microsoft
// DynamicQuantizeMatMul / MatMulIntegerToFloat, all on qgemm (exact int32 accumulation).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "runtime/file_pages.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/qgemm.h"
#include "runtime/kernels/quantize_util.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {

Status dynamic_quantize_matmul_products(KernelContext& ctx, size_t members);  // below

namespace {

using namespace quant;

// ------------------------------------------------------------------ integer matrix products

// MatMul shapes (numpy: 1-D promotion, broadcast batch dims).
struct QMatMul {
  int64_t M = 0, N = 0, K = 0, nbatch = 1;
  std::vector<int64_t> out_shape, batch, a_batch, b_batch;
};

Result<QMatMul> matmul_shapes(const Value& a, const Value& b) {
  if (a.rank() == 0 || b.rank() == 0) return invalid_input("matrix inputs must have rank >= 1");
  std::vector<int64_t> as = a.shape(), bs = b.shape();
  const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  if (a_vec) as.insert(as.begin(), 1);
  if (b_vec) bs.push_back(1);
  QMatMul s;
  s.M = as[as.size() - 2];
  s.K = as.back();
  s.N = bs.back();
  if (bs[bs.size() - 2] != s.K)
    return invalid_input("inner dimensions differ: ", shape_str(a.shape()), " x ", shape_str(b.shape()));
  s.a_batch.assign(as.begin(), as.end() - 2);
  s.b_batch.assign(bs.begin(), bs.end() - 2);
  LLMC_ASSIGN_OR_RETURN(s.batch, broadcast_shapes(s.a_batch, s.b_batch));
  s.out_shape = s.batch;
  if (!a_vec) s.out_shape.push_back(s.M);
  if (!b_vec) s.out_shape.push_back(s.N);
  s.nbatch = shape_numel(s.batch);
  return s;
}

bool is_8bit(DType t) { return t == DType::kU8 || t == DType::kI8; }

// A per-tensor or per-row/column quantization parameter: 1 value, or `n` values.
Status check_param(const Value* v, int64_t n, const char* what, const char* along) {
  if (!v || v->numel() == 1) return Status::ok();
  int64_t non1 = 0;
  for (int64_t d : v->shape()) non1 += d != 1;
  if (v->numel() == n && non1 <= 1) return Status::ok();
  return unsupported(what, " of shape ", shape_str(v->shape()), " (only a scalar or one value per ", along, ", ", n,
                     ", is supported)");
}

// A constant 8-bit weight packed for the active variant; the mapped file's pages of it are
// handed back (every row count reads the packed copy), and the panels are declared as
// streamed every run (KernelContext::add_stream).
std::shared_ptr<QPackedB> pack_int8_weight(KernelContext& ctx, const uint8_t* B, int64_t K, int64_t N, bool b_signed) {
  std::shared_ptr<QPackedB> pk(qgemm_pack_b(B, K, N, N, b_signed, &ctx.pool(), ctx.arena()));
  release_file_pages(B, static_cast<size_t>(K * N));
  ctx.add_stream(pk->data.data(), pk->data.size());
  return pk;
}

// C[nbatch, M, N] (int32) = (A - a_zp) · (B - b_zp) for every batch. B is input `b_input` of
// the node; a constant B is packed once and the session keeps it.
Status run_qmatmul(KernelContext& ctx, const QMatMul& s, const void* A, DType at, const Value* a_zp, size_t b_input,
                   const Value* b_zp, int32_t* C) {
  const Value& b = ctx.in(b_input);
  if (!is_8bit(at) || !is_8bit(b.dtype()))
    return unsupported("integer MatMul on ", dtype_name(at), " x ", dtype_name(b.dtype()), " (uint8/int8 only)");
  if (a_zp && a_zp->dtype() != at) return invalid_input("a_zero_point type differs from A");
  if (b_zp && b_zp->dtype() != b.dtype()) return invalid_input("b_zero_point type differs from B");
  LLMC_RETURN_IF_ERROR(check_param(a_zp, s.M, "a_zero_point", "row of A"));
  LLMC_RETURN_IF_ERROR(check_param(b_zp, s.N, "b_zero_point", "column of B"));
  if (s.nbatch * s.M * s.N == 0) return Status::ok();
  const std::vector<int32_t> az = a_zp ? read_ints(*a_zp) : std::vector<int32_t>{0};
  const std::vector<int32_t> bz = b_zp ? read_ints(*b_zp) : std::vector<int32_t>{0};
  QGemmArgs g;
  g.M = s.M;
  g.N = s.N;
  g.K = s.K;
  g.lda = s.K;
  g.a_signed = at == DType::kI8;
  g.a_zp = az.data();
  g.a_zp_per_row = az.size() > 1;
  g.ldb = s.N;
  g.b_signed = b.dtype() == DType::kI8;
  g.b_zp = bz.data();
  g.b_zp_per_col = bz.size() > 1;
  g.ldc = s.N;
  const auto* Ab = static_cast<const uint8_t*>(A);
  const auto* Bb = b.data<uint8_t>();
  // One weight for the whole batch: a single GEMM over all rows.
  if (shape_numel(s.b_batch) == 1 && shape_numel(s.a_batch) == s.nbatch) {
    std::vector<int32_t> az_rows;
    if (g.a_zp_per_row && s.nbatch > 1) {
      for (int64_t t = 0; t < s.nbatch; ++t) az_rows.insert(az_rows.end(), az.begin(), az.end());
      g.a_zp = az_rows.data();
    }
    g.M = s.nbatch * s.M;
    g.A = Ab;
    g.B = Bb;
    if (ctx.input_is_constant(b_input) && b.rank() >= 2 && s.N >= kMinPackedColumns)
      g.packed_b = ctx.cached<QPackedB>([&] { return pack_int8_weight(ctx, Bb, s.K, s.N, g.b_signed); });
    g.C = C;
    qgemm(g, &ctx.pool());
    return Status::ok();
  }
  const auto a_str = broadcast_strides(s.a_batch, s.batch), b_str = broadcast_strides(s.b_batch, s.batch);
  const auto out_str = contiguous_strides(s.batch);
  const bool per_thread = s.nbatch >= ctx.pool().size();
  auto run = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t ao = 0, bo = 0;
      for (size_t d = 0; d < s.batch.size(); ++d) {
        const int64_t i = (t / out_str[d]) % s.batch[d];
        ao += i * a_str[d];
        bo += i * b_str[d];
      }
      QGemmArgs gt = g;
      gt.A = Ab + ao * s.M * s.K;
      gt.B = Bb + bo * s.K * s.N;
      gt.C = C + t * s.M * s.N;
      qgemm(gt, per_thread ? nullptr : &ctx.pool());
    }
  };
  if (per_thread) ctx.pool().parallel_for(s.nbatch, 1, run);
  else run(0, s.nbatch);
  return Status::ok();
}

Status matmul_integer(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& a = ctx.in(0);
  const Value& b = ctx.in(1);
  LLMC_ASSIGN_OR_RETURN(const QMatMul s, matmul_shapes(a, b));
  Value& y = ctx.output(0, DType::kI32, s.out_shape);
  return run_qmatmul(ctx, s, a.raw(), a.dtype(), ctx.input(2), 1, ctx.input(3), y.mutable_data<int32_t>());
}

// Per-tensor or per-row/column float parameter as float32 values (1 or n of them).
Result<std::vector<float>> float_param(const Value& v, int64_t n, const char* what, const char* along) {
  if (!is_float_like(v.dtype())) return invalid_input(what, " must be a float tensor, got ", dtype_name(v.dtype()));
  LLMC_RETURN_IF_ERROR(check_param(&v, n, what, along));
  std::vector<float> tmp;
  const float* p = as_floats(v, tmp);
  return std::vector<float>(p, p + v.numel());
}

Status qlinear_matmul(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(8));
  const Value& a = ctx.in(0);
  const Value& b = ctx.in(3);
  LLMC_ASSIGN_OR_RETURN(const QMatMul s, matmul_shapes(a, b));
  LLMC_ASSIGN_OR_RETURN(const auto as, float_param(ctx.in(1), s.M, "a_scale", "row of A"));
  LLMC_ASSIGN_OR_RETURN(const auto bs, float_param(ctx.in(4), s.N, "b_scale", "column of B"));
  LLMC_ASSIGN_OR_RETURN(const auto ys, float_param(ctx.in(6), s.M, "y_scale", "row of Y"));
  const Value& yzp = ctx.in(7);
  if (!is_8bit(yzp.dtype())) return unsupported("QLinearMatMul output type ", dtype_name(yzp.dtype()));
  LLMC_RETURN_IF_ERROR(check_param(&yzp, s.M, "y_zero_point", "row of Y"));
  const std::vector<int32_t> yz = read_ints(yzp);
  const DType st = ctx.in(1).dtype();
  Value& y = ctx.output(0, yzp.dtype(), s.out_shape);
  std::vector<int32_t> acc(static_cast<size_t>(s.nbatch * s.M * s.N));
  LLMC_RETURN_IF_ERROR(run_qmatmul(ctx, s, a.raw(), a.dtype(), &ctx.in(2), 3, &ctx.in(5), acc.data()));
  // The ONNX reference: multiplier = a_scale * b_scale / y_scale in the scales' precision,
  // then rint(C * multiplier + y_zp) in float64, saturated.
  const QRange r = yzp.dtype() == DType::kU8 ? QRange{0, 255} : QRange{-128, 127};
  const bool u8 = yzp.dtype() == DType::kU8;
  const int64_t rows = s.nbatch * s.M, N = s.N;
  ctx.pool().parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, N)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t m = row % s.M;
      const float a_s = as[as.size() > 1 ? m : 0], y_s = ys[ys.size() > 1 ? m : 0];
      const double z = yz[yz.size() > 1 ? m : 0];
      for (int64_t n = 0; n < N; ++n) {
        const float mult = in_scale_type(in_scale_type(a_s * bs[bs.size() > 1 ? n : 0], st) / y_s, st);
        double v = std::nearbyint(static_cast<double>(acc[row * N + n]) * mult + z);
        v = std::min<double>(r.hi, std::max<double>(r.lo, v));
        if (u8) y.mutable_data<uint8_t>()[row * N + n] = static_cast<uint8_t>(v);
        else y.mutable_data<int8_t>()[row * N + n] = static_cast<int8_t>(v);
      }
    }
  });
  return Status::ok();
}

// Y = C * (a_scale * b_scale[n]) + bias[n], float32, in place: the int32 products were written
// into Y's own buffer (same element size), so no accumulator is allocated per call. b_scale
// holds 1 or N values. Decode calls this ~85 times a token, so nothing here allocates for
// float32 parameters.
// One row: the int32 products stored in `out`'s bytes become floats in place. Cloned per ISA
// (target_clones); this file builds with -ffp-contract=off, so every clone rounds alike.
__attribute__((target_clones("avx512f", "avx2", "default"))) void scale_row(float* out, int64_t N, float a_scale,
                                                                            const float* bs, bool per_col,
                                                                            const float* bias) {
  for (int64_t n = 0; n < N; ++n) {
    int32_t acc;  // the int32 product stored in this float's bytes (memcpy: no aliasing UB)
    std::memcpy(&acc, out + n, sizeof acc);
    out[n] = static_cast<float>(acc) * (a_scale * bs[per_col ? n : 0]) + (bias ? bias[n] : 0.0f);
  }
}

// An optional bias of N float values as float32 (nullptr when absent); `tmp` holds a conversion.
Result<const float*> float_bias(const Value* bias, int64_t N, std::vector<float>& tmp) {
  if (!bias) return static_cast<const float*>(nullptr);
  if (bias->numel() != N || !is_float_like(bias->dtype()))
    return invalid_input("bias must be float with ", N, " values, got ", dtype_name(bias->dtype()), " ",
                         shape_str(bias->shape()));
  return as_floats(*bias, tmp);
}

Status scale_to_float(KernelContext& ctx, const QMatMul& s, float a_scale, const Value& b_scale, const Value* bias,
                      Value& y) {
  std::vector<float> btmp, stmp;
  LLMC_ASSIGN_OR_RETURN(const float* bias_f, float_bias(bias, s.N, btmp));
  const float* bs = as_floats(b_scale, stmp);
  const bool per_col = b_scale.numel() > 1;
  float* out = y.mutable_data<float>();
  const int64_t rows = s.nbatch * s.M, N = s.N;
  ctx.pool().parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, N)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) scale_row(out + row * N, N, a_scale, bs, per_col, bias_f);
  });
  return Status::ok();
}

// b_scale must be float with 1 or N values (checked without copying them).
Status check_float_param(const Value& v, int64_t n, const char* what, const char* along) {
  if (!is_float_like(v.dtype())) return invalid_input(what, " must be a float tensor, got ", dtype_name(v.dtype()));
  return check_param(&v, n, what, along);
}

// com.microsoft.DynamicQuantizeMatMul(A float, B int8/uint8, b_scale, b_zero_point?, bias?).
Status dynamic_quantize_matmul(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(3));
  const Value& a = ctx.in(0);
  const Value& b = ctx.in(1);
  if (a.dtype() != DType::kF32) return unsupported("DynamicQuantizeMatMul A of type ", dtype_name(a.dtype()));
  // One 2-D weight (every projection of a transformer): the path grouped products take.
  if (b.rank() == 2 && is_8bit(b.dtype())) return dynamic_quantize_matmul_products(ctx, 1);
  LLMC_ASSIGN_OR_RETURN(const QMatMul s, matmul_shapes(a, b));
  LLMC_RETURN_IF_ERROR(check_float_param(ctx.in(2), s.N, "b_scale", "column of B"));
  thread_local std::vector<uint8_t> aq;
  aq.resize(static_cast<size_t>(a.numel()));
  float a_scale;
  uint8_t a_zp;
  dynamic_quantize(ctx.pool(), a.data<float>(), a.numel(), aq.data(), a_scale, a_zp);
  Value azp = Value::allocate(DType::kU8, {});
  azp.mutable_data<uint8_t>()[0] = a_zp;
  Value& y = ctx.output(0, DType::kF32, s.out_shape);
  static_assert(sizeof(int32_t) == sizeof(float));
  LLMC_RETURN_IF_ERROR(
      run_qmatmul(ctx, s, aq.data(), DType::kU8, &azp, 1, ctx.input(3), reinterpret_cast<int32_t*>(y.mutable_data<float>())));
  return scale_to_float(ctx, s, a_scale, ctx.in(2), ctx.input(4), y);
}

}  // namespace

// Several DynamicQuantizeMatMuls of one activation (the session's plan-time group fold, e.g.
// Q, K and V): inputs A, then (B, b_scale, b_zero_point or none, bias or none) per product;
// output i is product i's Y. A is quantized once, and decode runs all the integer products in
// one parallel loop (qgemm_batch). Each output equals what its own DynamicQuantizeMatMul gives:
// same activation scale (a function of A alone), same exact int32 products, same epilogue.
Status dynamic_quantize_matmul_group(KernelContext& ctx) {
  const size_t members = ctx.num_inputs() > 1 ? (ctx.num_inputs() - 1) / 4 : 0;
  if (members == 0 || ctx.num_inputs() != 1 + 4 * members)
    return invalid_input("a DynamicQuantizeMatMul group takes A and four inputs per product, got ", ctx.num_inputs());
  return dynamic_quantize_matmul_products(ctx, members);
}

// `members` products of A (input 0) with 2-D weights: inputs 1 + 4i .. 4 + 4i are B, b_scale,
// b_zero_point (optional), bias (optional). Decode rows scale each panel's int32 results to
// float on the thread that computed them, while they are in cache; other rows are scaled after.
Status dynamic_quantize_matmul_products(KernelContext& ctx, size_t members) {
  const Value& a = ctx.in(0);
  if (a.dtype() != DType::kF32) return unsupported("DynamicQuantizeMatMul A of type ", dtype_name(a.dtype()));
  // Per-call bookkeeping in vectors kept per thread: decode makes ~50 of these calls a token,
  // and fresh vectors cost ~15 heap allocations each.
  struct Scratch {
    std::vector<QMatMul> shapes;
    std::vector<QGemmArgs> args;
    std::vector<std::vector<int32_t>> bzs;
    std::vector<Value*> ys;
    std::vector<std::vector<float>> scale_tmp, bias_tmp;
    std::vector<const float*> scales, biases;
    std::vector<bool> per_col;
    std::vector<uint8_t> aq;
  };
  thread_local Scratch sc;
  sc.shapes.resize(members);
  for (size_t i = 0; i < members; ++i) {
    const Value& b = ctx.in(1 + 4 * i);
    if (b.rank() != 2) return unsupported("grouped DynamicQuantizeMatMul needs 2-D weights, got ", shape_str(b.shape()));
    if (!is_8bit(b.dtype())) return unsupported("DynamicQuantizeMatMul B of type ", dtype_name(b.dtype()));
    LLMC_ASSIGN_OR_RETURN(sc.shapes[i], matmul_shapes(a, b));
    LLMC_RETURN_IF_ERROR(check_float_param(ctx.in(2 + 4 * i), sc.shapes[i].N, "b_scale", "column of B"));
    const Value* b_zp = ctx.input(3 + 4 * i);
    if (b_zp && b_zp->dtype() != b.dtype()) return invalid_input("b_zero_point type differs from B");
    LLMC_RETURN_IF_ERROR(check_param(b_zp, sc.shapes[i].N, "b_zero_point", "column of B"));
  }
  sc.aq.resize(static_cast<size_t>(a.numel()));
  float a_scale;
  uint8_t a_zp;
  dynamic_quantize(ctx.pool(), a.data<float>(), a.numel(), sc.aq.data(), a_scale, a_zp);
  const int32_t az = a_zp;
  // Packed weights of every product that has one (constant, wide enough), kept by the session.
  struct Packs {
    std::vector<std::shared_ptr<QPackedB>> b;
  };
  const Packs* packs = ctx.cached<Packs>([&] {
    auto p = std::make_shared<Packs>();
    for (size_t i = 0; i < members; ++i) {
      const Value& b = ctx.in(1 + 4 * i);
      const QMatMul& s = sc.shapes[i];
      std::shared_ptr<QPackedB> pk;
      if (ctx.input_is_constant(1 + 4 * i) && s.N >= kMinPackedColumns) {
        pk = pack_int8_weight(ctx, b.data<uint8_t>(), s.K, s.N, b.dtype() == DType::kI8);
      }
      p->b.push_back(std::move(pk));
    }
    return p;
  });
  sc.args.assign(members, QGemmArgs{});
  sc.bzs.resize(members);
  sc.ys.resize(members);
  sc.scale_tmp.resize(members);
  sc.bias_tmp.resize(members);
  sc.scales.resize(members);
  sc.biases.resize(members);
  sc.per_col.resize(members);
  for (size_t i = 0; i < members; ++i) {
    const Value& b = ctx.in(1 + 4 * i);
    const QMatMul& s = sc.shapes[i];
    if (const Value* b_zp = ctx.input(3 + 4 * i)) sc.bzs[i] = read_ints(*b_zp);
    else sc.bzs[i].assign(1, 0);
    sc.ys[i] = &ctx.output(i, DType::kF32, s.out_shape);
    // Float scales and biases, checked, for the epilogue in the loop.
    sc.scales[i] = as_floats(ctx.in(2 + 4 * i), sc.scale_tmp[i]);
    sc.per_col[i] = ctx.in(2 + 4 * i).numel() > 1;
    LLMC_ASSIGN_OR_RETURN(sc.biases[i], float_bias(ctx.input(4 + 4 * i), s.N, sc.bias_tmp[i]));
    QGemmArgs& g = sc.args[i];
    g.M = s.nbatch * s.M;  // one 2-D weight for all rows of A
    g.N = s.N;
    g.K = s.K;
    g.A = sc.aq.data();
    g.lda = s.K;
    g.a_signed = false;
    g.a_zp = &az;
    g.B = b.data<uint8_t>();
    g.ldb = s.N;
    g.b_signed = b.dtype() == DType::kI8;
    g.b_zp = sc.bzs[i].data();
    g.b_zp_per_col = sc.bzs[i].size() > 1;
    g.packed_b = packs && packs->b[i] ? packs->b[i].get() : nullptr;
    static_assert(sizeof(int32_t) == sizeof(float));
    g.C = reinterpret_cast<int32_t*>(sc.ys[i]->mutable_data<float>());
    g.ldc = s.N;
    g.Cf = sc.ys[i]->mutable_data<float>();  // decode rows: the epilogue in the kernel when it can
    g.out_a_scale = a_scale;
    g.out_scale = sc.scales[i];
    g.out_scale_per_col = sc.per_col[i];
    g.out_bias = sc.biases[i];
  }
  // The epilogue reads everything through one pointer, so std::function keeps it inline.
  struct Epilogue {
    Scratch* sc;
    float a_scale;
  } epi{&sc, a_scale};
  const Epilogue* e = &epi;
  const QColumnsDone scale_columns = [e](size_t i, int64_t j0, int64_t j1) {
    const Scratch& x = *e->sc;
    scale_row(x.ys[i]->mutable_data<float>() + j0, j1 - j0, e->a_scale, x.scales[i] + (x.per_col[i] ? j0 : 0),
              x.per_col[i], x.biases[i] ? x.biases[i] + j0 : nullptr);
  };
  if (qgemm_batch(sc.args.data(), members, &ctx.pool(), &scale_columns)) return Status::ok();
  for (size_t i = 0; i < members; ++i)
    LLMC_RETURN_IF_ERROR(scale_to_float(ctx, sc.shapes[i], a_scale, ctx.in(2 + 4 * i), ctx.input(4 + 4 * i), *sc.ys[i]));
  return Status::ok();
}

namespace {

// com.microsoft.MatMulIntegerToFloat(A, B, a_scale, b_scale, a_zero_point?, b_zero_point?, bias?).
Status matmul_integer_to_float(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(4));
  const Value& a = ctx.in(0);
  const Value& b = ctx.in(1);
  LLMC_ASSIGN_OR_RETURN(const QMatMul s, matmul_shapes(a, b));
  if (ctx.in(2).dtype() != DType::kF32) return unsupported("MatMulIntegerToFloat output type ", dtype_name(ctx.in(2).dtype()));
  if (ctx.in(2).numel() != 1) return unsupported("a_scale must be a scalar (per-tensor), got ", shape_str(ctx.in(2).shape()));
  LLMC_ASSIGN_OR_RETURN(const auto as, float_param(ctx.in(2), 1, "a_scale", "tensor"));
  LLMC_RETURN_IF_ERROR(check_float_param(ctx.in(3), s.N, "b_scale", "column of B"));
  Value& y = ctx.output(0, DType::kF32, s.out_shape);
  LLMC_RETURN_IF_ERROR(run_qmatmul(ctx, s, a.raw(), a.dtype(), ctx.input(4), 1, ctx.input(5),
                                   reinterpret_cast<int32_t*>(y.mutable_data<float>())));
  return scale_to_float(ctx, s, as[0], ctx.in(3), ctx.input(6), y);
}

}  // namespace

void register_quantized_matmul_kernels(KernelRegistry& r) {
  r.add("MatMulInteger", matmul_integer);
  r.add("QLinearMatMul", qlinear_matmul);
  r.add("com.microsoft", "DynamicQuantizeMatMul", dynamic_quantize_matmul);
  r.add("com.microsoft", "MatMulIntegerToFloat", matmul_integer_to_float);
}

}  // namespace llmc::rt
