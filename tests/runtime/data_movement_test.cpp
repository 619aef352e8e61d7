// Data movement kernels (runtime/kernels/data_movement.cpp): Transpose, Concat, Split, Slice,
// Gather against plain index-mapping references. The ops copy bytes, so checks are exact and
// cover 1-, 2-, 4-, 8- and 16-byte element types. Tile, Pad, Trilu, GatherElements are in
// data_movement_pad_test.cpp.
#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <limits>
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

const rt::KernelRegistry& reg() { return rt::builtin_kernels(); }

// Random bytes, so every element is distinguishable whatever the dtype.
Value rand_value(DType t, std::vector<int64_t> shape, uint32_t seed) {
  Value v = Value::allocate(t, std::move(shape));
  std::mt19937 rng(seed);
  auto* p = static_cast<uint8_t*>(v.mutable_raw());
  for (size_t i = 0; i < v.nbytes(); ++i) p[i] = static_cast<uint8_t>(rng());
  return v;
}

Value i64s(std::vector<int64_t> v) { return make_value<int64_t>(DType::kI64, {int64_t(v.size())}, v); }

// Checks out[o] == in[map(o multi-index)] byte for byte, for every element of `want_shape`.
void check_map(const Value& out, const Value& in, const std::vector<int64_t>& want_shape,
               const std::function<int64_t(const std::vector<int64_t>&)>& map) {
  REQUIRE(out.dtype() == in.dtype());
  REQUIRE(out.shape() == want_shape);
  const size_t esz = dtype_bits(in.dtype()) / 8;
  std::vector<int64_t> idx(want_shape.size(), 0);
  for (int64_t i = 0; i < out.numel(); ++i) {
    int64_t rem = i;
    for (int d = static_cast<int>(idx.size()) - 1; d >= 0; --d) {
      idx[d] = rem % want_shape[d];
      rem /= want_shape[d];
    }
    const int64_t src = map(idx);
    if (std::memcmp(static_cast<const uint8_t*>(out.raw()) + i * esz,
                    static_cast<const uint8_t*>(in.raw()) + src * esz, esz) != 0)
      FAIL("mismatch at output element " << i << " (input element " << src << ")");
  }
}

void check_transpose(DType t, const std::vector<int64_t>& shape, std::vector<int64_t> perm, uint32_t seed) {
  const Value x = rand_value(t, shape, seed);
  std::vector<Attribute> attrs;
  if (!perm.empty()) {
    attrs.push_back(Attribute::make_ints("perm", perm));
  } else {
    for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) perm.push_back(i);
  }
  std::vector<int64_t> out_shape;
  for (int64_t p : perm) out_shape.push_back(shape[p]);
  INFO("transpose " << shape_str(shape) << " perm " << shape_str(perm) << " " << dtype_name(t));
  const Value y = run1(make_node("Transpose", 1, 1, attrs), {x}, 13);
  check_map(y, x, out_shape, [&](const std::vector<int64_t>& o) {
    std::vector<int64_t> in(shape.size());
    for (size_t i = 0; i < perm.size(); ++i) in[perm[i]] = o[i];
    return linear(in, shape);
  });
}

}  // namespace

