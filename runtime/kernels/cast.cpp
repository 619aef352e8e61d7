// Cast (attribute `to`) and CastLike (target dtype of input 1) between f32, f64, f16, bf16,
// i8..i64, u8..u64 and bool.
//   float -> float: round to nearest even (double -> f16/bf16 rounds once, via round-to-odd);
//   float -> int: truncate toward zero, saturating at the target's range, NaN -> 0;
//   int -> int: two's complement wrap (numpy astype);  anything -> bool: x != 0.
// The `saturate` attribute (opset 19) only concerns float8 types, which are not supported.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {
namespace {

struct f16_t { uint16_t bits; };
struct bf16_t { uint16_t bits; };

template <typename F>
Status dispatch_cast_type(DType t, F&& f) {
  switch (t) {
    case DType::kF32: return f(float{});
    case DType::kF64: return f(double{});
    case DType::kF16: return f(f16_t{});
    case DType::kBF16: return f(bf16_t{});
    case DType::kI8: return f(int8_t{});
    case DType::kI16: return f(int16_t{});
    case DType::kI32: return f(int32_t{});
    case DType::kI64: return f(int64_t{});
    case DType::kU8: return f(uint8_t{});
    case DType::kU16: return f(uint16_t{});
    case DType::kU32: return f(uint32_t{});
    case DType::kU64: return f(uint64_t{});
    case DType::kBool: return f(bool{});
    default: return unsupported("Cast does not support dtype ", dtype_name(t));
  }
}

// The float nearest to d toward zero with its last bit set when d is not exact (round to
// odd): rounding that float to f16 / bf16 then equals rounding d directly.
float round_to_odd_float(double d) {
  float f = static_cast<float>(d);
  if (std::isfinite(f) && static_cast<double>(f) != d) {
    if (std::fabs(static_cast<double>(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    bits |= 1;
    std::memcpy(&f, &bits, 4);
  }
  return f;
}

// Storage -> a wide type that holds every value exactly: double, int64 or uint64.
template <typename S>
auto widen(S x) {
  if constexpr (std::is_same_v<S, f16_t>) return static_cast<double>(half_to_float(x.bits));
  else if constexpr (std::is_same_v<S, bf16_t>) return static_cast<double>(bf16_to_float(x.bits));
  else if constexpr (std::is_floating_point_v<S>) return static_cast<double>(x);
  else if constexpr (std::is_unsigned_v<S> && !std::is_same_v<S, bool>) return static_cast<uint64_t>(x);
  else return static_cast<int64_t>(x);
}

template <typename D, typename W>
D narrow(W w) {
  constexpr bool kWideFloat = std::is_floating_point_v<W>;
  if constexpr (std::is_same_v<D, f16_t>) {
    return {float_to_half(round_to_odd_float(static_cast<double>(w)))};
  } else if constexpr (std::is_same_v<D, bf16_t>) {
    return {float_to_bf16(round_to_odd_float(static_cast<double>(w)))};
  } else if constexpr (std::is_same_v<D, bool>) {
    return w != 0;
  } else if constexpr (std::is_floating_point_v<D>) {
    return static_cast<D>(w);
  } else if constexpr (kWideFloat) {
    if (w != w) return 0;
    if (w <= static_cast<double>(std::numeric_limits<D>::lowest())) return std::numeric_limits<D>::lowest();
    if (w >= static_cast<double>(std::numeric_limits<D>::max())) return std::numeric_limits<D>::max();
    return static_cast<D>(w);  // truncates toward zero
  } else {
    return static_cast<D>(w);
  }
}

template <typename S, typename D>
D convert(S x) {
  if constexpr (std::is_same_v<S, float> && std::is_same_v<D, f16_t>) return {float_to_half(x)};
  else if constexpr (std::is_same_v<S, float> && std::is_same_v<D, bf16_t>) return {float_to_bf16(x)};
  else if constexpr (std::is_same_v<S, f16_t> && std::is_same_v<D, float>) return half_to_float(x.bits);
  else if constexpr (std::is_same_v<S, bf16_t> && std::is_same_v<D, float>) return bf16_to_float(x.bits);
  else return narrow<D>(widen(x));
}

Status cast_to(KernelContext& ctx, const Value& x, DType to) {
  if (to == x.dtype()) {
    ctx.set_output(0, x);  // no-op cast: share the bytes
    return Status::ok();
  }
  // The float16 boundary casts of fp16 models: vectorised F16C conversions (same rounding).
  if ((x.dtype() == DType::kF32 && to == DType::kF16) || (x.dtype() == DType::kF16 && to == DType::kF32)) {
    Value& y = ctx.output(0, to, x.shape());
    const bool down = to == DType::kF16;
    ctx.pool().parallel_for(x.numel(), 16384, [&](int64_t b, int64_t e) {
      if (down) floats_to_halfs(x.data<float>() + b, y.mutable_data<uint16_t>() + b, e - b);
      else halfs_to_floats(x.data<uint16_t>() + b, y.mutable_data<float>() + b, e - b);
    });
    return Status::ok();
  }
  return dispatch_cast_type(x.dtype(), [&](auto s) -> Status {
    return dispatch_cast_type(to, [&](auto d) -> Status {
      using S = decltype(s);
      using D = decltype(d);
      const S* src = x.data<S>();
      D* dst = ctx.output(0, to, x.shape()).template mutable_data<D>();
      ctx.pool().parallel_for(x.numel(), 16384, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) dst[i] = convert<S, D>(src[i]);
      });
      return Status::ok();
    });
  });
}

Status cast_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(1));
  if (!ctx.has_attr("to")) return invalid_input("attribute 'to' is required");
  const int64_t to = ctx.attr_int("to", 0);
  if (to < 0 || to > kMaxDTypeCode || !dtype_is_known(static_cast<int32_t>(to)))
    return invalid_input("attribute 'to' = ", to, " is not a known dtype");
  return cast_to(ctx, ctx.in(0), static_cast<DType>(to));
}

Status cast_like_kernel(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  return cast_to(ctx, ctx.in(0), ctx.in(1).dtype());
}

}  // namespace

void register_cast_kernels(KernelRegistry& r) {
  r.add("Cast", cast_kernel);
  r.add("CastLike", cast_like_kernel);
}

}  // namespace llmc::rt
