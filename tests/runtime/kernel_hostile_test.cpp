// Kernels that size their output from tensor data (Expand, Tile, Pad, Range, ConstantOfShape,
// Reshape, Gather, Trilu, Slice): overflowing or absurd sizes are a kernel error, never a
// wrapped (tiny) buffer, a trap, or an attempt to allocate exabytes.
#include <catch2/catch.hpp>

#include <limits>
#include <memory>

#include "runtime/kernels/register.h"
#include "runtime/session.h"
#include "tests/support/run_node.h"

using namespace llmc;
using llmc::testing::make_node;
using llmc::testing::make_value;
using llmc::testing::run_node;
using rt::Value;

namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

const rt::KernelRegistry& reg() { return rt::builtin_kernels(); }
Value i64s(std::vector<int64_t> v) { return make_value<int64_t>(DType::kI64, {int64_t(v.size())}, v); }
Value i64(int64_t v) { return make_value<int64_t>(DType::kI64, {}, {v}); }
Value f32s(std::vector<int64_t> shape) {
  return make_value<float>(DType::kF32, shape, std::vector<float>(static_cast<size_t>(shape_numel(shape)), 1.f));
}

// Runs `op` and expects a clean failure whose message contains `mention`.
void expect_error(const std::string& op, size_t nin, const std::vector<Value>& inputs, const std::string& mention,
                  std::vector<Attribute> attrs = {}) {
  auto r = run_node(reg(), make_node(op, nin, 1, std::move(attrs)), inputs, 18);
  REQUIRE_FALSE(r.is_ok());
  INFO(r.status().message());
  CHECK(r.status().message().find(mention) != std::string::npos);
}

}  // namespace

TEST_CASE("Expand to a shape whose size overflows is an error", "[runtime][hostile]") {
  // [2^58, 64] f32 wraps to a 0-byte buffer in unchecked arithmetic.
  expect_error("Expand", 2, {f32s({1}), i64s({int64_t{1} << 58, 64})}, "too large");
  expect_error("Expand", 2, {f32s({1}), i64s({int64_t{1} << 40, 1 << 20})}, "too large");
}

TEST_CASE("Tile with repeats that overflow is an error", "[runtime][hostile]") {
  expect_error("Tile", 2, {f32s({4}), i64s({int64_t{1} << 62})}, "too large");
  expect_error("Tile", 2, {f32s({4, 1}), i64s({int64_t{1} << 40, 1 << 20})}, "too large");
}

TEST_CASE("Pad with absurd pads is an error", "[runtime][hostile]") {
  expect_error("Pad", 2, {f32s({2}), i64s({0, int64_t{1} << 40})}, "too large");
  expect_error("Pad", 2, {f32s({2}), i64s({0, kMax})}, "too large");
  expect_error("Pad", 2, {f32s({2}), i64s({kMin, 0})}, "remove more");
  expect_error("Pad", 2, {f32s({2}), i64s({kMax, kMax})}, "too large");
}

TEST_CASE("Range with a huge or wrapping length is an error, not a trap", "[runtime][hostile]") {
  // 0 .. INT64_MIN step -1: INT64_MIN / -1 traps (SIGFPE) in plain int64 division.
  expect_error("Range", 3, {i64(0), i64(kMin), i64(-1)}, "too large");
  expect_error("Range", 3, {i64(kMin), i64(kMax), i64(1)}, "too large");
  expect_error("Range", 3, {i64(0), i64(int64_t{1} << 40), i64(1)}, "too large");
  auto f = [](float v) { return make_value<float>(DType::kF32, {}, {v}); };
  expect_error("Range", 3, {f(0.f), f(1e30f), f(1.f)}, "too large");
  auto ok = run_node(reg(), make_node("Range", 3, 1), {i64(kMax - 2), i64(kMax), i64(1)}, 18);
  REQUIRE(ok.is_ok());
  CHECK((*ok)[0].numel() == 2);
}

TEST_CASE("ConstantOfShape of an absurd shape is an error", "[runtime][hostile]") {
  expect_error("ConstantOfShape", 1, {i64s({int64_t{1} << 31, int64_t{1} << 31})}, "too large");
  expect_error("ConstantOfShape", 1, {i64s({int64_t{1} << 32, int64_t{1} << 32})}, "too large");
}

