#include "ir/checked_math.h"

namespace llmc {

std::optional<int64_t> checked_numel(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return std::nullopt;
    auto m = checked_mul<int64_t>(n, d);
    if (!m) return std::nullopt;
    n = *m;
  }
  return n;
}

std::optional<uint64_t> checked_storage_bytes(DType dtype, int64_t numel) {
  if (numel < 0) return std::nullopt;
  const int bits = dtype_bits(dtype);
  auto b = checked_mul<uint64_t>(static_cast<uint64_t>(numel), static_cast<uint64_t>(bits < 0 ? 0 : bits));
  if (!b) return std::nullopt;
  auto r = checked_add<uint64_t>(*b, 7);
  if (!r) return std::nullopt;
  return *r / 8;
}

std::optional<uint64_t> checked_shape_bytes(DType dtype, const std::vector<int64_t>& dims) {
  auto n = checked_numel(dims);
  if (!n) return std::nullopt;
  return checked_storage_bytes(dtype, *n);
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    auto m = checked_mul<uint64_t>(v, 10);
    if (!m) return std::nullopt;
    auto a = checked_add<uint64_t>(*m, static_cast<uint64_t>(c - '0'));
    if (!a) return std::nullopt;
    v = *a;
  }
  return v;
}

}  // namespace llmc
