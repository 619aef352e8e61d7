// Unary elementwise kernels (runtime/kernels/elementwise_unary.cpp) against float64 references.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
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

using testing::get;
using testing::set;

Value random_value(DType dt, const Shape& shape, std::mt19937& rng, double lo, double hi) {
  Value v = Value::allocate(dt, shape);
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t i = 0; i < v.numel(); ++i) set(v, i, dtype_is_float(dt) ? u(rng) : std::round(u(rng)));
  return v;
}


// Odd sizes, a 2-D shape, a 0-D scalar, an empty tensor, and one large enough for threads.
const std::vector<Shape> kShapes = {{1}, {3}, {17}, {63}, {257}, {7, 63}, {}, {0}, {40001}};

struct UnaryCase {
  std::string op;
  std::function<double(double)> ref;
  double lo, hi;
  double rtol32;  // float32 relative tolerance (float64: 1e-12, f16: 2e-3, bf16: 1e-2)
  std::vector<Attribute> attrs = {};
  std::vector<DType> dtypes = {DType::kF32, DType::kF64, DType::kF16, DType::kBF16};
  int64_t opset = 22;
};

void check_unary(const UnaryCase& c) {
  std::mt19937 rng(42);
  for (DType dt : c.dtypes) {
    const double rtol = !dtype_is_float(dt)   ? 0
                        : dt == DType::kF32 ? c.rtol32
                        : dt == DType::kF64 ? 1e-12
                        : dt == DType::kF16 ? 2e-3
                                            : 1e-2;
    const double atol = !dtype_is_float(dt) ? 0 : dt == DType::kF64 ? 1e-15 : dt == DType::kF32 ? 1e-7 : 1e-5;
    for (const Shape& s : kShapes) {
      INFO(c.op << " " << dtype_name(dt) << " " << shape_str(s));
      const Value x = random_value(dt, s, rng, c.lo, c.hi);
      auto r = run_node(reg(), make_node(c.op, 1, 1, c.attrs), {x}, c.opset);
      REQUIRE(r.is_ok());
      const Value& y = (*r)[0];
      REQUIRE(y.dtype() == dt);
      REQUIRE(y.shape() == s);
      int bad = 0;
      for (int64_t i = 0; i < y.numel() && bad < 5; ++i) {
        const double want = c.ref(get(x, i)), got = get(y, i);
        if (!(std::fabs(got - want) <= atol + rtol * std::fabs(want))) {
          ++bad;
          FAIL_CHECK(c.op << "(" << get(x, i) << ") = " << got << ", want " << want);
        }
      }
    }
  }
}

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

std::vector<bool> bools(const Value& v) { return std::vector<bool>(v.data<bool>(), v.data<bool>() + v.numel()); }

