// Helpers shared by the int8 kernel files (quantize_linear.cpp, quantized_matmul.cpp): float
// views of scale tensors, integer ranges, zero points as int32, and dynamic uint8 quantisation.
#pragma once
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/kernels/kernel_util.h"

namespace llmc::rt::quant {

inline constexpr int64_t kGrain = 16384;  // elements per parallel chunk

inline bool is_float_like(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64; }

// Float-like tensor as float32 (f32 is returned in place; others are converted into tmp).
inline const float* as_floats(const Value& v, std::vector<float>& tmp) {
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
inline void store_floats(const float* src, int64_t n, DType t, void* dst) {
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
inline Result<QRange> qrange(DType t, bool dequant) {
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
inline std::vector<int32_t> read_ints(const Value& v) {
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

// Rounds a float32 value to the nearest float16 and back (arithmetic in float16 precision).
inline float in_scale_type(float v, DType t) { return t == DType::kF16 ? half_to_float(float_to_half(v)) : v; }

// x -> uint8 with the DynamicQuantizeLinear rule (range widened to hold 0, scale (max-min)/255,
// zero point round(-min/scale)); defined in quantize_linear.cpp.
void dynamic_quantize(ThreadPool& pool, const float* x, int64_t n, uint8_t* y, float& scale, uint8_t& zp);

}  // namespace llmc::rt::quant
