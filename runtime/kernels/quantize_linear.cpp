// INT8 quantisation ops: QuantizeLinear / DequantizeLinear (per-tensor, per-axis, blocked;
// 8/16-bit, int32 for DQ, packed 4-bit), DynamicQuantizeLinear, MatMulInteger, QLinearMatMul,
// and ONNX Runtime's com.microsoft DynamicQuantizeMatMul / MatMulIntegerToFloat. The integer
// products run on qgemm (exact int32).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/qgemm.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {

namespace {

constexpr int64_t kGrain = 16384;  // elements per parallel chunk

bool is_float_like(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64; }

// Float-like tensor as float32 (f32 is returned in place; others are converted into tmp).
const float* as_floats(const Value& v, std::vector<float>& tmp) {
  if (v.dtype() == DType::kF32) return v.data<float>();
  tmp.resize(static_cast<size_t>(v.numel()));
  for (int64_t i = 0; i < v.numel(); ++i) {
    switch (v.dtype()) {
      case DType::kF16: tmp[i] = half_to_float(v.data<uint16_t>()[i]); break;
      case DType::kBF16: tmp[i] = bf16_to_float(v.data<uint16_t>()[i]); break;
      case DType::kF64: tmp[i] = static_cast<float>(v.data<double>()[i]); break;
      case DType::kI32: tmp[i] = static_cast<float>(v.data<int32_t>()[i]); break;
      default: tmp[i] = 0; break;
    }
  }
  return tmp.data();
}

// Stores float32 results as `t` (f32, f16 or bf16).
void store_floats(const float* src, int64_t n, DType t, void* dst) {
  if (t == DType::kF32) {
    if (src != dst) std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = t == DType::kF16 ? float_to_half(src[i]) : float_to_bf16(src[i]);
}

// Integer range of a quantized type.
struct QRange {
  int32_t lo = 0, hi = 0;
};
Result<QRange> qrange(DType t, bool dequant) {
  switch (t) {
    case DType::kU8: return QRange{0, 255};
    case DType::kI8: return QRange{-128, 127};
    case DType::kU16: return QRange{0, 65535};
    case DType::kI16: return QRange{-32768, 32767};
    case DType::kU4: return QRange{0, 15};
    case DType::kI4: return QRange{-8, 7};
    case DType::kI32:
      if (dequant) return QRange{INT_MIN, INT_MAX};
      break;
    default: break;
  }
  return unsupported("quantized type ", dtype_name(t), " is not supported (int8/uint8/int16/uint16/int4/uint4",
                     dequant ? "/int32)" : ")");
}


// Any integer quantized tensor (4-bit unpacked, sign-extended) as int32 values.
std::vector<int32_t> read_ints(const Value& v) {
  std::vector<int32_t> out(static_cast<size_t>(v.numel()));
  const auto* b = static_cast<const uint8_t*>(v.raw());
  for (int64_t i = 0; i < v.numel(); ++i) {
    switch (v.dtype()) {
      case DType::kU8: out[i] = b[i]; break;
      case DType::kI8: out[i] = static_cast<int8_t>(b[i]); break;
      case DType::kU16: out[i] = v.data<uint16_t>()[i]; break;
      case DType::kI16: out[i] = v.data<int16_t>()[i]; break;
      case DType::kI32: out[i] = v.data<int32_t>()[i]; break;
      case DType::kU4: out[i] = (b[i / 2] >> (4 * (i & 1))) & 0xF; break;
      case DType::kI4: out[i] = static_cast<int8_t>(((b[i / 2] >> (4 * (i & 1))) & 0xF) << 4) >> 4; break;
      default: out[i] = 0; break;
    }
  }
  return out;
}

// How scale/zero point map onto x viewed as [outer, D, inner] around `axis`.
struct Granularity {
  enum Kind { kTensor, kAxis, kBlocked } kind = kTensor;
  int64_t outer = 1, D = 1, inner = 1, block = 0, Pb = 0;
};

Result<Granularity> granularity(const std::vector<int64_t>& xs, const Value& scale, const Value* zp, int64_t axis,
                                int64_t block) {
  Granularity g;
  if (zp && zp->numel() != scale.numel())
    return invalid_input("zero point shape ", shape_str(zp->shape()), " does not match scale shape ",
                         shape_str(scale.shape()));
  if (block < 0) return invalid_input("block_size must be >= 0, got ", block);
  if (block == 0 && scale.numel() == 1 && scale.rank() <= 1) return g;  // per tensor
  const int rank = static_cast<int>(xs.size());
  LLMC_ASSIGN_OR_RETURN(const int ax, normalize_axis(axis, rank));
  if (rank == 0) return invalid_input("per-axis quantization needs x of rank >= 1");
  for (int d = 0; d < ax; ++d) g.outer *= xs[d];
  g.D = xs[ax];
  for (int d = ax + 1; d < rank; ++d) g.inner *= xs[d];
  if (block == 0) {
    if (scale.rank() != 1 || scale.numel() != g.D)
      return invalid_input("per-axis scale must be 1-D of size ", g.D, " (x ", shape_str(xs), ", axis ", ax,
                           "), got ", shape_str(scale.shape()));
    g.kind = Granularity::kAxis;
    return g;
  }
  g.kind = Granularity::kBlocked;
  g.block = block;
  g.Pb = (g.D + block - 1) / block;
  bool ok = scale.rank() == rank;
  for (int d = 0; ok && d < rank; ++d) ok = scale.shape()[d] == (d == ax ? g.Pb : xs[d]);
  if (!ok)
    return invalid_input("blocked scale shape ", shape_str(scale.shape()), " does not match x ", shape_str(xs),
                         " with axis ", ax, " and block_size ", block);
  return g;
}

// Calls f(offset, length, param_offset, param_stride) over spans of x sharing a param pattern:
// param_stride 0 = one scale for the span, 1 = one scale per element.
template <typename F>
void for_spans(ThreadPool& pool, const Granularity& g, int64_t numel, F&& f) {
  if (g.kind == Granularity::kTensor) {
    constexpr int64_t kChunk = 4096;
    pool.parallel_for((numel + kChunk - 1) / kChunk, kGrain / kChunk, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) f(r * kChunk, std::min(kChunk, numel - r * kChunk), int64_t{0}, int64_t{0});
    });
    return;
  }
  const int64_t len = g.inner;
  pool.parallel_for(g.outer * g.D, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, len)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r / g.D, d = r % g.D;
      if (g.kind == Granularity::kAxis) f(r * len, len, d, int64_t{0});
      else f(r * len, len, (o * g.Pb + d / g.block) * len, int64_t{1});
    }
  });
}

