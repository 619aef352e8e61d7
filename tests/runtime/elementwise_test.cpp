// Broadcasting elementwise kernels (runtime/kernels/elementwise_binary.cpp) against plain
// float64 / exact-integer references with an independent broadcasting index computation.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
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
using testing::run_node;

const rt::KernelRegistry& reg() { return rt::builtin_kernels(); }

using testing::get;
using testing::set;

// Uniform values in [lo, hi]; rounded to integers for integer dtypes or when `integral`.
Value random_value(DType dt, const Shape& shape, std::mt19937& rng, double lo, double hi, bool integral = false) {
  Value v = Value::allocate(dt, shape);
  std::uniform_real_distribution<double> u(lo, hi);
  const bool round = integral || !dtype_is_float(dt);
  for (int64_t i = 0; i < v.numel(); ++i) set(v, i, round ? std::round(u(rng)) : u(rng));
  return v;
}

Shape ref_shape(const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    const size_t ia = a.size() - 1 - i, ib = b.size() - 1 - i;  // wrap to huge when absent
    const int64_t da = i < a.size() ? a[ia] : 1, db = i < b.size() ? b[ib] : 1;
    out[out.size() - 1 - i] = da == 1 ? db : da;
  }
  return out;
}

// Flat index into `in` of the output element `flat` (in broadcast to `out`).
int64_t bcast_index(int64_t flat, const Shape& out, const Shape& in) {
  int64_t idx = 0, mul = 1;
  for (int d = static_cast<int>(out.size()) - 1, k = static_cast<int>(in.size()) - 1; d >= 0; --d, --k) {
    const int64_t coord = flat % out[d];
    flat /= out[d];
    if (k >= 0) {
      if (in[k] != 1) idx += coord * mul;
      mul *= in[k];
    }
  }
  return idx;
}

// Odd sizes, scalars, last-axis / middle / outer-product broadcasts, and tensors big enough
// to be split across threads mid-row.
const std::vector<std::pair<Shape, Shape>> kShapePairs = {
    {{1}, {1}},           {{3}, {3}},         {{17}, {17}},           {{63}, {63}},
    {{257}, {257}},       {{4, 257}, {4, 257}}, {{3, 17}, {}},         {{}, {3, 17}},
    {{3, 17}, {1}},       {{5, 63}, {63}},    {{63}, {5, 63}},        {{2, 3, 17}, {3, 1}},
    {{1, 257}, {63, 1}},  {{2, 1, 17}, {1, 3, 1}}, {{2, 3, 4, 5}, {3, 1, 5}}, {{}, {}},
    {{3, 20001}, {20001}}, {{40000}, {}},     {{17, 1, 129}, {1, 63, 1}}, {{0, 3}, {3}},
};

using Ref = std::function<double(double, double)>;

struct BinaryCase {
  std::string op;
  DType dtype;
  Ref ref;
  double rtol = 0, atol = 0;  // 0, 0: exact
  double lo = -10, hi = 10, blo = -10, bhi = 10;
  bool integral = false;
  DType out = DType::kUndefined;
  std::vector<Attribute> attrs = {};
  DType btype = DType::kUndefined;
};

void check_binary(const BinaryCase& c) {
  std::mt19937 rng(1234);
  const DType out_dt = c.out == DType::kUndefined ? c.dtype : c.out;
  const DType b_dt = c.btype == DType::kUndefined ? c.dtype : c.btype;
  for (const auto& [as, bs] : kShapePairs) {
    if (c.op == "PRelu" && ref_shape(as, bs) != as) continue;  // slope broadcasts one way only
    if (c.op == "SwiGLU" && as != bs) continue;                   // no broadcasting at all
    INFO(c.op << " " << dtype_name(c.dtype) << " " << shape_str(as) << " op " << shape_str(bs));
    const Value a = random_value(c.dtype, as, rng, c.lo, c.hi, c.integral);
    const Value b = random_value(b_dt, bs, rng, c.blo, c.bhi, c.integral);
    auto r = run_node(reg(), make_node(c.op, 2, 1, c.attrs), {a, b}, 17);
    REQUIRE(r.is_ok());
    const Value& o = (*r)[0];
    const Shape os = ref_shape(as, bs);
    REQUIRE(o.shape() == os);
    REQUIRE(o.dtype() == out_dt);
    int bad = 0;
    for (int64_t i = 0; i < o.numel() && bad < 5; ++i) {
      const double x = get(a, bcast_index(i, os, as)), y = get(b, bcast_index(i, os, bs));
      const double want = c.ref(x, y), got = get(o, i);
      const bool ok = (std::isnan(want) && std::isnan(got)) ||
                      std::fabs(got - want) <= c.atol + c.rtol * std::fabs(want);
      if (!ok) {
        ++bad;
        FAIL_CHECK("element " << i << ": " << x << " op " << y << " = " << got << ", want " << want);
      }
    }
  }
}