TEST_CASE("float unary math ops match float64 references", "[runtime][kernels][unary]") {
  const std::vector<UnaryCase> cases = {
      {"Sqrt", [](double x) { return std::sqrt(x); }, 0, 100, 1e-6},
      {"Reciprocal", [](double x) { return 1 / x; }, 0.1, 10, 1e-6},
      {"Exp", [](double x) { return std::exp(x); }, -10, 10, 1e-5},
      {"Log", [](double x) { return std::log(x); }, 0.01, 100, 1e-5},
      {"Tanh", [](double x) { return std::tanh(x); }, -10, 10, 1e-5},
      {"Erf", [](double x) { return std::erf(x); }, -4, 4, 1e-5},
      {"Sin", [](double x) { return std::sin(x); }, -10, 10, 1e-5},
      {"Cos", [](double x) { return std::cos(x); }, -10, 10, 1e-5},
      {"Sigmoid", sigmoid, -30, 30, 1e-5},
      {"Softplus", [](double x) { return std::log1p(std::exp(x)); }, -30, 30, 1e-5},
      {"Swish", [](double x) { return x * sigmoid(x); }, -30, 30, 1e-5},
      {"Swish", [](double x) { return x * sigmoid(0.5f * x); }, -30, 30, 1e-5,
       {Attribute::make_float("alpha", 0.5f)}, {DType::kF32, DType::kF64, DType::kF16, DType::kBF16}, 24},
      {"Softsign", [](double x) { return x / (1 + std::fabs(x)); }, -10, 10, 1e-6},
      {"Floor", [](double x) { return std::floor(x); }, -10, 10, 0},
      {"Ceil", [](double x) { return std::ceil(x); }, -10, 10, 0},
      {"Round", [](double x) { return std::nearbyint(x); }, -10, 10, 0},
      {"HardSwish", [](double x) { return x * std::clamp(x / 6 + 0.5, 0.0, 1.0); }, -8, 8, 1e-6},
      {"Gelu", [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, -8, 8, 1e-5},
      {"Gelu", [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); },
       -8, 8, 1e-5, {Attribute::make_string("approximate", "tanh")}},
      {"LeakyRelu", [](double x) { return x < 0 ? 0.01f * x : x; }, -10, 10, 1e-6},
      {"LeakyRelu", [](double x) { return x < 0 ? 0.3f * x : x; }, -10, 10, 1e-6,
       {Attribute::make_float("alpha", 0.3f)}},
      {"HardSigmoid", [](double x) { return std::clamp(0.2f * x + 0.5f, 0.0, 1.0); }, -5, 5, 1e-6},
      {"HardSigmoid", [](double x) { return std::clamp(0.3f * x + 0.4f, 0.0, 1.0); }, -5, 5, 1e-6,
       {Attribute::make_float("alpha", 0.3f), Attribute::make_float("beta", 0.4f)}},
      {"Elu", [](double x) { return x < 0 ? 0.7f * std::expm1(x) : x; }, -5, 5, 1e-5,
       {Attribute::make_float("alpha", 0.7f)}},
      {"Selu",
       [](double x) {
         return 1.05070102214813232421875f * (x > 0 ? x : 1.67326319217681884765625f * std::expm1(x));
       },
       -5, 5, 1e-5},
  };
  for (const auto& c : cases) check_unary(c);
}

TEST_CASE("sign-type unary ops on floats and integers", "[runtime][kernels][unary]") {
  const std::vector<DType> floats_signed = {DType::kF32, DType::kF64, DType::kF16,
                                            DType::kI8,  DType::kI32, DType::kI64};
  check_unary({"Neg", [](double x) { return -x; }, -100, 100, 0, {}, floats_signed});
  check_unary({"Abs", [](double x) { return std::fabs(x); }, -100, 100, 0, {}, floats_signed});
  check_unary({"Relu", [](double x) { return std::max(x, 0.0); }, -100, 100, 0, {}, floats_signed});
  check_unary({"Sign", [](double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0; }, -3, 3, 0, {}, floats_signed});
  check_unary({"Abs", [](double x) { return x; }, 0, 250, 0, {}, {DType::kU8}});
  check_unary({"Sign", [](double x) { return x > 0 ? 1.0 : 0.0; }, 0, 2, 0, {}, {DType::kU8}});
}

TEST_CASE("special values: stable Sigmoid / Softplus / Gelu, Round half to even, NaN", "[runtime][kernels][unary]") {
  const Value x = make_value<float>(DType::kF32, {6}, {-1000.f, -100.f, -88.f, 88.f, 100.f, 1000.f});
  auto r = run_node(reg(), make_node("Sigmoid", 1, 1), {x}, 13);
  REQUIRE(r.is_ok());
  for (int i = 0; i < 6; ++i) {
    const float y = (*r)[0].data<float>()[i];
    CHECK(std::isfinite(y));
    CHECK(y == Approx(static_cast<float>(sigmoid(get(x, i)))).margin(1e-40));
  }
  r = run_node(reg(), make_node("Softplus", 1, 1), {x}, 13);
  REQUIRE(r.is_ok());
  CHECK((*r)[0].data<float>()[0] == 0.f);
  CHECK((*r)[0].data<float>()[5] == 1000.f);
  r = run_node(reg(), make_node("Gelu", 1, 1), {x}, 20);
  REQUIRE(r.is_ok());
  CHECK((*r)[0].data<float>()[0] == 0.f);
  CHECK((*r)[0].data<float>()[5] == 1000.f);

  const Value h = make_value<float>(DType::kF32, {8}, {0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 2.4999f, -3.5f, 1e9f});
  r = run_node(reg(), make_node("Round", 1, 1), {h}, 11);
  REQUIRE(r.is_ok());
  const std::vector<float> want = {0.f, 2.f, 2.f, -0.f, -2.f, 2.f, -4.f, 1e9f};
  CHECK(std::vector<float>((*r)[0].data<float>(), (*r)[0].data<float>() + 8) == want);

  const float inf = std::numeric_limits<float>::infinity();
  const Value s = make_value<float>(DType::kF32, {4}, {NAN, inf, -inf, 1.f});
  for (const char* op : {"Sqrt", "Tanh", "Sigmoid", "Relu", "Abs", "Floor", "Gelu", "Sign"}) {
    r = run_node(reg(), make_node(op, 1, 1), {s}, 20);
    REQUIRE(r.is_ok());
    CHECK(std::isnan((*r)[0].data<float>()[0]));
  }
  r = run_node(reg(), make_node("IsNaN", 1, 1), {s}, 20);
  REQUIRE(r.is_ok());
  CHECK(bools((*r)[0]) == std::vector<bool>{true, false, false, false});
  for (int neg = 0; neg <= 1; ++neg) {
    for (int pos = 0; pos <= 1; ++pos) {
      const std::vector<Attribute> attrs = {Attribute::make_int("detect_negative", neg),
                                            Attribute::make_int("detect_positive", pos)};
      r = run_node(reg(), make_node("IsInf", 1, 1, attrs), {s}, 20);
      REQUIRE(r.is_ok());
      REQUIRE((*r)[0].dtype() == DType::kBool);
      CHECK(bools((*r)[0]) == std::vector<bool>{false, pos == 1, neg == 1, false});
    }
  }
}