// Round half to even for |v| < 2^22 (callers clamp first); vectorisable, no libm.
inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

// Rounds a float32 value to the nearest float16 and back (arithmetic in float16 precision).
float in_scale_type(float v, DType t) { return t == DType::kF16 ? half_to_float(float_to_half(v)) : v; }

// y = saturate(round(x / s) + z). Clamping before rounding keeps |v| small: anything beyond
// [lo - z - 1, hi - z + 1] saturates anyway. NaN goes to the low end. With HalfDiv the quotient
// is rounded to float16 first (a float16 y_scale sets the division's precision).
template <typename TQ, bool HalfDiv>
inline TQ quantize_one(float x, float sc, int32_t zz, QRange r) {
  const float lo = static_cast<float>(int64_t{r.lo} - zz - 1), hi = static_cast<float>(int64_t{r.hi} - zz + 1);
  float v = x / sc;
  if constexpr (HalfDiv) v = half_to_float(float_to_half(v));
  v = v > lo ? v : lo;
  v = v < hi ? v : hi;
  int32_t q = static_cast<int32_t>(round_even(v)) + zz;
  q = q < r.lo ? r.lo : (q > r.hi ? r.hi : q);
  return static_cast<TQ>(q);
}

template <typename TQ, bool HalfDiv = false>
void quantize_span(const float* x, int64_t n, const float* s, const int32_t* z, int64_t stride, TQ* y, QRange r) {
  if (stride == 0) {  // one scale for the span: a loop the compiler vectorises
    const float sc = s[0];
    const int32_t zz = z ? z[0] : 0;
    for (int64_t i = 0; i < n; ++i) y[i] = quantize_one<TQ, HalfDiv>(x[i], sc, zz, r);
    return;
  }
  for (int64_t i = 0; i < n; ++i) y[i] = quantize_one<TQ, HalfDiv>(x[i], s[i], z ? z[i] : 0, r);
}