TEST_CASE("Reshape to a shape whose size wraps to the input's is an error", "[runtime][hostile]") {
  // 2^32 * 2^32 wraps to 0, the element count of the empty input.
  expect_error("Reshape", 2, {f32s({0, 3}), i64s({int64_t{1} << 32, int64_t{1} << 32})}, "cannot reshape");
  expect_error("Reshape", 2, {f32s({2, 3}), i64s({-1, int64_t{1} << 62, 8})}, "cannot reshape");
}

TEST_CASE("Gather whose output would be absurdly large is an error", "[runtime][hostile]") {
  // 2^24 bytes of data gathered 2^23 times: 2^47 bytes out.
  Value x = Value::allocate(DType::kU8, {1, int64_t{1} << 24});
  Value ind = make_value<int32_t>(DType::kI32, {int64_t{1} << 23}, std::vector<int32_t>(size_t{1} << 23, 0));
  expect_error("Gather", 2, {x, ind}, "too large");
}

TEST_CASE("Trilu with an extreme k keeps or clears everything", "[runtime][hostile]") {
  const Value x = f32s({3, 4});
  for (int64_t k : {kMax, kMin, kMax - 1, kMin + 1}) {
    for (int64_t upper : {0, 1}) {
      auto r = run_node(reg(), make_node("Trilu", 2, 1, {Attribute::make_int("upper", upper)}), {x, i64(k)}, 18);
      REQUIRE(r.is_ok());
      // upper keeps j >= i + k, lower keeps j <= i + k.
      const bool keep_all = (k > 0) != (upper != 0);
      for (int64_t i = 0; i < 12; ++i) CHECK((*r)[0].data<float>()[i] == (keep_all ? 1.f : 0.f));
    }
  }
}

TEST_CASE("Slice with extreme steps takes one element", "[runtime][hostile]") {
  const Value x = make_value<float>(DType::kF32, {5}, {0, 1, 2, 3, 4});
  auto fwd = run_node(reg(), make_node("Slice", 5, 1), {x, i64s({0}), i64s({5}), i64s({0}), i64s({kMax})}, 18);
  REQUIRE(fwd.is_ok());
  REQUIRE((*fwd)[0].shape() == std::vector<int64_t>{1});
  CHECK((*fwd)[0].data<float>()[0] == 0.f);
  auto back = run_node(reg(), make_node("Slice", 5, 1), {x, i64s({4}), i64s({kMin}), i64s({0}), i64s({kMin})}, 18);
  REQUIRE(back.is_ok());
  REQUIRE((*back)[0].shape() == std::vector<int64_t>{1});
  CHECK((*back)[0].data<float>()[0] == 4.f);
  auto big = run_node(reg(), make_node("Slice", 3, 1), {x, i64s({kMin}), i64s({kMax})}, 18);
  REQUIRE(big.is_ok());
  CHECK((*big)[0].numel() == 5);
}

TEST_CASE("the session's tensor size limit is enforced with a clear error", "[runtime][hostile]") {
  Model m;
  m.opset_imports.push_back({"", 18});
  Node n = make_node("ConstantOfShape", 1, 1);
  n.name = "fill";
  n.inputs = {"shape"};
  n.outputs = {"y"};
  m.graph.nodes.push_back(n);
  m.graph.inputs.push_back(testing::tensor_info("shape", DType::kI64, {2}));
  m.graph.outputs.push_back(testing::tensor_info("y", DType::kF32, {}));
  rt::SessionOptions o(1);
  o.limits.max_tensor_bytes = 1 << 20;
  auto s = rt::Session::create(std::make_shared<const Model>(m), o);
  REQUIRE(s.is_ok());
  auto small = (*s)->run({{"shape", i64s({256, 256})}});
  REQUIRE(small.is_ok());
  auto big = (*s)->run({{"shape", i64s({1024, 1024})}});
  REQUIRE_FALSE(big.is_ok());
  INFO(big.status().message());
  CHECK(big.status().message().find("fill") != std::string::npos);
  CHECK(big.status().message().find("4194304 bytes") != std::string::npos);
  CHECK(big.status().message().find("1048576") != std::string::npos);
}
