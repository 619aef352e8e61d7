// Data movement kernels, part 2: Tile, Pad (all modes, opset 2 / 11 / 18 forms), Trilu,
// GatherElements, against plain index-mapping references. Checks are exact.
#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <random>

#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"
#include "tests/support/run_node.h"

using namespace llmc;
using llmc::testing::make_node;
using llmc::testing::make_value;
using llmc::testing::run_node;
using llmc::testing::linear;
using llmc::testing::run1;
using llmc::testing::fails;

using rt::Value;

namespace {


Value randf(std::vector<int64_t> shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(1.f, 2.f);  // never 0, so zero-fills are visible
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& x : v) x = u(rng);
  return make_value<float>(DType::kF32, shape, v);
}

Value i64s(std::vector<int64_t> v) { return make_value<int64_t>(DType::kI64, {int64_t(v.size())}, v); }

// Checks y[o] == (map(o) >= 0 ? x[map(o)] : fill) for every element of `want_shape` (float32).
void check_map(const Value& y, const Value& x, const std::vector<int64_t>& want_shape, float fill,
               const std::function<int64_t(const std::vector<int64_t>&)>& map) {
  REQUIRE(y.shape() == want_shape);
  std::vector<int64_t> idx(want_shape.size());
  for (int64_t i = 0; i < y.numel(); ++i) {
    int64_t rem = i;
    for (int d = static_cast<int>(idx.size()) - 1; d >= 0; --d) {
      idx[d] = rem % want_shape[d];
      rem /= want_shape[d];
    }
    const int64_t src = map(idx);
    const float want = src >= 0 ? x.data<float>()[src] : fill;
    if (y.data<float>()[i] != want) FAIL("mismatch at output element " << i << ": " << y.data<float>()[i] << " vs " << want);
  }
}

// Input coordinate for output coordinate o on a dim of size n padded by (before, after);
// -1 = constant. Negative pads crop first, then the rest pads the cropped input.
int64_t pad_source(const std::string& mode, int64_t o, int64_t before, int64_t after, int64_t n) {
  const int64_t crop = before < 0 ? -before : 0;
  n -= crop + (after < 0 ? -after : 0);
  int64_t i = o - (before > 0 ? before : 0);
  if (i < 0 || i >= n) {
    if (mode == "constant") return -1;
    if (mode == "edge") {
      i = i < 0 ? 0 : n - 1;
    } else if (mode == "wrap") {
      while (i < 0) i += n;
      i %= n;
    } else if (n == 1) {
      i = 0;
    } else {
      while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;  // reflect, repeatedly
    }
  }
  return i + crop;
}

}  // namespace

TEST_CASE("Tile: repeats per dim against a modulo reference", "[runtime][data]") {
  struct Case { std::vector<int64_t> shape, reps; };
  uint32_t seed = 1;
  for (const auto& c : {Case{{17}, {3}}, Case{{3, 17}, {1, 1}}, Case{{3, 1, 5}, {2, 63, 1}}, Case{{1, 257}, {3, 2}},
                        Case{{2, 3, 5}, {2, 0, 3}}, Case{{}, {}}, Case{{1, 257}, {65, 2}}}) {
    const Value x = randf(c.shape, seed++);
    std::vector<int64_t> out_shape;
    for (size_t d = 0; d < c.shape.size(); ++d) out_shape.push_back(c.shape[d] * c.reps[d]);
    const Value y = run1(make_node("Tile", 2, 1), {x, i64s(c.reps)}, 13);
    check_map(y, x, out_shape, 0.f, [&](const std::vector<int64_t>& o) {
      std::vector<int64_t> in(o.size());
      for (size_t d = 0; d < o.size(); ++d) in[d] = o[d] % c.shape[d];
      return linear(in, c.shape);
    });
  }
  const Value x = randf({3, 5}, 1);
  CHECK(fails(make_node("Tile", 2, 1), {x, i64s({2})}, 13));
  CHECK(fails(make_node("Tile", 2, 1), {x, i64s({2, -1})}, 13));
}