// 4-bit values (one per int8) packed two per byte, low nibble first; a trailing odd nibble
// leaves the high half zero.
void pack4(const int8_t* v, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n / 2; ++i) out[i] = static_cast<uint8_t>((v[2 * i] & 0xF) | ((v[2 * i + 1] & 0xF) << 4));
  if (n & 1) out[n / 2] = static_cast<uint8_t>(v[n - 1] & 0xF);
}

Status quantize_linear(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& x = ctx.in(0);
  const Value& scale = ctx.in(1);
  const Value* zp = ctx.input(2);
  if (!is_float_like(x.dtype()) && x.dtype() != DType::kI32)
    return unsupported("QuantizeLinear input of type ", dtype_name(x.dtype()));
  if (!is_float_like(scale.dtype())) return invalid_input("y_scale must be a float tensor, got ", dtype_name(scale.dtype()));
  const int64_t out_attr = ctx.attr_int("output_dtype", 0);
  DType qt = zp ? zp->dtype() : (out_attr ? static_cast<DType>(out_attr) : DType::kU8);
  if (zp && out_attr && static_cast<DType>(out_attr) != qt)
    return invalid_input("output_dtype ", dtype_name(static_cast<DType>(out_attr)), " differs from the zero point type ",
                         dtype_name(qt));
  LLMC_ASSIGN_OR_RETURN(const QRange range, qrange(qt, false));
  LLMC_ASSIGN_OR_RETURN(const Granularity g,
                        granularity(x.shape(), scale, zp, ctx.attr_int("axis", 1), ctx.attr_int("block_size", 0)));
  std::vector<float> xtmp, stmp;
  const float* xf = as_floats(x, xtmp);
  const float* sf = as_floats(scale, stmp);
  const std::vector<int32_t> zv = zp ? read_ints(*zp) : std::vector<int32_t>();
  const int32_t* zd = zp ? zv.data() : nullptr;
  Value& y = ctx.output(0, qt, x.shape());
  const int64_t n = x.numel();
  if (n == 0) return Status::ok();
  // The division runs in y_scale's precision, or the `precision` attribute's (opset 25):
  // float16 rounds the quotient to float16; everything else divides in float32.
  const int64_t precision = ctx.attr_int("precision", 0);
  const bool half_div = precision ? precision == static_cast<int64_t>(DType::kF16) : scale.dtype() == DType::kF16;
  auto run = [&](auto tag, void* dst) {
    using TQ = decltype(tag);
    TQ* out = static_cast<TQ*>(dst);
    for_spans(ctx.pool(), g, n, [&](int64_t off, int64_t len, int64_t poff, int64_t ps) {
      if (half_div) quantize_span<TQ, true>(xf + off, len, sf + poff, zd ? zd + poff : nullptr, ps, out + off, range);
      else quantize_span<TQ>(xf + off, len, sf + poff, zd ? zd + poff : nullptr, ps, out + off, range);
    });
  };
  switch (qt) {
    case DType::kU8: run(uint8_t{}, y.mutable_raw()); break;
    case DType::kI8: run(int8_t{}, y.mutable_raw()); break;
    case DType::kU16: run(uint16_t{}, y.mutable_raw()); break;
    case DType::kI16: run(int16_t{}, y.mutable_raw()); break;
    default: {  // 4-bit: quantize one value per byte, then pack
      std::vector<int8_t> tmp(static_cast<size_t>(n));
      run(int8_t{}, tmp.data());
      pack4(tmp.data(), n, y.mutable_data<uint8_t>());
    }
  }
  return Status::ok();
}