double trunc_div(double a, double b) { return b == 0 ? 0 : std::trunc(a / b); }
double py_mod(double a, double b) {
  if (b == 0) return 0;
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

TEST_CASE("arithmetic ops broadcast and match float64 references", "[runtime][kernels][binary]") {
  const auto add = [](double a, double b) { return a + b; };
  const auto sub = [](double a, double b) { return a - b; };
  const auto mul = [](double a, double b) { return a * b; };
  const auto div = [](double a, double b) { return a / b; };
  for (DType dt : {DType::kF32, DType::kF64, DType::kF16}) {
    const double tol = dt == DType::kF32 ? 1e-6 : dt == DType::kF64 ? 1e-14 : 1e-3;
    check_binary({"Add", dt, add, tol, 1e-30});
    check_binary({"Sub", dt, sub, tol, 1e-30});
    check_binary({"Mul", dt, mul, tol, 1e-30});
    check_binary({"Div", dt, div, tol, 1e-30, -10, 10, 0.5, 10});
  }
  for (DType dt : {DType::kI32, DType::kI64, DType::kI8, DType::kU8}) {
    const double lo = dt == DType::kU8 ? 0 : -10;
    check_binary({"Add", dt, add, 0, 0, lo, 10, lo, 10});
    check_binary({"Mul", dt, mul, 0, 0, lo, 10, lo, 10});
    check_binary({"Sub", dt, sub, 0, 0, lo + 10, 20, lo, 10});
    check_binary({"Div", dt, trunc_div, 0, 0, lo, 100, lo, 10});  // truncates; x / 0 -> 0
  }
}

TEST_CASE("Pow: float, integer and mixed base / exponent types", "[runtime][kernels][binary]") {
  const auto pw = [](double a, double b) { return std::pow(a, b); };
  check_binary({"Pow", DType::kF32, pw, 1e-5, 1e-30, 0.1, 3, -2.5, 2.5});
  check_binary({"Pow", DType::kF64, pw, 1e-13, 1e-300, 0.1, 3, -2.5, 2.5});
  check_binary({"Pow", DType::kF16, pw, 2e-3, 1e-6, 0.1, 3, -2.5, 2.5});
  // float32 base, int64 exponent (test_pow_types_float32_int64); negative bases allowed.
  check_binary({"Pow", DType::kF32, pw, 1e-6, 1e-30, -3, 3, -3, 3, false, DType::kUndefined, {}, DType::kI64});
  // int base: integer exponent exact; float exponent computed in double then truncated.
  check_binary({"Pow", DType::kI64, pw, 0, 0, -5, 5, 0, 6});
  check_binary({"Pow", DType::kI32, pw, 0, 0, -5, 5, 0, 6, false, DType::kUndefined, {}, DType::kI64});
  check_binary({"Pow", DType::kI32, [](double a, double b) { return std::trunc(std::pow(a, b)); }, 0, 0, 1, 5,
                0.5, 3, false, DType::kUndefined, {}, DType::kF32});
  SECTION("scalar exponent 2 (the x*x fast path) and negative integer exponents") {
    const Value x = testing::make_value<float>(DType::kF32, {4}, {-1.5f, 0.f, 3.f, 1e20f});
    auto r = run_node(reg(), make_node("Pow", 2, 1), {x, testing::make_value<float>(DType::kF32, {}, {2.f})}, 15);
    REQUIRE(r.is_ok());
    CHECK((*r)[0].data<float>()[0] == 2.25f);
    CHECK((*r)[0].data<float>()[2] == 9.f);
    CHECK(std::isinf((*r)[0].data<float>()[3]));
    // Exponent 3 (GPT-2's gelu_new): x * x * x in float, as ONNX Runtime computes it.
    r = run_node(reg(), make_node("Pow", 2, 1), {x, testing::make_value<float>(DType::kF32, {}, {3.f})}, 15);
    REQUIRE(r.is_ok());
    for (int k = 0; k < 4; ++k) {
      const float v = x.data<float>()[k];
      CHECK((*r)[0].data<float>()[k] == v * v * v);
    }
    const Value i = testing::make_value<int64_t>(DType::kI64, {4}, {2, 1, -1, -1});
    const Value e = testing::make_value<int64_t>(DType::kI64, {4}, {-1, -3, -3, -2});
    r = run_node(reg(), make_node("Pow", 2, 1), {i, e}, 15);
    REQUIRE(r.is_ok());
    const int64_t* p = (*r)[0].data<int64_t>();
    CHECK(std::vector<int64_t>(p, p + 4) == std::vector<int64_t>{0, 1, -1, 1});
  }
}

TEST_CASE("Mod: integer (Python sign) and fmod semantics", "[runtime][kernels][binary]") {
  const auto cmod = [](double a, double b) { return b == 0 ? 0 : std::fmod(a, b); };
  for (DType dt : {DType::kI64, DType::kI32, DType::kI8}) {
    check_binary({"Mod", dt, py_mod, 0, 0, -50, 50, -9, 9});
    check_binary({"Mod", dt, cmod, 0, 0, -50, 50, -9, 9, false, DType::kUndefined, {Attribute::make_int("fmod", 1)}});
  }
  for (DType dt : {DType::kF32, DType::kF64})
    check_binary({"Mod", dt, cmod, 0, 0, -50, 50, -9, 9, false, DType::kUndefined, {Attribute::make_int("fmod", 1)}});
}

TEST_CASE("comparisons, logical ops, PRelu, SwiGLU", "[runtime][kernels][binary]") {
  const std::vector<std::pair<std::string, Ref>> cmps = {
      {"Equal", [](double a, double b) { return double(a == b); }},
      {"Less", [](double a, double b) { return double(a < b); }},
      {"Greater", [](double a, double b) { return double(a > b); }},
      {"LessOrEqual", [](double a, double b) { return double(a <= b); }},
      {"GreaterOrEqual", [](double a, double b) { return double(a >= b); }}};
  for (const auto& [op, ref] : cmps)
    for (DType dt : {DType::kF32, DType::kF64, DType::kF16, DType::kI32, DType::kI64, DType::kU8})
      check_binary({op, dt, ref, 0, 0, 0, 3, 0, 3, true, DType::kBool});  // small ints: many ties
  check_binary({"Equal", DType::kBool, [](double a, double b) { return double(a == b); }, 0, 0, 0, 1, 0, 1});
  check_binary({"And", DType::kBool, [](double a, double b) { return double(a && b); }, 0, 0, 0, 1, 0, 1});
  check_binary({"Or", DType::kBool, [](double a, double b) { return double(a || b); }, 0, 0, 0, 1, 0, 1});
  check_binary({"Xor", DType::kBool, [](double a, double b) { return double(a != b); }, 0, 0, 0, 1, 0, 1});
  check_binary({"PRelu", DType::kF32, [](double x, double s) { return x < 0 ? x * s : x; }, 1e-6, 1e-30});
  const auto swiglu = [](double alpha) {
    return [alpha](double a, double b) { return a / (1 + std::exp(-alpha * a)) * b; };
  };
  for (DType dt : {DType::kF32, DType::kF64, DType::kF16}) {
    const double tol = dt == DType::kF32 ? 1e-5 : dt == DType::kF64 ? 1e-12 : 3e-3;
    const double atol = dt == DType::kF16 ? 1e-7 : 1e-30;  // f16 underflows below 6e-8
    check_binary({"SwiGLU", dt, swiglu(1.0), tol, atol, -30, 30});
    check_binary({"SwiGLU", dt, swiglu(1.702f), tol, atol, -30, 30, -10, 10, false, DType::kUndefined,
                  {Attribute::make_float("alpha", 1.702f)}});
  }
}

TEST_CASE("Where broadcasts condition, X and Y", "[runtime][kernels][binary]") {
  const std::vector<std::array<Shape, 3>> shapes = {
      {Shape{2, 1, 17}, Shape{3, 17}, Shape{1}}, {Shape{257}, Shape{257}, Shape{257}},
      {Shape{63, 1}, Shape{1, 5}, Shape{63, 5}}, {Shape{3, 20001}, Shape{20001}, Shape{}},
      {Shape{}, Shape{3}, Shape{2, 1}}};
  std::mt19937 rng(7);
  for (DType dt : {DType::kF32, DType::kI64, DType::kF16, DType::kU8, DType::kBool}) {
    for (const auto& s : shapes) {
      INFO(dtype_name(dt) << " " << shape_str(s[0]) << shape_str(s[1]) << shape_str(s[2]));
      const Value c = random_value(DType::kBool, s[0], rng, 0, 1);
      const Value x = random_value(dt, s[1], rng, 0, 200), y = random_value(dt, s[2], rng, 0, 200);
      auto r = run_node(reg(), make_node("Where", 3, 1), {c, x, y}, 16);
      REQUIRE(r.is_ok());
      const Value& o = (*r)[0];
      const Shape os = ref_shape(ref_shape(s[0], s[1]), s[2]);
      REQUIRE(o.shape() == os);
      REQUIRE(o.dtype() == dt);
      int bad = 0;
      for (int64_t i = 0; i < o.numel(); ++i) {
        const bool cond = get(c, bcast_index(i, os, s[0])) != 0;
        const double want = cond ? get(x, bcast_index(i, os, s[1])) : get(y, bcast_index(i, os, s[2]));
        bad += get(o, i) != want;
      }
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("variadic Min / Max / Sum / Mean", "[runtime][kernels][binary]") {
  const std::vector<Shape> shapes = {{3, 1, 17}, {4, 1}, {17}, {1}};
  std::mt19937 rng(99);
  struct Op { std::string name; std::function<double(const std::vector<double>&)> ref; };
  const std::vector<Op> ops = {
      {"Min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }},
      {"Max", [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }},
      {"Sum", [](const std::vector<double>& v) { double s = 0; for (double x : v) s += x; return s; }},
      {"Mean", [](const std::vector<double>& v) { double s = 0; for (double x : v) s += x; return s / v.size(); }}};
  for (const auto& op : ops) {
    for (DType dt : {DType::kF32, DType::kF64, DType::kF16, DType::kI32}) {
      if (dt == DType::kI32 && op.name == "Mean") continue;
      for (size_t n = 1; n <= shapes.size(); ++n) {
        INFO(op.name << " " << dtype_name(dt) << " with " << n << " inputs");
        std::vector<Value> ins;
        Shape os;
        for (size_t k = 0; k < n; ++k) {
          ins.push_back(random_value(dt, shapes[k], rng, -100, 100, true));  // exact sums
          os = ref_shape(os, shapes[k]);
        }
        auto r = run_node(reg(), make_node(op.name, n, 1), ins, 13);
        REQUIRE(r.is_ok());
        const Value& o = (*r)[0];
        REQUIRE(o.shape() == os);
        if (n == 1) CHECK(o.raw() == ins[0].raw());  // aliases its only input
        const double tol = dt == DType::kF16 ? 2e-3 : dt == DType::kF32 ? 1e-6 : 1e-13;
        int bad = 0;
        for (int64_t i = 0; i < o.numel(); ++i) {
          std::vector<double> v;
          for (size_t k = 0; k < n; ++k) v.push_back(get(ins[k], bcast_index(i, os, shapes[k])));
          const double want = op.ref(v);
          bad += !(std::fabs(get(o, i) - want) <= tol * std::fabs(want));
        }
        CHECK(bad == 0);
      }
    }
  }
  SECTION("Min / Max propagate NaN") {
    const Value a = testing::make_value<float>(DType::kF32, {2}, {NAN, 1.f});
    const Value b = testing::make_value<float>(DType::kF32, {2}, {0.f, NAN});
    for (const char* op : {"Min", "Max"}) {
      auto r = run_node(reg(), make_node(op, 2, 1), {a, b}, 13);
      REQUIRE(r.is_ok());
      CHECK(std::isnan((*r)[0].data<float>()[0]));
      CHECK(std::isnan((*r)[0].data<float>()[1]));
    }
  }
}

TEST_CASE("binary kernel errors", "[runtime][kernels][binary]") {
  const Value f3 = Value::allocate(DType::kF32, {3}), f4 = Value::allocate(DType::kF32, {2, 4});
  const Value i3 = Value::allocate(DType::kI32, {3}), b3 = Value::allocate(DType::kBool, {3});
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Less", "Max", "Sum"}) {
    INFO(op);
    auto r = run_node(reg(), make_node(op, 2, 1), {f3, f4}, 17);
    CHECK(!r.is_ok());
    if (!r.is_ok()) CHECK(r.status().message().find("[3]") != std::string::npos);
  }
  CHECK(!run_node(reg(), make_node("Add", 2, 1), {f3, i3}, 17).is_ok());        // dtype mismatch
  CHECK(!run_node(reg(), make_node("Add", 2, 1), {b3, b3}, 17).is_ok());        // bool arithmetic
  CHECK(!run_node(reg(), make_node("And", 2, 1), {f3, f3}, 17).is_ok());        // And needs bool
  CHECK(!run_node(reg(), make_node("Mean", 2, 1), {i3, i3}, 17).is_ok());       // Mean is float-only
  CHECK(!run_node(reg(), make_node("Where", 3, 1), {f3, f3, f3}, 17).is_ok());  // condition not bool
  CHECK(!run_node(reg(), make_node("Where", 3, 1), {b3, f3, f4}, 17).is_ok());  // shapes
  CHECK(!run_node(reg(), make_node("Where", 3, 1), {b3, f3, i3}, 17).is_ok());  // X / Y dtypes
  CHECK(!run_node(reg(), make_node("PRelu", 2, 1), {f3, Value::allocate(DType::kF32, {2, 3})}, 17).is_ok());
  CHECK(!run_node(reg(), make_node("SwiGLU", 2, 1), {f3, Value::allocate(DType::kF32, {1, 3})}, 28).is_ok());
  CHECK(!run_node(reg(), make_node("Add", 2, 1), {f3, Value()}, 17).is_ok());   // missing input
  CHECK(!run_node(reg(), make_node("Sum", 0, 1), {}, 17).is_ok());
}

}  // namespace
}  // namespace llmc