TEST_CASE("Transpose: every permutation up to rank 4, odd sizes, all element sizes", "[runtime][data]") {
  uint32_t seed = 1;
  const std::vector<std::vector<int64_t>> shapes = {{17}, {3, 17}, {1, 63}, {3, 1, 17}, {2, 3, 17, 5}, {1, 3, 1, 7}};
  for (const auto& shape : shapes) {
    std::vector<int64_t> perm(shape.size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
    do {
      check_transpose(DType::kF32, shape, perm, seed++);
    } while (std::next_permutation(perm.begin(), perm.end()));
  }
  for (DType t : {DType::kU8, DType::kF16, DType::kI64, DType::kComplex128}) {
    check_transpose(t, {3, 17, 5}, {2, 0, 1}, seed++);
    check_transpose(t, {2, 3, 17, 5}, {0, 2, 1, 3}, seed++);
  }
  // Big enough for the multi-threaded and tiled paths: attention's [0,2,1,3], a 2-D matrix,
  // the default (reversed) perm, rank 5.
  check_transpose(DType::kF32, {2, 63, 17, 33}, {0, 2, 1, 3}, seed++);
  check_transpose(DType::kF32, {257, 63}, {1, 0}, seed++);
  check_transpose(DType::kF32, {257, 65}, {}, seed++);
  check_transpose(DType::kI8, {3, 257, 2, 63}, {0, 3, 2, 1}, seed++);
  check_transpose(DType::kF32, {2, 3, 1, 17, 5}, {4, 2, 0, 3, 1}, seed++);
  check_transpose(DType::kF32, {}, {}, seed++);
  check_transpose(DType::kF32, {3, 0, 17}, {2, 1, 0}, seed++);
  // Only size-1 dims move: aliases the input.
  const Value x = rand_value(DType::kF32, {4, 1, 6}, 3);
  CHECK(run1(make_node("Transpose", 1, 1, {Attribute::make_ints("perm", {1, 0, 2})}), {x}, 13).raw() == x.raw());
  CHECK(fails(make_node("Transpose", 1, 1, {Attribute::make_ints("perm", {0, 0, 1})}), {x}, 13));
  CHECK(fails(make_node("Transpose", 1, 1, {Attribute::make_ints("perm", {0, 1})}), {x}, 13));
  CHECK(fails(make_node("Transpose", 1, 1, {Attribute::make_ints("perm", {0, 1, 3})}), {x}, 13));
}

TEST_CASE("Concat: every axis (negative too), uneven and empty parts", "[runtime][data]") {
  uint32_t seed = 100;
  for (int64_t axis = -3; axis < 3; ++axis) {
    const int ax = static_cast<int>(axis < 0 ? axis + 3 : axis);
    std::vector<Value> ins;
    std::vector<int64_t> starts;
    int64_t total = 0;
    for (int64_t n : {1, 3, 0, 17}) {
      std::vector<int64_t> s = {3, 5, 7};
      s[ax] = n;
      ins.push_back(rand_value(DType::kF32, s, seed++));
      starts.push_back(total);
      total += n;
    }
    std::vector<int64_t> out_shape = {3, 5, 7};
    out_shape[ax] = total;
    const Value y = run1(make_node("Concat", ins.size(), 1, {Attribute::make_int("axis", axis)}), ins, 13);
    // Check each part against its own input.
    REQUIRE(y.shape() == out_shape);
    for (size_t k = 0; k < ins.size(); ++k) {
      const auto& s = ins[k].shape();
      for (int64_t i = 0; i < ins[k].numel(); ++i) {
        std::vector<int64_t> idx(3);
        int64_t rem = i;
        for (int d = 2; d >= 0; --d) { idx[d] = rem % s[d]; rem /= s[d]; }
        idx[ax] += starts[k];
        if (std::memcmp(y.data<float>() + linear(idx, out_shape), ins[k].data<float>() + i, 4) != 0)
          FAIL("concat part " << k);
      }
    }
  }
  // Large, 8-byte elements: [2, 257, 63] ++ [2, 1, 63] on axis 1 (KV-cache append).
  const Value a = rand_value(DType::kI64, {2, 257, 63}, 7), b = rand_value(DType::kI64, {2, 1, 63}, 8);
  const Value y = run1(make_node("Concat", 2, 1, {Attribute::make_int("axis", 1)}), {a, b}, 13);
  REQUIRE(y.shape() == std::vector<int64_t>{2, 258, 63});
  for (int64_t o = 0; o < 2; ++o) {
    CHECK(std::memcmp(y.data<int64_t>() + o * 258 * 63, a.data<int64_t>() + o * 257 * 63, 257 * 63 * 8) == 0);
    CHECK(std::memcmp(y.data<int64_t>() + (o * 258 + 257) * 63, b.data<int64_t>() + o * 63, 63 * 8) == 0);
  }
  // Errors: mismatched dims, dtypes, ranks, bad axis.
  const Value p = rand_value(DType::kF32, {3, 5}, 1);
  CHECK(fails(make_node("Concat", 2, 1, {Attribute::make_int("axis", 0)}), {p, rand_value(DType::kF32, {3, 4}, 2)}, 13));
  CHECK(fails(make_node("Concat", 2, 1, {Attribute::make_int("axis", 0)}), {p, rand_value(DType::kI32, {3, 5}, 2)}, 13));
  CHECK(fails(make_node("Concat", 2, 1, {Attribute::make_int("axis", 0)}), {p, rand_value(DType::kF32, {15}, 2)}, 13));
  CHECK(fails(make_node("Concat", 2, 1, {Attribute::make_int("axis", 2)}), {p, p}, 13));
  CHECK(fails(make_node("Concat", 2, 1, {Attribute::make_int("axis", -3)}), {p, p}, 13));
}

TEST_CASE("Split: attribute (11), input (13), num_outputs (18) forms", "[runtime][data]") {
  const Value x = rand_value(DType::kF32, {3, 257, 5}, 5);
  auto check_parts = [&](const std::vector<Value>& outs, int axis, const std::vector<int64_t>& sizes) {
    REQUIRE(outs.size() == sizes.size());
    int64_t start = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
      std::vector<int64_t> s = x.shape();
      s[axis] = sizes[k];
      check_map(outs[k], x, s, [&](const std::vector<int64_t>& o) {
        auto in = o;
        in[axis] += start;
        return linear(in, x.shape());
      });
      start += sizes[k];
    }
  };
  auto run = [&](const Node& n, const std::vector<Value>& ins, int64_t opset) {
    auto r = run_node(reg(), n, ins, opset);
    INFO(r.status().message());
    REQUIRE(r.is_ok());
    return *r;
  };
  const std::vector<int64_t> sizes = {1, 3, 17, 63, 173};
  check_parts(run(make_node("Split", 1, 5, {Attribute::make_int("axis", 1), Attribute::make_ints("split", sizes)}), {x}, 11),
              1, sizes);
  check_parts(run(make_node("Split", 2, 5, {Attribute::make_int("axis", -2)}), {x, i64s(sizes)}, 13), 1, sizes);
  check_parts(run(make_node("Split", 2, 3, {Attribute::make_int("axis", 1)}), {x, i64s({0, 257, 0})}, 18), 1, {0, 257, 0});
  check_parts(run(make_node("Split", 1, 3), {x}, 13), 0, {1, 1, 1});  // equal parts, default axis
  check_parts(run(make_node("Split", 1, 5, {Attribute::make_int("axis", 2)}), {x}, 11), 2, {1, 1, 1, 1, 1});
  // Opset 18 num_outputs: ceil-sized chunks, the last smaller.
  check_parts(run(make_node("Split", 1, 4, {Attribute::make_int("axis", 1), Attribute::make_int("num_outputs", 4)}), {x}, 18),
              1, {65, 65, 65, 62});
  check_parts(run(make_node("Split", 1, 2, {Attribute::make_int("axis", -1), Attribute::make_int("num_outputs", 2)}), {x}, 18),
              2, {3, 2});
  // Errors: uneven without num_outputs before 18, bad sums, wrong counts, bad axis.
  CHECK(fails(make_node("Split", 1, 2, {Attribute::make_int("axis", 1)}), {x}, 13));
  CHECK(fails(make_node("Split", 2, 2, {Attribute::make_int("axis", 1)}), {x, i64s({1, 3})}, 13));
  CHECK(fails(make_node("Split", 2, 2, {Attribute::make_int("axis", 1)}), {x, i64s({258, -1})}, 13));
  CHECK(fails(make_node("Split", 2, 3, {Attribute::make_int("axis", 1)}), {x, i64s({1, 256})}, 13));
  CHECK(fails(make_node("Split", 1, 3, {Attribute::make_int("num_outputs", 2)}), {x}, 18));
  CHECK(fails(make_node("Split", 1, 3, {Attribute::make_int("axis", 3)}), {x}, 13));
}

