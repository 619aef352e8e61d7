// Cast / CastLike (runtime/kernels/cast.cpp): every direction between the 13 supported
// dtypes on exactly representable values, plus rounding, truncation, saturation and wrap rules.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>

#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"
#include "tests/support/run_node.h"
#include "tests/support/value_access.h"

namespace llmc {
namespace {

using rt::Value;
using Shape = std::vector<int64_t>;
using testing::make_node;
using testing::make_value;
using testing::run_node;

const rt::KernelRegistry& reg() { return rt::builtin_kernels(); }

const std::vector<DType> kTypes = {DType::kF32, DType::kF64, DType::kF16, DType::kBF16, DType::kI8,
                                   DType::kU8,  DType::kI16, DType::kU16, DType::kI32, DType::kU32,
                                   DType::kI64, DType::kU64, DType::kBool};

bool is_signed_or_float(DType t) {
  return dtype_is_float(t) || t == DType::kI8 || t == DType::kI16 || t == DType::kI32 || t == DType::kI64;
}

using testing::get;
using testing::set;

Result<Value> cast(const Value& x, DType to, int64_t opset = 13) {
  const Attribute attr = Attribute::make_int("to", static_cast<int64_t>(to));
  auto r = run_node(reg(), make_node("Cast", 1, 1, {attr}), {x}, opset);
  if (!r.is_ok()) return r.status();
  return (*r)[0];
}

Value of(DType dt, const std::vector<double>& xs) {
  Value v = Value::allocate(dt, {static_cast<int64_t>(xs.size())});
  for (size_t i = 0; i < xs.size(); ++i) set(v, static_cast<int64_t>(i), xs[i]);
  return v;
}

std::vector<double> values(const Value& v) {
  std::vector<double> out;
  for (int64_t i = 0; i < v.numel(); ++i) out.push_back(get(v, i));
  return out;
}

std::vector<uint16_t> bits16(const Value& v) {
  return std::vector<uint16_t>(v.data<uint16_t>(), v.data<uint16_t>() + v.numel());
}

TEST_CASE("Cast between every pair of dtypes on representable values", "[runtime][kernels][cast]") {
  std::mt19937 rng(3);
  for (DType from : kTypes) {
    for (DType to : kTypes) {
      for (const Shape& s : {Shape{1}, Shape{17}, Shape{3, 257}, Shape{}, Shape{0}, Shape{40001}}) {
        INFO(dtype_name(from) << " -> " << dtype_name(to) << " " << shape_str(s));
        // Integers in [-100, 100] (non-negative when either side is unsigned): exact everywhere.
        const bool neg = is_signed_or_float(from) && is_signed_or_float(to) && to != DType::kBool;
        std::uniform_int_distribution<int> u(neg ? -100 : 0, from == DType::kBool ? 1 : 100);
        Value x = Value::allocate(from, s);
        for (int64_t i = 0; i < x.numel(); ++i) set(x, i, u(rng));
        for (int64_t opset : {13, 19, 21}) {
          auto r = cast(x, to, opset);
          REQUIRE(r.is_ok());
          REQUIRE(r->dtype() == to);
          REQUIRE(r->shape() == s);
          int bad = 0;
          for (int64_t i = 0; i < x.numel(); ++i) {
            const double want = to == DType::kBool ? double(get(x, i) != 0) : get(x, i);
            bad += get(*r, i) != want;
          }
          CHECK(bad == 0);
          if (from == to) CHECK(r->raw() == x.raw());  // no-op cast aliases
        }
      }
    }
  }
}

TEST_CASE("Cast float -> int truncates toward zero and saturates - int -> int wraps", "[runtime][kernels][cast]") {
  const double nan = std::nan("");
  const Value f = of(DType::kF32, {-2.7, -0.5, 0.5, 2.7, 127.9, -128.9, 300.5, -300, nan, 1e30});
  auto r = cast(f, DType::kI32);
  REQUIRE(r.is_ok());
  CHECK(values(*r) == std::vector<double>{-2, 0, 0, 2, 127, -128, 300, -300, 0, 2147483647.0});
  r = cast(f, DType::kI8);
  REQUIRE(r.is_ok());
  CHECK(values(*r) == std::vector<double>{-2, 0, 0, 2, 127, -128, 127, -128, 0, 127});
  r = cast(f, DType::kU8);
  REQUIRE(r.is_ok());
  CHECK(values(*r) == std::vector<double>{0, 0, 0, 2, 127, 0, 255, 0, 0, 255});
  r = cast(of(DType::kF64, {-1e300, 9.3e18, -9.3e18, -3.99}), DType::kI64);
  REQUIRE(r.is_ok());
  CHECK(std::vector<int64_t>(r->data<int64_t>(), r->data<int64_t>() + 4) ==
        std::vector<int64_t>{INT64_MIN, INT64_MAX, INT64_MIN, -3});

  r = cast(make_value<int32_t>(DType::kI32, {4}, {300, -1, 128, -129}), DType::kU8);
  REQUIRE(r.is_ok());
  CHECK(values(*r) == std::vector<double>{44, 255, 128, 127});
  r = cast(make_value<int32_t>(DType::kI32, {4}, {300, -1, 128, -129}), DType::kI8);
  REQUIRE(r.is_ok());
  CHECK(values(*r) == std::vector<double>{44, -1, -128, 127});
  r = cast(make_value<int64_t>(DType::kI64, {2}, {-1, INT64_MIN}), DType::kU64);
  REQUIRE(r.is_ok());
  CHECK(std::vector<uint64_t>(r->data<uint64_t>(), r->data<uint64_t>() + 2) ==
        std::vector<uint64_t>{UINT64_MAX, uint64_t{1} << 63});
  r = cast(make_value<uint64_t>(DType::kU64, {1}, {UINT64_MAX}), DType::kF32);
  REQUIRE(r.is_ok());
  CHECK(r->data<float>()[0] == 18446744073709551616.f);
  r = cast(make_value<int64_t>(DType::kI64, {2}, {(1 << 24) + 1, -((1 << 24) + 3)}), DType::kF32);
  REQUIRE(r.is_ok());
  CHECK(values(*r) == std::vector<double>{16777216, -16777220});  // round to nearest even
}

TEST_CASE("Cast to and from bool", "[runtime][kernels][cast]") {
  const Value f = of(DType::kF32, {0, -0.0, 0.1, std::nan(""), -3, 1e-40});
  auto r = cast(f, DType::kBool);
  REQUIRE(r.is_ok());
  CHECK(values(*r) == std::vector<double>{0, 0, 1, 1, 1, 1});
  r = cast(of(DType::kF16, {0, -0.0, 0.5}), DType::kBool);
  REQUIRE(r.is_ok());
  CHECK(values(*r) == std::vector<double>{0, 0, 1});
  r = cast(make_value<int64_t>(DType::kI64, {3}, {0, 256, -1}), DType::kBool);
  REQUIRE(r.is_ok());
  CHECK(values(*r) == std::vector<double>{0, 1, 1});
  r = cast(make_value<bool>(DType::kBool, {2}, {true, false}), DType::kF16);
  REQUIRE(r.is_ok());
  CHECK(bits16(*r) == std::vector<uint16_t>{0x3C00, 0});
}

TEST_CASE("Cast to float16 / bfloat16 rounds to nearest even, once", "[runtime][kernels][cast]") {
  const double u11 = std::ldexp(1.0, -11), u8 = std::ldexp(1.0, -8), tiny = std::ldexp(1.0, -40);
  // float32 -> f16: ties to even, overflow to inf, smallest subnormal, NaN kept.
  auto r = cast(of(DType::kF32, {1 + u11, 1 + 3 * u11, 65504, 65520, std::ldexp(1.0, -24), -1 - 3 * u11}),
                DType::kF16);
  REQUIRE(r.is_ok());
  CHECK(bits16(*r) == std::vector<uint16_t>{0x3C00, 0x3C02, 0x7BFF, 0x7C00, 0x0001, 0xBC02});
  r = cast(of(DType::kF32, {std::nan("")}), DType::kF16);
  REQUIRE(r.is_ok());
  CHECK(std::isnan(get(*r, 0)));
  // float64 -> f16 without double rounding: 1 + 2^-11 + 2^-40 is above the tie, so rounds up
  // (rounding to float32 first would land on the tie and go down to 1.0).
  r = cast(of(DType::kF64, {1 + u11 + tiny, 1 + u11, -(1 + u11 + tiny), 1e6, 1e-10}), DType::kF16);
  REQUIRE(r.is_ok());
  CHECK(bits16(*r) == std::vector<uint16_t>{0x3C01, 0x3C00, 0xBC01, 0x7C00, 0x0000});
  r = cast(of(DType::kF64, {1 + u8 + tiny, 1 + u8, 1 + 3 * u8}), DType::kBF16);
  REQUIRE(r.is_ok());
  CHECK(bits16(*r) == std::vector<uint16_t>{0x3F81, 0x3F80, 0x3F82});
  r = cast(of(DType::kF32, {1 + u8, 1 + 3 * u8, -2}), DType::kBF16);
  REQUIRE(r.is_ok());
  CHECK(bits16(*r) == std::vector<uint16_t>{0x3F80, 0x3F82, 0xC000});
  // int -> f16 rounds the integer value once.
  r = cast(make_value<int32_t>(DType::kI32, {3}, {2049, 2051, 100000}), DType::kF16);
  REQUIRE(r.is_ok());
  CHECK(values(*r) == std::vector<double>{2048, 2052, std::numeric_limits<double>::infinity()});
}

TEST_CASE("CastLike takes the dtype of its second input", "[runtime][kernels][cast]") {
  const Value x = of(DType::kF32, {1.5, -2.25, 3});
  for (DType to : {DType::kF16, DType::kI64, DType::kF64, DType::kF32}) {
    auto r = run_node(reg(), make_node("CastLike", 2, 1), {x, Value::allocate(to, {0})}, 15);
    REQUIRE(r.is_ok());
    auto c = cast(x, to);
    REQUIRE(c.is_ok());
    REQUIRE((*r)[0].dtype() == to);
    CHECK(values((*r)[0]) == values(*c));
  }
}

TEST_CASE("Cast errors", "[runtime][kernels][cast]") {
  const Value x = of(DType::kF32, {1});
  CHECK(!run_node(reg(), make_node("Cast", 1, 1), {x}, 13).is_ok());  // no 'to'
  CHECK(!cast(x, static_cast<DType>(99)).is_ok());
  CHECK(!cast(x, static_cast<DType>(-1)).is_ok());
  CHECK(!cast(x, DType::kString).is_ok());
  CHECK(!cast(x, DType::kF8E4M3FN, 19).is_ok());
  CHECK(!cast(Value::allocate(DType::kU4, {2}), DType::kF32, 21).is_ok());
  CHECK(!run_node(reg(), make_node("CastLike", 2, 1), {x, Value()}, 15).is_ok());
}

}  // namespace
}  // namespace llmc