template <typename TX>
void dequantize_span(const TX* x, int64_t n, const float* s, const int32_t* z, int64_t stride, float* y) {
  if (stride == 0) {
    const float sc = s[0];
    const int64_t zz = z ? z[0] : 0;
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(int64_t{x[i]} - zz) * sc;
    return;
  }
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(int64_t{x[i]} - (z ? z[i] : 0)) * s[i];
}

Status dequantize_linear(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& x = ctx.in(0);
  const Value& scale = ctx.in(1);
  const Value* zp = ctx.input(2);
  LLMC_RETURN_IF_ERROR(qrange(x.dtype(), true).status());
  if (!is_float_like(scale.dtype()) || scale.dtype() == DType::kF64)
    return invalid_input("x_scale must be float32/float16/bfloat16, got ", dtype_name(scale.dtype()));
  if (zp && zp->dtype() != x.dtype())
    return invalid_input("x_zero_point type ", dtype_name(zp->dtype()), " differs from x type ", dtype_name(x.dtype()));
  const int64_t out_attr = ctx.attr_int("output_dtype", 0);
  const DType ot = out_attr ? static_cast<DType>(out_attr) : scale.dtype();
  if (ot != DType::kF32 && ot != DType::kF16 && ot != DType::kBF16)
    return unsupported("DequantizeLinear output type ", dtype_name(ot));
  LLMC_ASSIGN_OR_RETURN(const Granularity g,
                        granularity(x.shape(), scale, zp, ctx.attr_int("axis", 1), ctx.attr_int("block_size", 0)));
  std::vector<float> stmp;
  const float* sf = as_floats(scale, stmp);
  const std::vector<int32_t> zv = zp ? read_ints(*zp) : std::vector<int32_t>();
  const int32_t* zd = zp ? zv.data() : nullptr;
  Value& y = ctx.output(0, ot, x.shape());
  const int64_t n = x.numel();
  if (n == 0) return Status::ok();
  std::vector<float> ftmp;
  float* yf = ot == DType::kF32 ? y.mutable_data<float>() : (ftmp.resize(n), ftmp.data());
  std::vector<int32_t> unpacked;
  auto run = [&](auto tag, const void* src) {
    using TX = decltype(tag);
    const TX* in = static_cast<const TX*>(src);
    for_spans(ctx.pool(), g, n, [&](int64_t off, int64_t len, int64_t poff, int64_t ps) {
      dequantize_span<TX>(in + off, len, sf + poff, zd ? zd + poff : nullptr, ps, yf + off);
      if (ot != DType::kF32)
        store_floats(yf + off, len, ot, static_cast<uint16_t*>(y.mutable_raw()) + off);
    });
  };
  switch (x.dtype()) {
    case DType::kU8: run(uint8_t{}, x.raw()); break;
    case DType::kI8: run(int8_t{}, x.raw()); break;
    case DType::kU16: run(uint16_t{}, x.raw()); break;
    case DType::kI16: run(int16_t{}, x.raw()); break;
    case DType::kI32: run(int32_t{}, x.raw()); break;
    default:  // 4-bit
      unpacked = read_ints(x);
      run(int32_t{}, unpacked.data());
  }
  return Status::ok();
}

// ORT's rule (onnxruntime GetQuantizationParameter): range widened to include 0, scale 1 when
// the range is empty, zero point rounded half to even after clamping.
void dynamic_params(float mn, float mx, float& scale, uint8_t& zp) {
  mn = std::min(mn, 0.0f);
  mx = std::max(mx, 0.0f);
  scale = mx == mn ? 1.0f : (mx - mn) / 255.0f;
  const float z = 0.0f - mn / scale;
  zp = static_cast<uint8_t>(round_even(std::max(0.0f, std::min(255.0f, z))));
}

