// Storage types and dtype dispatch shared by the elementwise kernel files: float16/bfloat16
// stored as 16-bit patterns and computed in float (Num<T>), and dispatch over dtype categories.
#pragma once
#include <cstdint>
#include <type_traits>

#include "runtime/kernels/kernel_util.h"

namespace llmc::rt::elementwise {

struct f16_t { uint16_t bits; };
struct bf16_t { uint16_t bits; };

// Num<T>::C is the type arithmetic happens in; ld/st convert storage <-> compute.
template <typename T> struct Num {
  using C = T;
  static C ld(T x) { return x; }
  template <typename V> static T st(V v) { return static_cast<T>(v); }
};
template <> struct Num<f16_t> {
  using C = float;
  static float ld(f16_t x) { return half_to_float(x.bits); }
  template <typename V> static f16_t st(V v) { return {float_to_half(static_cast<float>(v))}; }
};
template <> struct Num<bf16_t> {
  using C = float;
  static float ld(bf16_t x) { return bf16_to_float(x.bits); }
  template <typename V> static bf16_t st(V v) { return {float_to_bf16(static_cast<float>(v))}; }
};

enum : unsigned { kFloat = 1, kSigned = 2, kUnsigned = 4, kBoolT = 8 };
constexpr unsigned kInt = kSigned | kUnsigned, kNumeric = kFloat | kInt, kAll = kNumeric | kBoolT;

// Calls f(T{}) for the storage type T of `t` when its category is in Mask.
template <unsigned M, typename F>
Status dispatch(DType t, F&& f) {
  switch (t) {
    case DType::kF32: if constexpr (M & kFloat) return f(float{}); break;
    case DType::kF64: if constexpr (M & kFloat) return f(double{}); break;
    case DType::kF16: if constexpr (M & kFloat) return f(f16_t{}); break;
    case DType::kBF16: if constexpr (M & kFloat) return f(bf16_t{}); break;
    case DType::kI8: if constexpr (M & kSigned) return f(int8_t{}); break;
    case DType::kI16: if constexpr (M & kSigned) return f(int16_t{}); break;
    case DType::kI32: if constexpr (M & kSigned) return f(int32_t{}); break;
    case DType::kI64: if constexpr (M & kSigned) return f(int64_t{}); break;
    case DType::kU8: if constexpr (M & kUnsigned) return f(uint8_t{}); break;
    case DType::kU16: if constexpr (M & kUnsigned) return f(uint16_t{}); break;
    case DType::kU32: if constexpr (M & kUnsigned) return f(uint32_t{}); break;
    case DType::kU64: if constexpr (M & kUnsigned) return f(uint64_t{}); break;
    case DType::kBool: if constexpr (M & kBoolT) return f(bool{}); break;
    default: break;
  }
  return unsupported("dtype ", dtype_name(t), " is not supported by this op");
}

}  // namespace llmc::rt::elementwise