TEST_CASE("Slice: random starts/ends/steps with the spec's clamping, INT64 extremes", "[runtime][data]") {
  std::mt19937 rng(42);
  const int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
  auto pick = [&](int64_t dim) -> int64_t {
    switch (rng() % 6) {
      case 0: return kMax;
      case 1: return kMin;
      default: return static_cast<int64_t>(rng() % (2 * dim + 5)) - dim - 2;  // in and out of range
    }
  };
  for (int trial = 0; trial < 300; ++trial) {
    // The last trials are big enough for the multi-threaded path.
    const std::vector<int64_t> shape = trial < 280 ? std::vector<int64_t>{3, 17, 63} : std::vector<int64_t>{257, 63, 5};
    const DType t = trial % 3 == 0 ? DType::kI64 : trial % 3 == 1 ? DType::kF32 : DType::kU8;
    const Value x = rand_value(t, shape, trial);
    std::vector<int64_t> axes, starts, ends, steps;
    for (int d = 0; d < 3; ++d) {
      if (rng() % 3 == 0) continue;
      axes.push_back(rng() % 2 ? d : d - 3);
      starts.push_back(pick(shape[d]));
      ends.push_back(pick(shape[d]));
      const int64_t st = static_cast<int64_t>(rng() % 4) + 1;
      steps.push_back(rng() % 3 == 0 ? -st : st);
    }
    // Reference: the spec's clamping (negative values count from the end; starts clamp to
    // [0, n] or [0, n-1] for negative steps, ends to [0, n] or [-1, n-1]), then count by stepping.
    std::vector<int64_t> s0(3, 0), step(3, 1), out_shape = shape;
    for (size_t i = 0; i < axes.size(); ++i) {
      const int ax = static_cast<int>(axes[i] < 0 ? axes[i] + 3 : axes[i]);
      const int64_t n = shape[ax], k = steps[i];
      auto fix = [&](int64_t v, bool is_start) {
        if (v < 0) v += n;  // no overflow: v >= INT64_MIN, n small
        const int64_t lo = k < 0 && !is_start ? -1 : 0, hi = k < 0 ? n - 1 : n;
        return v < lo ? lo : v > hi ? hi : v;
      };
      const int64_t a = fix(starts[i], true), b = fix(ends[i], false);
      int64_t cnt = 0;
      for (int64_t j = a; k > 0 ? j < b : j > b; j += k) ++cnt;
      s0[ax] = a;
      step[ax] = k;
      out_shape[ax] = cnt;
    }
    INFO("starts " << shape_str(starts) << " ends " << shape_str(ends) << " axes " << shape_str(axes) << " steps "
                   << shape_str(steps));
    const Value y = run1(make_node("Slice", 5, 1), {x, i64s(starts), i64s(ends), i64s(axes), i64s(steps)}, 13);
    check_map(y, x, out_shape, [&](const std::vector<int64_t>& o) {
      std::vector<int64_t> in(3);
      for (int d = 0; d < 3; ++d) in[d] = s0[d] + o[d] * step[d];
      return linear(in, shape);
    });
  }
  const Value x = rand_value(DType::kF32, {3, 17}, 9);
  // Default axes and steps (inputs omitted), int32 inputs, and the opset 9 attribute form.
  auto i32s = [](std::vector<int32_t> v) { return make_value<int32_t>(DType::kI32, {int64_t(v.size())}, v); };
  const Value a = run1(make_node("Slice", 3, 1), {x, i32s({1, -5}), i32s({3, 1000})}, 13);
  check_map(a, x, {2, 5}, [&](const std::vector<int64_t>& o) { return (1 + o[0]) * 17 + 12 + o[1]; });
  const Value b = run1(make_node("Slice", 5, 1), {x, i64s({2}), i64s({5}), Value(), Value()}, 13);
  check_map(b, x, {1, 17}, [&](const std::vector<int64_t>& o) { return (2 + o[0]) * 17 + o[1]; });
  const Value c = run1(make_node("Slice", 1, 1, {Attribute::make_ints("starts", {-1}), Attribute::make_ints("ends", {kMax}),
                                                   Attribute::make_ints("axes", {1})}), {x}, 9);
  check_map(c, x, {3, 1}, [&](const std::vector<int64_t>& o) { return o[0] * 17 + 16; });
  const Value whole = run1(make_node("Slice", 3, 1), {x, i64s({0}), i64s({kMax})}, 13);
  CHECK(whole.raw() == x.raw());
  // Errors: step 0, repeated axis, bad axis, length mismatch.
  CHECK(fails(make_node("Slice", 5, 1), {x, i64s({0}), i64s({2}), i64s({0}), i64s({0})}, 13));
  CHECK(fails(make_node("Slice", 4, 1), {x, i64s({0, 0}), i64s({2, 2}), i64s({1, -1})}, 13));
  CHECK(fails(make_node("Slice", 4, 1), {x, i64s({0}), i64s({2}), i64s({2})}, 13));
  CHECK(fails(make_node("Slice", 3, 1), {x, i64s({0, 1}), i64s({2})}, 13));
}

