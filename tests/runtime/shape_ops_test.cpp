// Shape kernels (runtime/kernels/shape_ops.cpp) against plain references: Reshape, Squeeze,
// Unsqueeze, Flatten, Shape, Size, ConstantOfShape, Constant, Range, Expand. All results are
// exact (these ops copy or count), so comparisons are exact unless stated.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"
#include "tests/support/run_node.h"

using namespace llmc;
using llmc::testing::make_node;
using llmc::testing::make_value;
using llmc::testing::run_node;
using llmc::testing::run1;
using llmc::testing::fails;

using rt::Value;

namespace {

const rt::KernelRegistry& reg() { return rt::builtin_kernels(); }

Value randf(std::vector<int64_t> shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& x : v) x = u(rng);
  return make_value<float>(DType::kF32, shape, v);
}

Value i64s(std::vector<int64_t> v) { return make_value<int64_t>(DType::kI64, {int64_t(v.size())}, v); }

template <typename T>
std::vector<T> vals(const Value& v) {
  return std::vector<T>(v.data<T>(), v.data<T>() + v.numel());
}

}  // namespace

TEST_CASE("Reshape: 0 copies, -1 infers, allowzero, aliasing", "[runtime][shape]") {
  const Value x = randf({3, 17, 2}, 1);
  auto reshape = [&](std::vector<int64_t> spec, int64_t opset, std::vector<Attribute> attrs = {}) {
    return run_node(reg(), make_node("Reshape", 2, 1, attrs), {x, i64s(spec)}, opset);
  };
  struct Case { std::vector<int64_t> spec, want; };
  for (const auto& c : {Case{{0, -1}, {3, 34}}, Case{{-1}, {102}}, Case{{2, 0, 3}, {2, 17, 3}},
                        Case{{1, 3, 1, 34}, {1, 3, 1, 34}}, Case{{0, 0, -1, 1}, {3, 17, 2, 1}}}) {
    auto r = reshape(c.spec, 14);
    REQUIRE(r.is_ok());
    CHECK((*r)[0].shape() == c.want);
    CHECK((*r)[0].raw() == x.raw());  // aliases the input
  }
  // allowzero=1: 0 is a real zero dim (only valid for an empty input).
  const Value empty = make_value<float>(DType::kF32, {0, 3}, {});
  auto z = run_node(reg(), make_node("Reshape", 2, 1, {Attribute::make_int("allowzero", 1)}),
                    {empty, i64s({3, 0})}, 14);
  REQUIRE(z.is_ok());
  CHECK((*z)[0].shape() == std::vector<int64_t>{3, 0});
  CHECK(!reshape({0, 34}, 14, {Attribute::make_int("allowzero", 1)}).is_ok());
  // int32 shape input and a non-float dtype.
  const Value xi = make_value<int8_t>(DType::kI8, {4, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  const Value y = run1(make_node("Reshape", 2, 1), {xi, make_value<int32_t>(DType::kI32, {2}, {3, -1})}, 13);
  CHECK(y.shape() == std::vector<int64_t>{3, 4});
  CHECK(vals<int8_t>(y)[11] == 12);
  // Errors.
  CHECK(!reshape({-1, -1}, 14).is_ok());
  CHECK(!reshape({5, -1}, 14).is_ok());
  CHECK(!reshape({100}, 14).is_ok());
  CHECK(!reshape({0, 0, 0, 0}, 14).is_ok());  // 0 beyond the input rank
  CHECK(!reshape({-2, 51}, 14).is_ok());
}

TEST_CASE("Squeeze and Unsqueeze: attribute (opset 11) and input (opset 13) forms", "[runtime][shape]") {
  const Value x = randf({1, 17, 1, 3}, 2);
  // Squeeze, attribute form.
  CHECK(run1(make_node("Squeeze", 1, 1, {Attribute::make_ints("axes", {0, -2})}), {x}, 11).shape() ==
        std::vector<int64_t>{17, 3});
  // Input form; no axes squeezes every 1.
  CHECK(run1(make_node("Squeeze", 2, 1), {x, i64s({2})}, 13).shape() == std::vector<int64_t>{1, 17, 3});
  CHECK(run1(make_node("Squeeze", 1, 1), {x}, 13).shape() == std::vector<int64_t>{17, 3});
  const Value sq = run1(make_node("Squeeze", 2, 1), {x, Value()}, 13);
  CHECK(sq.shape() == std::vector<int64_t>{17, 3});
  CHECK(sq.raw() == x.raw());
  CHECK(fails(make_node("Squeeze", 2, 1), {x, i64s({1})}, 13));  // dim 17 is not 1
  CHECK(fails(make_node("Squeeze", 2, 1), {x, i64s({4})}, 13));  // bad axis
  CHECK(fails(make_node("Squeeze", 1, 1, {Attribute::make_ints("axes", {-5})}), {x}, 11));

  const Value y = randf({3, 63}, 3);
  CHECK(run1(make_node("Unsqueeze", 1, 1, {Attribute::make_ints("axes", {0, 3})}), {y}, 11).shape() ==
        std::vector<int64_t>{1, 3, 63, 1});
  CHECK(run1(make_node("Unsqueeze", 2, 1), {y, i64s({-1})}, 13).shape() == std::vector<int64_t>{3, 63, 1});
  CHECK(run1(make_node("Unsqueeze", 2, 1), {y, i64s({4, 0, 2})}, 13).shape() ==
        std::vector<int64_t>{1, 3, 1, 63, 1});
  const Value s = run1(make_node("Unsqueeze", 2, 1), {make_value<float>(DType::kF32, {}, {2.5f}), i64s({0})}, 13);
  CHECK(s.shape() == std::vector<int64_t>{1});
  CHECK(vals<float>(s)[0] == 2.5f);
  CHECK(fails(make_node("Unsqueeze", 2, 1), {y, i64s({1, 1})}, 13));  // repeated
  CHECK(fails(make_node("Unsqueeze", 2, 1), {y, i64s({3})}, 13));     // out of range for rank 3
  CHECK(fails(make_node("Unsqueeze", 1, 1), {y}, 13));                // axes missing
  CHECK(fails(make_node("Unsqueeze", 1, 1), {y}, 11));
}

TEST_CASE("Flatten: every axis including negative ones", "[runtime][shape]") {
  const Value x = randf({3, 1, 17, 2}, 4);
  const std::vector<std::vector<int64_t>> want = {{1, 102}, {3, 34}, {3, 34}, {51, 2}, {102, 1}};
  for (int64_t axis = -4; axis <= 4; ++axis) {
    const Value y = run1(make_node("Flatten", 1, 1, {Attribute::make_int("axis", axis)}), {x}, 13);
    CHECK(y.shape() == want[axis < 0 ? axis + 4 : axis]);
    CHECK(y.raw() == x.raw());
  }
  CHECK(run1(make_node("Flatten", 1, 1), {x}, 11).shape() == std::vector<int64_t>{3, 34});
  CHECK(fails(make_node("Flatten", 1, 1, {Attribute::make_int("axis", 5)}), {x}, 13));
  CHECK(fails(make_node("Flatten", 1, 1, {Attribute::make_int("axis", -5)}), {x}, 13));
}

TEST_CASE("Shape (start/end from opset 15) and Size", "[runtime][shape]") {
  const std::vector<int64_t> dims = {3, 1, 17, 63, 257};
  const Value x = make_value<uint8_t>(DType::kU8, dims, std::vector<uint8_t>(shape_numel(dims)));
  for (int64_t start = -7; start <= 7; ++start)
    for (int64_t end = -7; end <= 7; ++end) {
      // Python-slice reference.
      auto norm = [](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + 5 : v, 0, 5); };
      std::vector<int64_t> want;
      for (int64_t i = norm(start); i < norm(end); ++i) want.push_back(dims[i]);
      const Value s = run1(make_node("Shape", 1, 1, {Attribute::make_int("start", start), Attribute::make_int("end", end)}),
                           {x}, 15);
      CHECK(s.dtype() == DType::kI64);
      CHECK(vals<int64_t>(s) == want);
    }
  CHECK(vals<int64_t>(run1(make_node("Shape", 1, 1, {Attribute::make_int("start", 2)}), {x}, 13)) == dims);
  const Value sz = run1(make_node("Size", 1, 1), {x}, 13);
  CHECK(sz.shape().empty());
  CHECK(vals<int64_t>(sz)[0] == shape_numel(dims));
  CHECK(vals<int64_t>(run1(make_node("Shape", 1, 1), {make_value<float>(DType::kF32, {}, {1.f})}, 15)).empty());
}

TEST_CASE("ConstantOfShape and Constant", "[runtime][shape]") {
  const Value z = run1(make_node("ConstantOfShape", 1, 1), {i64s({3, 17})}, 9);
  CHECK(z.dtype() == DType::kF32);
  CHECK(z.shape() == std::vector<int64_t>{3, 17});
  for (float v : vals<float>(z)) CHECK(v == 0.f);
  const Attribute val = Attribute::make_tensor("value", Tensor::from_vector<int64_t>("v", DType::kI64, {1}, {-7}));
  const Value c = run1(make_node("ConstantOfShape", 1, 1, {val}), {i64s({257, 1, 3})}, 20);
  CHECK(c.dtype() == DType::kI64);
  CHECK(c.numel() == 771);
  for (int64_t v : vals<int64_t>(c)) CHECK(v == -7);
  CHECK(run1(make_node("ConstantOfShape", 1, 1, {val}), {i64s({0})}, 20).numel() == 0);
  CHECK(run1(make_node("ConstantOfShape", 1, 1, {val}), {i64s({})}, 20).shape().empty());
  CHECK(fails(make_node("ConstantOfShape", 1, 1), {i64s({3, -1})}, 20));
  const Attribute two = Attribute::make_tensor("value", Tensor::from_vector<float>("v", DType::kF32, {2}, {1, 2}));
  CHECK(fails(make_node("ConstantOfShape", 1, 1, {two}), {i64s({3})}, 20));

  const Value t = run1(make_node("Constant", 0, 1, {Attribute::make_tensor("value", Tensor::from_vector<int32_t>("w", DType::kI32, {2, 2}, {1, 2, 3, 4}))}), {}, 13);
  CHECK(t.dtype() == DType::kI32);
  CHECK(vals<int32_t>(t) == std::vector<int32_t>{1, 2, 3, 4});
  const Value f = run1(make_node("Constant", 0, 1, {Attribute::make_float("value_float", 1.5f)}), {}, 13);
  CHECK((f.dtype() == DType::kF32 && f.shape().empty() && vals<float>(f)[0] == 1.5f));
  const Value fs = run1(make_node("Constant", 0, 1, {Attribute::make_floats("value_floats", {1, 2, 3})}), {}, 13);
  CHECK(fs.shape() == std::vector<int64_t>{3});
  CHECK(vals<float>(fs) == std::vector<float>{1, 2, 3});
  const Value i = run1(make_node("Constant", 0, 1, {Attribute::make_int("value_int", -3)}), {}, 13);
  CHECK((i.dtype() == DType::kI64 && i.shape().empty() && vals<int64_t>(i)[0] == -3));
  const Value is = run1(make_node("Constant", 0, 1, {Attribute::make_ints("value_ints", {4, 5})}), {}, 13);
  CHECK(vals<int64_t>(is) == std::vector<int64_t>{4, 5});
  CHECK(fails(make_node("Constant", 0, 1), {}, 13));
  CHECK(fails(make_node("Constant", 0, 1, {Attribute::make_string("value_string", "x")}), {}, 13));
}

TEST_CASE("Range: float, int32, int64 counts and values", "[runtime][shape]") {
  const auto node = make_node("Range", 3, 1);
  for (int64_t n : {1, 3, 17, 63, 257}) {
    // float: start 0.5, delta 0.25 -> limit chosen so ceil gives n.
    const float start = 0.5f, delta = 0.25f, limit = start + delta * (n - 0.5f);
    auto sc = [](float v) { return make_value<float>(DType::kF32, {}, {v}); };
    const Value f = run1(node, {sc(start), sc(limit), sc(delta)}, 11);
    REQUIRE(f.numel() == n);
    for (int64_t i = 0; i < n; ++i) CHECK(std::fabs(vals<float>(f)[i] - (0.5 + 0.25 * i)) <= 1e-6);
    // int32 negative delta: from 10 down by 3.
    auto si = [](int32_t v) { return make_value<int32_t>(DType::kI32, {}, {v}); };
    const Value r = run1(node, {si(10), si(static_cast<int32_t>(10 - 3 * n + 1)), si(-3)}, 11);
    REQUIRE(r.numel() == n);
    for (int64_t i = 0; i < n; ++i) CHECK(vals<int32_t>(r)[i] == 10 - 3 * i);
    // int64 exact fit (limit excluded).
    auto sl = [](int64_t v) { return make_value<int64_t>(DType::kI64, {}, {v}); };
    const Value l = run1(node, {sl(-5), sl(-5 + 2 * n), sl(2)}, 11);
    REQUIRE(l.numel() == n);
    CHECK(vals<int64_t>(l).back() == -5 + 2 * (n - 1));
  }
  auto sl = [](int64_t v) { return make_value<int64_t>(DType::kI64, {}, {v}); };
  CHECK(run1(node, {sl(5), sl(1), sl(2)}, 11).numel() == 0);  // empty, not negative
  const Value d = run1(node, {make_value<double>(DType::kF64, {}, {1.0}), make_value<double>(DType::kF64, {}, {2.0}),
                              make_value<double>(DType::kF64, {}, {0.3})}, 11);
  CHECK(d.numel() == 4);
  CHECK(fails(node, {sl(0), sl(5), sl(0)}, 11));  // delta 0
  CHECK(fails(node, {sl(0), make_value<int32_t>(DType::kI32, {}, {5}), sl(1)}, 11));
  CHECK(fails(node, {i64s({0, 1}), sl(5), sl(1)}, 11));
}

TEST_CASE("Expand: bidirectional broadcast against a reference", "[runtime][shape]") {
  struct Case { std::vector<int64_t> in, shape, want; };
  const std::vector<Case> cases = {
      {{3, 1}, {3, 17}, {3, 17}},          {{1, 257}, {257, 1}, {257, 257}},    {{17}, {3, 1, 1}, {3, 1, 17}},
      {{3, 1, 17}, {1, 63, 1}, {3, 63, 17}}, {{1}, {257}, {257}},             {{3, 17}, {1}, {3, 17}},
      {{1, 3, 1, 1}, {2, 1, 17, 63}, {2, 3, 17, 63}}, {{}, {3, 17}, {3, 17}}, {{2, 1, 3}, {2, 0, 3}, {2, 0, 3}}};
  uint32_t seed = 10;
  for (const auto& c : cases) {
    const Value x = randf(c.in, seed++);
    const Value y = run1(make_node("Expand", 2, 1), {x, i64s(c.shape)}, 13);
    REQUIRE(y.shape() == c.want);
    const auto st = rt::broadcast_strides(c.in, c.want);
    for (int64_t i = 0; i < y.numel(); ++i) {
      int64_t rem = i, src = 0;
      for (int d = static_cast<int>(c.want.size()) - 1; d >= 0; --d) {
        src += (rem % c.want[d]) * st[d];
        rem /= c.want[d];
      }
      if (vals<float>(y)[i] != x.data<float>()[src]) FAIL("Expand mismatch at " << i << " for " << shape_str(c.in));
    }
  }
  // 2-byte and 8-byte element types.
  const Value h = make_value<uint16_t>(DType::kF16, {3, 1}, {1, 2, 3});
  CHECK(vals<uint16_t>(run1(make_node("Expand", 2, 1), {h, i64s({2, 3, 2})}, 13)) ==
        std::vector<uint16_t>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
  const Value l = make_value<int64_t>(DType::kI64, {1, 2}, {-1, 7});
  CHECK(vals<int64_t>(run1(make_node("Expand", 2, 1), {l, i64s({3, 1})}, 13)) ==
        std::vector<int64_t>{-1, 7, -1, 7, -1, 7});
  CHECK(fails(make_node("Expand", 2, 1), {randf({3, 17}, 1), i64s({3, 16})}, 13));
  CHECK(fails(make_node("Expand", 2, 1), {randf({3}, 1), i64s({2, -1})}, 13));
}