TEST_CASE("Pad: constant/reflect/edge/wrap with positive and negative pads", "[runtime][data]") {
  const std::vector<int64_t> shape = {3, 17, 5};
  const Value x = randf(shape, 7);
  std::mt19937 rng(5);
  for (const std::string mode : {"constant", "reflect", "edge", "wrap"})
    for (int trial = 0; trial < 25; ++trial) {
      std::vector<int64_t> pads(6);
      for (int d = 0; d < 3; ++d) {
        const int64_t lim = mode == "constant" || mode == "wrap" || mode == "edge" ? shape[d] + 3 : shape[d] - 1;
        // Mostly growth; negative pads (crop) too, never removing the whole dim.
        pads[d] = static_cast<int64_t>(rng() % (lim + 2)) - 1;
        pads[d + 3] = static_cast<int64_t>(rng() % (lim + 2)) - 1;
        if (mode == "reflect" && trial % 2) pads[d] = 2 * shape[d] + 1;  // beyond one reflection
      }
      std::vector<int64_t> out_shape(3);
      for (int d = 0; d < 3; ++d) out_shape[d] = shape[d] + pads[d] + pads[d + 3];
      const Value cv = make_value<float>(DType::kF32, {}, {-3.5f});
      INFO(mode << " pads " << shape_str(pads));
      const Value y = run1(make_node("Pad", 3, 1, {Attribute::make_string("mode", mode)}), {x, i64s(pads), cv}, 13);
      check_map(y, x, out_shape, -3.5f, [&](const std::vector<int64_t>& o) {
        std::vector<int64_t> in(3);
        for (int d = 0; d < 3; ++d) {
          in[d] = pad_source(mode, o[d], pads[d], pads[d + 3], shape[d]);
          if (in[d] < 0) return int64_t{-1};
        }
        return linear(in, shape);
      });
    }
  // Big enough for the multi-threaded path.
  const Value big = randf({63, 257}, 8);
  const Value bp = run1(make_node("Pad", 2, 1), {big, i64s({1, 2, 3, 4})}, 11);
  check_map(bp, big, {67, 263}, 0.f, [&](const std::vector<int64_t>& o) {
    return o[0] >= 1 && o[0] < 64 && o[1] >= 2 && o[1] < 259 ? (o[0] - 1) * 257 + o[1] - 2 : -1;
  });
  // Opset 18 axes input (negative axis), default constant 0, a 1-D input of 257.
  const Value v = randf({257}, 3);
  const Value p = run1(make_node("Pad", 4, 1), {v, i64s({1, 63}), Value(), i64s({-1})}, 18);
  check_map(p, v, {321}, 0.f, [&](const std::vector<int64_t>& o) { return o[0] >= 1 && o[0] < 258 ? o[0] - 1 : -1; });
  const Value q = run1(make_node("Pad", 4, 1), {x, i64s({2, 0}), Value(), i64s({1})}, 18);
  check_map(q, x, {3, 19, 5}, 0.f, [&](const std::vector<int64_t>& o) {
    return o[1] < 2 ? -1 : linear({o[0], o[1] - 2, o[2]}, shape);
  });
  // Opset 2 attribute form with a float value.
  const Value a = run1(make_node("Pad", 1, 1, {Attribute::make_ints("pads", {0, 1, 0, 1}), Attribute::make_float("value", 2.f)}),
                       {randf({3, 1}, 4)}, 2);
  CHECK(a.shape() == std::vector<int64_t>{3, 3});
  CHECK((a.data<float>()[0] == 2.f && a.data<float>()[2] == 2.f && a.data<float>()[8] == 2.f));
  CHECK(a.data<float>()[4] != 2.f);
  // Integer data, edge mode.
  const Value xi = make_value<int32_t>(DType::kI32, {3}, {7, 8, 9});
  const Value e = run1(make_node("Pad", 2, 1, {Attribute::make_string("mode", "edge")}), {xi, i64s({2, 1})}, 11);
  CHECK(std::vector<int32_t>(e.data<int32_t>(), e.data<int32_t>() + 6) == std::vector<int32_t>{7, 7, 7, 8, 9, 9});
  // Crop then pad: wrap and reflect see the cropped input.
  const Value x4 = make_value<int32_t>(DType::kI32, {4}, {7, 8, 9, 10});
  const Value w = run1(make_node("Pad", 2, 1, {Attribute::make_string("mode", "wrap")}), {x4, i64s({1, -1})}, 19);
  CHECK(std::vector<int32_t>(w.data<int32_t>(), w.data<int32_t>() + 4) == std::vector<int32_t>{9, 7, 8, 9});
  const Value rf = run1(make_node("Pad", 2, 1, {Attribute::make_string("mode", "reflect")}), {x4, i64s({2, -2})}, 13);
  CHECK(std::vector<int32_t>(rf.data<int32_t>(), rf.data<int32_t>() + 4) == std::vector<int32_t>{7, 8, 7, 8});
  // Errors.
  CHECK(fails(make_node("Pad", 2, 1), {x, i64s({1, 1})}, 13));                     // wrong pads length
  CHECK(fails(make_node("Pad", 2, 1), {x, i64s({0, -10, 0, 0, -10, 0})}, 13));     // removes too much
  CHECK(fails(make_node("Pad", 3, 1), {x, i64s({0, 0, 0, 0, 0, 0}), make_value<double>(DType::kF64, {}, {1})}, 13));
  CHECK(fails(make_node("Pad", 2, 1, {Attribute::make_string("mode", "mirror")}), {x, i64s({0, 0, 0, 0, 0, 0})}, 13));
  CHECK(fails(make_node("Pad", 4, 1), {x, i64s({1, 1}), Value(), i64s({3})}, 18));
}

