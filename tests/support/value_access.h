// Reading and writing one element of a runtime Value as double, for every fixed-width dtype the
// kernels handle (float16/bfloat16 through their exact conversions). Shared by kernel tests.
#pragma once
#include <catch2/catch.hpp>
#include <cstdint>

#include "runtime/kernels/kernel_util.h"
#include "runtime/value.h"

namespace llmc::testing {

using rt::Value;

inline double get(const Value& v, int64_t i) {
  switch (v.dtype()) {
    case DType::kF32: return v.data<float>()[i];
    case DType::kF64: return v.data<double>()[i];
    case DType::kF16: return rt::half_to_float(v.data<uint16_t>()[i]);
    case DType::kBF16: return rt::bf16_to_float(v.data<uint16_t>()[i]);
    case DType::kI8: return v.data<int8_t>()[i];
    case DType::kU8: return v.data<uint8_t>()[i];
    case DType::kI16: return v.data<int16_t>()[i];
    case DType::kU16: return v.data<uint16_t>()[i];
    case DType::kI32: return v.data<int32_t>()[i];
    case DType::kU32: return v.data<uint32_t>()[i];
    case DType::kI64: return static_cast<double>(v.data<int64_t>()[i]);
    case DType::kU64: return static_cast<double>(v.data<uint64_t>()[i]);
    case DType::kBool: return v.data<bool>()[i];
    default: FAIL("unexpected dtype"); return 0;
  }
}

// Only called with values representable in v's dtype.
inline void set(Value& v, int64_t i, double x) {
  switch (v.dtype()) {
    case DType::kF32: v.mutable_data<float>()[i] = static_cast<float>(x); break;
    case DType::kF64: v.mutable_data<double>()[i] = x; break;
    case DType::kF16: v.mutable_data<uint16_t>()[i] = rt::float_to_half(static_cast<float>(x)); break;
    case DType::kBF16: v.mutable_data<uint16_t>()[i] = rt::float_to_bf16(static_cast<float>(x)); break;
    case DType::kI8: v.mutable_data<int8_t>()[i] = static_cast<int8_t>(x); break;
    case DType::kU8: v.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(x); break;
    case DType::kI16: v.mutable_data<int16_t>()[i] = static_cast<int16_t>(x); break;
    case DType::kU16: v.mutable_data<uint16_t>()[i] = static_cast<uint16_t>(x); break;
    case DType::kI32: v.mutable_data<int32_t>()[i] = static_cast<int32_t>(x); break;
    case DType::kU32: v.mutable_data<uint32_t>()[i] = static_cast<uint32_t>(x); break;
    case DType::kI64: v.mutable_data<int64_t>()[i] = static_cast<int64_t>(x); break;
    case DType::kU64: v.mutable_data<uint64_t>()[i] = static_cast<uint64_t>(x); break;
    case DType::kBool: v.mutable_data<bool>()[i] = x != 0; break;
    default: FAIL("unexpected dtype");
  }
}

}  // namespace llmc::testing
