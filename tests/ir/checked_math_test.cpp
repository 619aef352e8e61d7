// Checked element counts and byte sizes (ir/checked_math.h): an overflowing shape is reported,
// never wrapped to a small number.
#include "ir/checked_math.h"

#include <catch2/catch.hpp>
#include <limits>

#include "ir/tensor.h"

using namespace llmc;

namespace {
constexpr int64_t kBig = int64_t{1} << 58;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
}  // namespace

TEST_CASE("checked_numel rejects overflow and negative dims", "[ir][hostile]") {
  CHECK(checked_numel({}) == 1);
  CHECK(checked_numel({3, 0, kMax}) == 0);
  CHECK(checked_numel({512, 64}) == 512 * 64);
  CHECK_FALSE(checked_numel({512, kBig, 64}).has_value());  // 2^73 wraps to 0 unchecked
  CHECK_FALSE(checked_numel({int64_t{1} << 32, int64_t{1} << 32}).has_value());
  CHECK_FALSE(checked_numel({4, -1}).has_value());
  CHECK(checked_mul(kMax, 2) == std::nullopt);
  CHECK(checked_add(kMax, 1) == std::nullopt);
}

TEST_CASE("parse_u64 takes whole decimal strings only", "[ir][hostile]") {
  CHECK(parse_u64("0") == 0u);
  CHECK(parse_u64("18446744073709551615") == ~uint64_t{0});
  CHECK_FALSE(parse_u64("18446744073709551616").has_value());
  for (const char* bad : {"", "-7", "12abc", " 1", "+3", "1e3"}) CHECK_FALSE(parse_u64(bad).has_value());
}

TEST_CASE("checked byte sizes and saturating shape_numel", "[ir][hostile]") {
  CHECK(checked_shape_bytes(DType::kF32, {2, 3}) == 24u);
  CHECK(checked_shape_bytes(DType::kI4, {3}) == 2u);
  CHECK_FALSE(checked_shape_bytes(DType::kF32, {int64_t{1} << 62}).has_value());
  CHECK_FALSE(checked_storage_bytes(DType::kF64, kMax).has_value());
  // The unchecked helpers saturate, so an overflowing shape never matches a real byte count.
  CHECK(shape_numel({512, kBig, 64}) == kMax);
  CHECK(dtype_storage_bytes(DType::kF32, kMax) == std::numeric_limits<size_t>::max());
  CHECK(shape_numel({2, 3, 4}) == 24);
}
