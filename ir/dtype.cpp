#include "ir/dtype.h"

#include <cstdint>

namespace llmc {

int dtype_bits(DType t) {
  switch (t) {
    case DType::kF64: case DType::kI64: case DType::kU64: case DType::kComplex64: return 64;
    case DType::kComplex128: return 128;
    case DType::kF32: case DType::kI32: case DType::kU32: return 32;
    case DType::kF16: case DType::kBF16: case DType::kI16: case DType::kU16: return 16;
    case DType::kI8: case DType::kU8: case DType::kBool:
    case DType::kF8E4M3FN: case DType::kF8E4M3FNUZ: case DType::kF8E5M2:
    case DType::kF8E5M2FNUZ: case DType::kF8E8M0: return 8;
    case DType::kI4: case DType::kU4: case DType::kF4E2M1: return 4;
    case DType::kI2: case DType::kU2: return 2;
    case DType::kString: case DType::kUndefined: return 0;
  }
  return 0;
}

size_t dtype_storage_bytes(DType t, int64_t numel) {
  // Saturates like shape_numel, so an overflowing size never matches a real byte count.
  const auto bits = static_cast<size_t>(dtype_bits(t));
  size_t b = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(numel), bits, &b) || b > SIZE_MAX - 7) return SIZE_MAX;
  return (b + 7) / 8;
}

std::string dtype_name(DType t) {
  switch (t) {
    case DType::kUndefined: return "undefined";
    case DType::kF32: return "f32";
    case DType::kU8: return "u8";
    case DType::kI8: return "i8";
    case DType::kU16: return "u16";
    case DType::kI16: return "i16";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kString: return "string";
    case DType::kBool: return "bool";
    case DType::kF16: return "f16";
    case DType::kF64: return "f64";
    case DType::kU32: return "u32";
    case DType::kU64: return "u64";
    case DType::kComplex64: return "c64";
    case DType::kComplex128: return "c128";
    case DType::kBF16: return "bf16";
    case DType::kF8E4M3FN: return "f8e4m3fn";
    case DType::kF8E4M3FNUZ: return "f8e4m3fnuz";
    case DType::kF8E5M2: return "f8e5m2";
    case DType::kF8E5M2FNUZ: return "f8e5m2fnuz";
    case DType::kU4: return "u4";
    case DType::kI4: return "i4";
    case DType::kF4E2M1: return "f4e2m1";
    case DType::kF8E8M0: return "f8e8m0";
    case DType::kU2: return "u2";
    case DType::kI2: return "i2";
  }
  return "dtype(" + std::to_string(static_cast<int>(t)) + ")";
}

bool dtype_is_known(int32_t code) { return code > 0 && code <= kMaxDTypeCode; }

bool dtype_is_float(DType t) {
  switch (t) {
    case DType::kF32: case DType::kF16: case DType::kBF16: case DType::kF64: return true;
    default: return false;
  }
}

}  // namespace llmc