// Min and max of a float32 array (NaNs ignored), in parallel.
void min_max(ThreadPool& pool, const float* x, int64_t n, float& mn, float& mx) {
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(pool.size(), n / kGrain));
  std::vector<float> lo(chunks, INFINITY), hi(chunks, -INFINITY);
  const int64_t per = (n + chunks - 1) / chunks;
  pool.parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      float a = INFINITY, b = -INFINITY;
      for (int64_t i = c * per; i < std::min(n, (c + 1) * per); ++i) {
        a = x[i] < a ? x[i] : a;
        b = x[i] > b ? x[i] : b;
      }
      lo[c] = a;
      hi[c] = b;
    }
  });
  mn = *std::min_element(lo.begin(), lo.end());
  mx = *std::max_element(hi.begin(), hi.end());
}

// Quantizes float32 x (n values) to uint8 with scale/zp chosen from its range.
void dynamic_quantize(ThreadPool& pool, const float* x, int64_t n, uint8_t* y, float& scale, uint8_t& zp) {
  float mn = 0, mx = 0;
  if (n > 0) min_max(pool, x, n, mn, mx);
  dynamic_params(mn, mx, scale, zp);
  const int32_t z = zp;
  const Granularity tensor;
  for_spans(pool, tensor, n, [&](int64_t off, int64_t len, int64_t, int64_t) {
    quantize_span<uint8_t>(x + off, len, &scale, &z, 0, y + off, QRange{0, 255});
  });
}

Status dynamic_quantize_linear(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  const Value& x = ctx.in(0);
  if (x.dtype() != DType::kF32) return unsupported("DynamicQuantizeLinear input of type ", dtype_name(x.dtype()));
  Value& y = ctx.output(0, DType::kU8, x.shape());
  float scale;
  uint8_t zp;
  dynamic_quantize(ctx.pool(), x.data<float>(), x.numel(), y.mutable_data<uint8_t>(), scale, zp);
  if (ctx.num_outputs() > 1) ctx.output(1, DType::kF32, {}).mutable_data<float>()[0] = scale;
  if (ctx.num_outputs() > 2) ctx.output(2, DType::kU8, {}).mutable_data<uint8_t>()[0] = zp;
  return Status::ok();
}

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

// C[nbatch, M, N] (int32) = (A - a_zp) · (B - b_zp) for every batch.
Status run_qmatmul(KernelContext& ctx, const QMatMul& s, const void* A, DType at, const Value* a_zp, const Value& b,
                   const Value* b_zp, int32_t* C) {
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
  return run_qmatmul(ctx, s, a.raw(), a.dtype(), ctx.input(2), b, ctx.input(3), y.mutable_data<int32_t>());
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
  LLMC_RETURN_IF_ERROR(run_qmatmul(ctx, s, a.raw(), a.dtype(), &ctx.in(2), b, &ctx.in(5), acc.data()));
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

// Y = C * (a_scale * b_scale[n]) + bias[n], float32.
Status scale_to_float(KernelContext& ctx, const QMatMul& s, const std::vector<int32_t>& acc, float a_scale,
                      const std::vector<float>& bs, const Value* bias, Value& y) {
  std::vector<float> btmp;
  const float* bias_f = nullptr;
  if (bias) {
    if (bias->numel() != s.N || !is_float_like(bias->dtype()))
      return invalid_input("bias must be float with ", s.N, " values, got ", dtype_name(bias->dtype()), " ",
                           shape_str(bias->shape()));
    bias_f = as_floats(*bias, btmp);
  }
  std::vector<float> mult(static_cast<size_t>(s.N));
  for (int64_t n = 0; n < s.N; ++n) mult[n] = a_scale * bs[bs.size() > 1 ? n : 0];
  float* out = y.mutable_data<float>();
  const int64_t rows = s.nbatch * s.M, N = s.N;
  ctx.pool().parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, N)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row)
      for (int64_t n = 0; n < N; ++n)
        out[row * N + n] = static_cast<float>(acc[row * N + n]) * mult[n] + (bias_f ? bias_f[n] : 0.0f);
  });
  return Status::ok();
}

