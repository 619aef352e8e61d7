// Checked arithmetic for element counts and byte sizes. Shapes and offsets come from files
// and from tensor data, so a product or sum of them may not fit in 64 bits; every reader and
// kernel that sizes a buffer from such numbers goes through these instead of plain * and +,
// so overflow is an error to report, never a wrapped (small) size.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "ir/dtype.h"

namespace llmc {

inline std::optional<int64_t> checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
inline std::optional<int64_t> checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
inline std::optional<uint64_t> checked_mul_u64(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
inline std::optional<uint64_t> checked_add_u64(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Elements of a shape; nullopt when a dim is negative or the product overflows int64.
std::optional<int64_t> checked_numel(const std::vector<int64_t>& dims);
// Bytes `numel` elements of `dtype` take (sub-byte types packed); nullopt on overflow.
std::optional<uint64_t> checked_storage_bytes(DType dtype, int64_t numel);
// Both at once: the bytes a shape of `dtype` takes, nullopt when it cannot be represented.
std::optional<uint64_t> checked_shape_bytes(DType dtype, const std::vector<int64_t>& dims);
// A whole string of decimal digits as a number; nullopt for "", a sign, trailing text ("12abc")
// or a value past 2^64 - 1. Offsets, lengths and limits from files and the environment.
std::optional<uint64_t> parse_u64(std::string_view s);

}  // namespace llmc
