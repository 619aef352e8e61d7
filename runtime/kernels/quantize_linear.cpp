// INT8 quantisation ops: QuantizeLinear / DequantizeLinear (per-tensor, per-axis, blocked;
// 8/16-bit, int32 for DQ, packed 4-bit) and DynamicQuantizeLinear. The integer matrix products
// are in quantized_matmul.cpp.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/quantize_util.h"
#include "runtime/kernels/qgemm.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {

namespace {

using namespace quant;


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

// The two loops of dynamic quantisation, cloned per ISA (decode runs them on one thread for
// every integer product's activation, 49 times a token on the 110M model): min and max of a
// span (NaNs ignored), and uint8 quantisation of a span with one scale.
__attribute__((target_clones("avx512f", "avx2", "default"))) void span_min_max(const float* x, int64_t n,
                                                                               float& mn, float& mx) {
  // 16 lanes at a time (a lane keeps its old value when x is NaN, as the scalar tail does).
  typedef float v16 __attribute__((vector_size(64)));
  v16 lo = v16{} + INFINITY, hi = v16{} - INFINITY;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    v16 v;
    __builtin_memcpy(&v, x + i, sizeof v);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  float a = INFINITY, b = -INFINITY;
  for (int l = 0; l < 16; ++l) {
    a = lo[l] < a ? lo[l] : a;
    b = hi[l] > b ? hi[l] : b;
  }
  for (; i < n; ++i) {
    a = x[i] < a ? x[i] : a;
    b = x[i] > b ? x[i] : b;
  }
  mn = a;
  mx = b;
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void span_quantize_u8(const float* x, int64_t n,
                                                                                   float scale, int32_t zp,
                                                                                   uint8_t* y) {
  quantize_span<uint8_t>(x, n, &scale, &zp, 0, y, QRange{0, 255});
}

// Min and max of a float32 array (NaNs ignored), in parallel.
void min_max(ThreadPool& pool, const float* x, int64_t n, float& mn, float& mx) {
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(pool.size(), n / kGrain));
  if (chunks == 1) return span_min_max(x, n, mn, mx);
  std::vector<float> lo(chunks, INFINITY), hi(chunks, -INFINITY);
  const int64_t per = (n + chunks - 1) / chunks;
  pool.parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t b = c * per, e = std::min(n, (c + 1) * per);
      span_min_max(x + b, e - b, lo[c], hi[c]);
    }
  });
  mn = *std::min_element(lo.begin(), lo.end());
  mx = *std::max_element(hi.begin(), hi.end());
}

}  // namespace

namespace quant {
// Quantizes float32 x (n values) to uint8 with scale/zp chosen from its range.
void dynamic_quantize(ThreadPool& pool, const float* x, int64_t n, uint8_t* y, float& scale, uint8_t& zp) {
  float mn = 0, mx = 0;
  if (n > 0) min_max(pool, x, n, mn, mx);
  dynamic_params(mn, mx, scale, zp);
  const int32_t z = zp;
  const Granularity tensor;
  for_spans(pool, tensor, n, [&](int64_t off, int64_t len, int64_t, int64_t) { span_quantize_u8(x + off, len, scale, z, y + off); });
}

}  // namespace quant

namespace {

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

}  // namespace

void register_quantize_kernels(KernelRegistry& r) {
  r.add("QuantizeLinear", quantize_linear);
  r.add("DequantizeLinear", dequantize_linear);
  r.add("DynamicQuantizeLinear", dynamic_quantize_linear);
}

}  // namespace llmc::rt