TEST_CASE("Not, Identity", "[runtime][kernels][unary]") {
  std::mt19937 rng(5);
  const Value b = random_value(DType::kBool, {257}, rng, 0, 1);
  auto r = run_node(reg(), make_node("Not", 1, 1), {b}, 1);
  REQUIRE(r.is_ok());
  for (int64_t i = 0; i < 257; ++i) CHECK(get((*r)[0], i) == 1 - get(b, i));
  for (DType dt : {DType::kF32, DType::kI64, DType::kBool, DType::kF16}) {
    const Value x = Value::allocate(dt, {3, 17});
    r = run_node(reg(), make_node("Identity", 1, 1), {x}, 16);
    REQUIRE(r.is_ok());
    CHECK((*r)[0].raw() == x.raw());  // aliases, no copy
    CHECK((*r)[0].shape() == x.shape());
    CHECK((*r)[0].dtype() == dt);
  }
}

// Clip reference: min(max(x, lo), hi).
void check_clip(DType dt, const std::vector<Value>& extra, std::vector<Attribute> attrs, int64_t opset,
                double lo, double hi) {
  std::mt19937 rng(11);
  for (const Shape& s : kShapes) {
    INFO("Clip " << dtype_name(dt) << " " << shape_str(s) << " opset " << opset << " [" << lo << ", " << hi << "]");
    std::vector<Value> ins = {random_value(dt, s, rng, -10, 10)};
    ins.insert(ins.end(), extra.begin(), extra.end());
    auto r = run_node(reg(), make_node("Clip", ins.size(), 1, attrs), ins, opset);
    REQUIRE(r.is_ok());
    REQUIRE((*r)[0].shape() == s);
    int bad = 0;
    for (int64_t i = 0; i < ins[0].numel(); ++i) bad += get((*r)[0], i) != std::min(std::max(get(ins[0], i), lo), hi);
    CHECK(bad == 0);
  }
}

TEST_CASE("Clip: opset 11+ inputs, opset 6 attributes, integer types", "[runtime][kernels][unary]") {
  const double big = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::kF32, DType::kF64, DType::kF16, DType::kI32, DType::kI64, DType::kI8}) {
    Value lo2 = Value::allocate(dt, {}), hi2 = Value::allocate(dt, {});
    set(lo2, 0, -2);
    set(hi2, 0, 3);
    check_clip(dt, {lo2, hi2}, {}, 13, -2, 3);
    check_clip(dt, {lo2}, {}, 13, -2, big);             // test_clip_default_max
    check_clip(dt, {Value(), hi2}, {}, 13, -big, 3);    // test_clip_default_min
    check_clip(dt, {}, {}, 13, -big, big);
    check_clip(dt, {hi2, lo2}, {}, 12, 3, -2);          // min > max: everything becomes max
  }
  const Value lo1 = make_value<float>(DType::kF32, {1}, {-1.f});  // 1-element bound accepted
  check_clip(DType::kF32, {lo1}, {}, 11, -1, big);
  check_clip(DType::kF32, {}, {Attribute::make_float("min", -1.f), Attribute::make_float("max", 2.f)}, 6, -1, 2);
  check_clip(DType::kF32, {}, {Attribute::make_float("max", 0.5f)}, 6, -big, 0.5);
  check_clip(DType::kF64, {}, {}, 6, -big, big);
}

