// Helpers shared by kernel files: broadcasting, axis handling, reading small int tensors
// (shapes, axes), and dtype dispatch.
#pragma once
#include <bit>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ir/status.h"
#include "runtime/kernel.h"

namespace llmc::rt {

// Numpy-style multidirectional broadcast of shapes; error names both shapes.
Result<std::vector<int64_t>> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b);
// Element strides of `in` when viewed with shape `out` (right-aligned; 0 on broadcast dims).
std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in, const std::vector<int64_t>& out);
// Row-major strides of a shape.
std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape);

// axis in [-rank, rank) -> [0, rank); error otherwise.
Result<int> normalize_axis(int64_t axis, int rank);
// A 0-D or 1-D int32/int64 tensor as int64 values (shape inputs, axes, indices).
Result<std::vector<int64_t>> read_int_values(const Value& v, const char* what);
// Reshape's output shape for an input of shape `in` and `in_numel` elements, from the target
// `spec` (0 copies the input's dim unless allowzero, one -1 is inferred); every count is
// overflow-checked. Shared by the Reshape kernel and the grouped-query step, which checks
// that a folded Reshape is a repeat.
Result<std::vector<int64_t>> reshape_target(const std::vector<int64_t>& in, int64_t in_numel,
                                            const std::vector<int64_t>& spec, bool allowzero);
// A scalar (or 1-element) numeric tensor as double.
Result<double> read_scalar(const Value& v, const char* what);

// Calls f(T{}) with T the C++ type of `t`, for every fixed-width numeric type plus bool.
// Returns unsupported() for others (f16, bf16, strings...).
template <typename F>
Status dispatch_numeric(DType t, F&& f) {
  switch (t) {
    case DType::kF32: return f(float{});
    case DType::kF64: return f(double{});
    case DType::kI64: return f(int64_t{});
    case DType::kI32: return f(int32_t{});
    case DType::kI16: return f(int16_t{});
    case DType::kI8: return f(int8_t{});
    case DType::kU8: return f(uint8_t{});
    case DType::kU16: return f(uint16_t{});
    case DType::kU32: return f(uint32_t{});
    case DType::kU64: return f(uint64_t{});
    case DType::kBool: return f(bool{});
    default: return unsupported("dtype ", dtype_name(t), " is not supported by this kernel");
  }
}

// Same, floating types only.
template <typename F>
Status dispatch_float(DType t, F&& f) {
  switch (t) {
    case DType::kF32: return f(float{});
    case DType::kF64: return f(double{});
    default: return unsupported("dtype ", dtype_name(t), " is not supported by this kernel (float32/float64 only)");
  }
}

// Half-precision conversions (IEEE binary16 and bfloat16), exact round-to-nearest-even.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bf16_to_float(uint16_t h);
uint16_t float_to_bf16(float f);

// Vectorisable float exp, shared by Softmax and Sigmoid.
// exp for float32 arguments <= 88 (softmax passes x - max <= 0): Cephes polynomial on
// r = x - n ln2, scaled by 2^n; relative error <= 1e-7 (measured). Arguments below -87.33 (where exp leaves
// the normal range), -inf included, give 0; NaN stays NaN. The range test runs on the bit
// pattern (an integer select) because float compares block vectorisation under -ftrapping-math.
inline float exp_f32(float x) {
  constexpr float kLo = -87.33654f, kRound = 12582912.0f;  // 1.5 * 2^23
  constexpr int32_t kLoBits = std::bit_cast<int32_t>(kLo);
  constexpr int32_t kNegInfBits = std::bit_cast<int32_t>(-std::numeric_limits<float>::infinity());
  const int32_t xb = std::bit_cast<int32_t>(x);
  // Negative floats order like their int32 bits, reversed: x < kLo <=> kLoBits < xb <= kNegInfBits.
  const int32_t under = -static_cast<int32_t>((xb > kLoBits) & (xb <= kNegInfBits));
  const float xc = std::bit_cast<float>((xb & ~under) | (kLoBits & under));
  const float t = xc * 1.44269504088896341f + kRound;  // round(x / ln2) lands in the low bits
  const uint32_t n = std::bit_cast<uint32_t>(t) - std::bit_cast<uint32_t>(kRound);  // wraps for n < 0
  const float fn = t - kRound;
  const float r = (xc - fn * 0.693359375f) + fn * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = (p * r * r + r + 1.0f) * std::bit_cast<float>((n + 127u) << 23);
  return std::bit_cast<float>(std::bit_cast<int32_t>(y) & ~under);
}

}  // namespace llmc::rt
