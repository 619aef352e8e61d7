// Element types. Values equal ONNX TensorProto.DataType codes, so formats/ converts by cast
// while nothing outside formats/ sees protobuf.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace llmc {

enum class DType : int32_t {
  kUndefined = 0,
  kF32 = 1,
  kU8 = 2,
  kI8 = 3,
  kU16 = 4,
  kI16 = 5,
  kI32 = 6,
  kI64 = 7,
  kString = 8,
  kBool = 9,
  kF16 = 10,
  kF64 = 11,
  kU32 = 12,
  kU64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBF16 = 16,
  kF8E4M3FN = 17,
  kF8E4M3FNUZ = 18,
  kF8E5M2 = 19,
  kF8E5M2FNUZ = 20,
  kU4 = 21,  // packed two per byte, low nibble first
  kI4 = 22,  // packed two per byte, low nibble first
  kF4E2M1 = 23,
  kF8E8M0 = 24,
  kU2 = 25,
  kI2 = 26,
};

// Largest code we know; anything above is rejected by the reader with a clear error.
constexpr int32_t kMaxDTypeCode = 26;

// Bits per element (0 for kString / kUndefined, whose size is not a fixed bit width).
int dtype_bits(DType t);
// Bytes needed for `numel` elements, rounding packed sub-byte types up to whole bytes.
size_t dtype_storage_bytes(DType t, int64_t numel);
// Lower-case short name used in reports: "f32", "i4", "bool".
std::string dtype_name(DType t);
bool dtype_is_known(int32_t code);
bool dtype_is_float(DType t);

}  // namespace llmc