TEST_CASE("unary kernel errors", "[runtime][kernels][unary]") {
  const Value f = Value::allocate(DType::kF32, {3}), i = Value::allocate(DType::kI32, {3});
  const Value b = Value::allocate(DType::kBool, {3});
  for (const char* op : {"Sqrt", "Exp", "Sigmoid", "Gelu", "Floor", "Erf", "IsNaN"})
    CHECK(!run_node(reg(), make_node(op, 1, 1), {i}, 20).is_ok());
  CHECK(!run_node(reg(), make_node("Neg", 1, 1), {Value::allocate(DType::kU8, {3})}, 13).is_ok());
  CHECK(!run_node(reg(), make_node("Abs", 1, 1), {b}, 13).is_ok());
  CHECK(!run_node(reg(), make_node("Not", 1, 1), {f}, 1).is_ok());
  CHECK(!run_node(reg(), make_node("Relu", 1, 1), {Value()}, 14).is_ok());
  auto r = run_node(reg(), make_node("Gelu", 1, 1, {Attribute::make_string("approximate", "fast")}), {f}, 20);
  REQUIRE(!r.is_ok());
  CHECK(r.status().message().find("fast") != std::string::npos);
  const Value lo_i = Value::allocate(DType::kI32, {}), lo_vec = Value::allocate(DType::kF32, {2});
  CHECK(!run_node(reg(), make_node("Clip", 2, 1), {f, lo_i}, 13).is_ok());    // bound dtype
  CHECK(!run_node(reg(), make_node("Clip", 2, 1), {f, lo_vec}, 13).is_ok());  // bound not scalar
  CHECK(!run_node(reg(), make_node("Clip", 1, 1), {i}, 6).is_ok());           // opset 6: floats only
}

// The vectorised float32 Tanh: relative error against float64 everywhere, including the tiny
// arguments where 1 - 2/(e^2x + 1) would cancel, both sides of the polynomial's 0.625 switch,
// saturation, +-inf and NaN.
TEST_CASE("Tanh float32: relative error <= 5e-7 against float64, special values", "[runtime][kernels][unary]") {
  std::vector<float> xs = {0.f, -0.f, 1e-30f, -1e-20f, 1e-8f, 1e-3f, 0.1f, 0.6249999f, 0.625f, 0.6250001f,
                           1.f, 3.f, 9.f, 9.1f, 20.f, 88.f, 1e30f};
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-12.f, 12.f);
  for (int i = 0; i < 40000; ++i) xs.push_back(u(rng));
  const size_t finite = xs.size();
  for (size_t i = 0; i < finite; ++i) xs.push_back(-xs[i]);
  xs.push_back(std::numeric_limits<float>::infinity());
  xs.push_back(-std::numeric_limits<float>::infinity());
  xs.push_back(std::numeric_limits<float>::quiet_NaN());
  const int64_t n = static_cast<int64_t>(xs.size());
  const Value y = testing::run1(make_node("Tanh", 1, 1), {make_value<float>(DType::kF32, {n}, xs)}, 13);
  const float* out = y.data<float>();
  for (int64_t i = 0; i < n - 3; ++i) {
    const double want = std::tanh(static_cast<double>(xs[i]));
    INFO("tanh(" << xs[i] << ") = " << out[i] << ", want " << want);
    REQUIRE(std::fabs(out[i] - want) <= 5e-7 * std::fabs(want) + 1e-45);
    REQUIRE(std::signbit(out[i]) == std::signbit(xs[i]));
  }
  CHECK(out[n - 3] == 1.f);
  CHECK(out[n - 2] == -1.f);
  CHECK(std::isnan(out[n - 1]));
}

}  // namespace
}  // namespace llmc