TEST_CASE("Trilu: upper and lower for every k, batched", "[runtime][data]") {
  uint32_t seed = 30;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{2, 3, 17}, {17, 3}, {1, 1}, {63, 63}, {3, 63, 257}})
    for (int upper = 0; upper <= 1; ++upper)
      for (int64_t k : {-20, -2, -1, 0, 1, 3, 20}) {
        const Value x = randf(shape, seed++);
        const Value y = run1(make_node("Trilu", 2, 1, {Attribute::make_int("upper", upper)}),
                             {x, make_value<int64_t>(DType::kI64, {}, {k})}, 14);
        check_map(y, x, shape, 0.f, [&](const std::vector<int64_t>& o) {
          const int64_t i = o[o.size() - 2], j = o.back();
          const bool keep = upper ? j - i >= k : j - i <= k;
          return keep ? linear(o, shape) : -1;
        });
      }
  // k omitted means 0; upper defaults to 1.
  const Value x = randf({3, 3}, 1);
  const Value y = run1(make_node("Trilu", 1, 1), {x}, 14);
  check_map(y, x, {3, 3}, 0.f, [&](const std::vector<int64_t>& o) { return o[1] >= o[0] ? o[0] * 3 + o[1] : -1; });
  CHECK(fails(make_node("Trilu", 1, 1), {randf({5}, 1)}, 14));
  CHECK(fails(make_node("Trilu", 2, 1), {x, i64s({1, 2})}, 14));
}

TEST_CASE("GatherElements: every axis, negative indices", "[runtime][data]") {
  const std::vector<int64_t> shape = {3, 17, 5};
  std::mt19937 rng(9);
  for (int64_t axis = -3; axis < 3; ++axis) {
    const int ax = static_cast<int>(axis < 0 ? axis + 3 : axis);
    const Value x = randf(shape, 40 + static_cast<uint32_t>(ax));
    std::vector<int64_t> ishape = {2, 17, 3};
    ishape[ax] = 4;
    std::vector<int64_t> ids(shape_numel(ishape));
    for (auto& v : ids) v = static_cast<int64_t>(rng() % (2 * shape[ax])) - shape[ax];
    const Value y = run1(make_node("GatherElements", 2, 1, {Attribute::make_int("axis", axis)}),
                         {x, make_value<int64_t>(DType::kI64, ishape, ids)}, 13);
    check_map(y, x, ishape, 0.f, [&](const std::vector<int64_t>& o) {
      auto in = o;
      const int64_t v = ids[linear(o, ishape)];
      in[ax] = v < 0 ? v + shape[ax] : v;
      return linear(in, shape);
    });
  }
  const Value x = randf({3, 4}, 1);
  CHECK(fails(make_node("GatherElements", 2, 1), {x, make_value<int64_t>(DType::kI64, {1, 4}, {0, 1, 2, 3})}, 13));
  CHECK(fails(make_node("GatherElements", 2, 1), {x, make_value<int64_t>(DType::kI64, {1, 5}, {0, 0, 0, 0, 0})}, 13));
  CHECK(fails(make_node("GatherElements", 2, 1), {x, make_value<int64_t>(DType::kI64, {4}, {0, 0, 0, 0})}, 13));
}