TEST_CASE("Gather: axes, negative and int32 indices, embedding rows", "[runtime][data]") {
  std::mt19937 rng(3);
  // Embedding lookup: [V, D] table, [B, S] ids.
  for (DType it : {DType::kI64, DType::kI32}) {
    const Value table = rand_value(DType::kF32, {257, 63}, 11);
    std::vector<int64_t> ids(17 * 63);
    for (auto& v : ids) v = static_cast<int64_t>(rng() % 514) - 257;  // negative ones count from the end
    Value idx = it == DType::kI64 ? make_value<int64_t>(it, {17, 63}, ids)
                                  : make_value<int32_t>(it, {17, 63}, std::vector<int32_t>(ids.begin(), ids.end()));
    const Value y = run1(make_node("Gather", 2, 1), {table, idx}, 13);
    check_map(y, table, {17, 63, 63}, [&](const std::vector<int64_t>& o) {
      const int64_t id = ids[o[0] * 63 + o[1]];
      return (id < 0 ? id + 257 : id) * 63 + o[2];
    });
  }
  // Every axis of a 3-D tensor (negative too), 1-D and scalar indices, several dtypes.
  const std::vector<int64_t> shape = {3, 17, 5};
  uint32_t seed = 20;
  for (DType t : {DType::kF32, DType::kU8, DType::kF16, DType::kF64})
    for (int64_t axis = -3; axis < 3; ++axis) {
      const int ax = static_cast<int>(axis < 0 ? axis + 3 : axis);
      const Value x = rand_value(t, shape, seed++);
      std::vector<int64_t> ids = {0, shape[ax] - 1, -1, 1 % shape[ax]};
      const Value y = run1(make_node("Gather", 2, 1, {Attribute::make_int("axis", axis)}), {x, i64s(ids)}, 13);
      std::vector<int64_t> out_shape = shape;
      out_shape[ax] = 4;
      check_map(y, x, out_shape, [&](const std::vector<int64_t>& o) {
        auto in = o;
        in[ax] = ids[o[ax]] < 0 ? ids[o[ax]] + shape[ax] : ids[o[ax]];
        return linear(in, shape);
      });
      const Value s = run1(make_node("Gather", 2, 1, {Attribute::make_int("axis", axis)}),
                           {x, make_value<int64_t>(DType::kI64, {}, {-2})}, 11);
      std::vector<int64_t> s_shape = shape;
      s_shape.erase(s_shape.begin() + ax);
      check_map(s, x, s_shape, [&](const std::vector<int64_t>& o) {
        auto in = o;
        in.insert(in.begin() + ax, shape[ax] - 2);
        return linear(in, shape);
      });
    }
  const Value x = rand_value(DType::kF32, shape, 1);
  CHECK(fails(make_node("Gather", 2, 1), {x, i64s({3})}, 13));    // out of range
  CHECK(fails(make_node("Gather", 2, 1), {x, i64s({-4})}, 13));
  CHECK(fails(make_node("Gather", 2, 1, {Attribute::make_int("axis", 3)}), {x, i64s({0})}, 13));
  CHECK(fails(make_node("Gather", 2, 1), {x, rand_value(DType::kF32, {2}, 1)}, 13));
}