// com.microsoft.DynamicQuantizeMatMul(A float, B int8/uint8, b_scale, b_zero_point?, bias?).
Status dynamic_quantize_matmul(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(3));
  const Value& a = ctx.in(0);
  const Value& b = ctx.in(1);
  if (a.dtype() != DType::kF32) return unsupported("DynamicQuantizeMatMul A of type ", dtype_name(a.dtype()));
  LLMC_ASSIGN_OR_RETURN(const QMatMul s, matmul_shapes(a, b));
  LLMC_ASSIGN_OR_RETURN(const auto bs, float_param(ctx.in(2), s.N, "b_scale", "column of B"));
  std::vector<uint8_t> aq(static_cast<size_t>(a.numel()));
  float a_scale;
  uint8_t a_zp;
  dynamic_quantize(ctx.pool(), a.data<float>(), a.numel(), aq.data(), a_scale, a_zp);
  Value azp = Value::allocate(DType::kU8, {});
  azp.mutable_data<uint8_t>()[0] = a_zp;
  std::vector<int32_t> acc(static_cast<size_t>(s.nbatch * s.M * s.N));
  LLMC_RETURN_IF_ERROR(run_qmatmul(ctx, s, aq.data(), DType::kU8, &azp, b, ctx.input(3), acc.data()));
  Value& y = ctx.output(0, DType::kF32, s.out_shape);
  return scale_to_float(ctx, s, acc, a_scale, bs, ctx.input(4), y);
}

// com.microsoft.MatMulIntegerToFloat(A, B, a_scale, b_scale, a_zero_point?, b_zero_point?, bias?).
Status matmul_integer_to_float(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(4));
  const Value& a = ctx.in(0);
  const Value& b = ctx.in(1);
  LLMC_ASSIGN_OR_RETURN(const QMatMul s, matmul_shapes(a, b));
  if (ctx.in(2).dtype() != DType::kF32) return unsupported("MatMulIntegerToFloat output type ", dtype_name(ctx.in(2).dtype()));
  if (ctx.in(2).numel() != 1) return unsupported("a_scale must be a scalar (per-tensor), got ", shape_str(ctx.in(2).shape()));
  LLMC_ASSIGN_OR_RETURN(const auto as, float_param(ctx.in(2), 1, "a_scale", "tensor"));
  LLMC_ASSIGN_OR_RETURN(const auto bs, float_param(ctx.in(3), s.N, "b_scale", "column of B"));
  std::vector<int32_t> acc(static_cast<size_t>(s.nbatch * s.M * s.N));
  LLMC_RETURN_IF_ERROR(run_qmatmul(ctx, s, a.raw(), a.dtype(), ctx.input(4), b, ctx.input(5), acc.data()));
  Value& y = ctx.output(0, DType::kF32, s.out_shape);
  return scale_to_float(ctx, s, acc, as[0], bs, ctx.input(6), y);
}

}  // namespace

void register_quantize_kernels(KernelRegistry& r) {
  r.add("QuantizeLinear", quantize_linear);
  r.add("DequantizeLinear", dequantize_linear);
  r.add("DynamicQuantizeLinear", dynamic_quantize_linear);
  r.add("MatMulInteger", matmul_integer);
  r.add("QLinearMatMul", qlinear_matmul);
  r.add("com.microsoft", "DynamicQuantizeMatMul", dynamic_quantize_matmul);
  r.add("com.microsoft", "MatMulIntegerToFloat", matmul_integer_to_float);
}

}  // namespace llmc::rt
