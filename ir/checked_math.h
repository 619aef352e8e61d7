// Checked arithmetic for element counts and byte sizes. Shapes and offsets come from files
// and from tensor data, so a product or sum of them may not fit in 64 bits; every reader and
// kernel that sizes a buffer from such numbers goes through these instead of plain * and +,
// so overflow is an error to report, never a wrapped (small) size.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ir/dtype.h"

namespace llmc {

// a * b and a + b in T (int64_t for element counts, uint64_t for byte sizes); nullopt when the
// exact result does not fit. The second operand converts to T, so checked_mul(n, 2) works.
template <typename T>
std::optional<T> checked_mul(T a, std::type_identity_t<T> b) {
  T r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
template <typename T>
std::optional<T> checked_add(T a, std::type_identity_t<T> b) {
  T r;
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
