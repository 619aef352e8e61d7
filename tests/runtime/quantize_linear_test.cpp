// QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear against float64 / exact references:
// per-tensor, per-axis, blocked, every integer type (packed 4-bit too), rounding ties,
// saturation, float16 scales, opset forms and error cases.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"
#include "tests/support/run_node.h"

using namespace llmc;
using namespace llmc::rt;
using namespace llmc::testing;

namespace {

struct QType {
  DType t;
  int lo, hi;
};
const QType kQTypes[] = {{DType::kU8, 0, 255},     {DType::kI8, -128, 127}, {DType::kU16, 0, 65535},
                         {DType::kI16, -32768, 32767}, {DType::kU4, 0, 15},     {DType::kI4, -8, 7}};

// Integer values -> a tensor of type t (4-bit packed low nibble first).
Value ints_value(DType t, std::vector<int64_t> shape, const std::vector<int>& v) {
  Value out = Value::allocate(t, std::move(shape));
  auto* b = static_cast<uint8_t*>(out.mutable_raw());
  if (t == DType::kU4 || t == DType::kI4) std::fill(b, b + out.nbytes(), uint8_t{0});
  for (size_t i = 0; i < v.size(); ++i) {
    switch (t) {
      case DType::kU8: case DType::kI8: b[i] = static_cast<uint8_t>(v[i]); break;
      case DType::kU16: case DType::kI16: out.mutable_data<uint16_t>()[i] = static_cast<uint16_t>(v[i]); break;
      case DType::kI32: out.mutable_data<int32_t>()[i] = v[i]; break;
      default: b[i / 2] |= static_cast<uint8_t>((v[i] & 0xF) << (4 * (i & 1))); break;
    }
  }
  return out;
}

int int_at(const Value& v, int64_t i) {
  const auto* b = static_cast<const uint8_t*>(v.raw());
  switch (v.dtype()) {
    case DType::kU8: return b[i];
    case DType::kI8: return static_cast<int8_t>(b[i]);
    case DType::kU16: return v.data<uint16_t>()[i];
    case DType::kI16: return v.data<int16_t>()[i];
    case DType::kI32: return v.data<int32_t>()[i];
    case DType::kU4: return (b[i / 2] >> (4 * (i & 1))) & 0xF;
    default: return static_cast<int8_t>(((b[i / 2] >> (4 * (i & 1))) & 0xF) << 4) >> 4;
  }
}

Value floats(std::vector<int64_t> shape, const std::vector<float>& v) { return make_value<float>(DType::kF32, std::move(shape), v); }

// Index of the scale for element i of x: per tensor (granularity 0), per axis (1), blocked (2).
int64_t param_index(const std::vector<int64_t>& xs, int axis, int gran, int64_t block, int64_t i) {
  if (gran == 0) return 0;
  int64_t inner = 1;
  for (size_t d = axis + 1; d < xs.size(); ++d) inner *= xs[d];
  const int64_t D = xs[axis], o = i / (inner * D), d = (i / inner) % D, in = i % inner;
  if (gran == 1) return d;
  return (o * ((D + block - 1) / block) + d / block) * inner + in;
}

struct Setup {
  std::vector<int64_t> xs, ss;
  int axis, gran;
  int64_t block;
};

std::vector<Setup> setups() {
  std::vector<Setup> out;
  for (int64_t n : {1, 3, 17, 63, 257}) {
    out.push_back({{n}, {}, 0, 0, 0});
    out.push_back({{2, n, 3}, {n}, 1, 1, 0});          // per axis, middle
    out.push_back({{n, 5}, {n}, 0, 1, 0});             // per axis 0
    out.push_back({{3, n}, {3, (n + 15) / 16}, 1, 2, 16});  // blocked along the last axis
    out.push_back({{n, 2, 3}, {(n + 3) / 4, 2, 3}, 0, 2, 4});  // blocked along axis 0
  }
  return out;
}

std::vector<Attribute> qattrs(const Setup& s, int axis_sign = 1) {
  std::vector<Attribute> a;
  if (s.gran > 0) a.push_back(Attribute::make_int("axis", axis_sign > 0 ? s.axis : s.axis - int(s.xs.size())));
  if (s.gran == 2) a.push_back(Attribute::make_int("block_size", s.block));
  return a;
}

}  // namespace

TEST_CASE("QuantizeLinear matches the exact reference: granularities, types, ties, saturation", "[runtime][quantize]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(21);
  for (const QType& q : kQTypes)
    for (const Setup& s : setups()) {
      const int64_t n = shape_numel(s.xs), ns = std::max<int64_t>(1, shape_numel(s.ss));
      // Power-of-two scales make x / s exact, so x on a half-step grid hits exact ties; a wide
      // range of multiples exercises saturation on both sides.
      std::vector<float> sc(ns), x(n);
      std::vector<int> zp(ns);
      std::uniform_int_distribution<int> e(-3, 3), z(q.lo, q.hi), mult(2 * (q.lo - 40), 2 * (q.hi + 40));
      for (auto& v : sc) v = std::ldexp(1.0f, e(rng));
      for (auto& v : zp) v = z(rng);
      for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * mult(rng) * sc[param_index(s.xs, s.axis, s.gran, s.block, i)];
      const Value xv = floats(s.xs, x), sv = floats(s.ss, sc), zv = ints_value(q.t, s.ss, zp);
      const int axis_sign = n % 2 ? 1 : -1;  // negative axes too
      auto out = run_node(r, make_node("QuantizeLinear", 3, 1, qattrs(s, axis_sign)), {xv, sv, zv}, 21);
      REQUIRE(out.is_ok());
      const Value& y = out.value()[0];
      REQUIRE(y.dtype() == q.t);
      REQUIRE(y.shape() == s.xs);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t p = param_index(s.xs, s.axis, s.gran, s.block, i);
        const double v = std::nearbyint(double(x[i]) / sc[p]) + zp[p];  // FE_TONEAREST: ties to even
        const int want = static_cast<int>(std::min<double>(q.hi, std::max<double>(q.lo, v)));
        INFO("type " << dtype_name(q.t) << " x " << shape_str(s.xs) << " i=" << i << " x=" << x[i] << " s=" << sc[p]);
        REQUIRE(int_at(y, i) == want);
      }
      if ((q.t == DType::kU4 || q.t == DType::kI4) && n % 2)  // the unused high nibble is zero
        REQUIRE((static_cast<const uint8_t*>(y.raw())[n / 2] >> 4) == 0);
    }
}

TEST_CASE("QuantizeLinear: arbitrary scales divide in float32 - no zero point - opset forms", "[runtime][quantize]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(22);
  std::uniform_real_distribution<float> u(-300.f, 300.f), us(0.01f, 3.f);
  std::vector<float> x(257);
  for (auto& v : x) v = u(rng);
  x[0] = 2.5f;
  x[1] = -2.5f;
  x[2] = 3.5f;
  x[3] = NAN;
  const float s = us(rng);
  const Value xv = floats({257}, x);
  // Opset 10: no zero point -> uint8; opset 21: output_dtype picks int8.
  auto u8 = run_node(r, make_node("QuantizeLinear", 2, 1), {xv, floats({}, {s})}, 10);
  auto i8 = run_node(r, make_node("QuantizeLinear", 2, 1, {Attribute::make_int("output_dtype", 3)}), {xv, floats({}, {s})}, 21);
  auto ties = run_node(r, make_node("QuantizeLinear", 2, 1, {Attribute::make_int("output_dtype", 3)}), {xv, floats({}, {1.f})}, 21);
  REQUIRE(u8.is_ok());
  REQUIRE(i8.is_ok());
  REQUIRE(ties.is_ok());
  CHECK(u8.value()[0].dtype() == DType::kU8);
  CHECK(i8.value()[0].dtype() == DType::kI8);
  for (int64_t i = 4; i < 257; ++i) {
    const double q = std::nearbyint(x[i] / s);  // float32 quotient, as the spec's y_scale precision
    REQUIRE(int_at(u8.value()[0], i) == std::clamp<double>(q, 0, 255));
    REQUIRE(int_at(i8.value()[0], i) == std::clamp<double>(q, -128, 127));
  }
  CHECK(int_at(ties.value()[0], 0) == 2);   // 2.5 -> 2
  CHECK(int_at(ties.value()[0], 1) == -2);  // -2.5 -> -2
  CHECK(int_at(ties.value()[0], 2) == 4);   // 3.5 -> 4
  // Per-axis over a 1-D [1] scale of x with that axis of size 1 (equivalent to per tensor).
  auto one = run_node(r, make_node("QuantizeLinear", 3, 1, {Attribute::make_int("axis", 0)}),
                      {floats({1, 3}, {1.f, 2.f, 3.f}), floats({1}, {2.f}), ints_value(DType::kU8, {1}, {10})}, 13);
  REQUIRE(one.is_ok());
  CHECK(int_at(one.value()[0], 2) == 12);
}

TEST_CASE("DequantizeLinear matches the exact reference for every type and granularity", "[runtime][quantize]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(23);
  std::vector<QType> types(std::begin(kQTypes), std::end(kQTypes));
  types.push_back({DType::kI32, -100000, 100000});
  for (const QType& q : types)
    for (const Setup& s : setups())
      for (bool with_zp : {true, false}) {
        if (q.t == DType::kI32 && with_zp) continue;  // int32 has no zero point in practice
        const int64_t n = shape_numel(s.xs), ns = std::max<int64_t>(1, shape_numel(s.ss));
        std::uniform_int_distribution<int> z(q.lo, q.hi);
        std::uniform_real_distribution<float> us(0.001f, 2.f);
        std::vector<int> xq(n), zp(ns);
        std::vector<float> sc(ns);
        for (auto& v : xq) v = z(rng);
        xq[0] = q.lo;
        xq[n - 1] = q.hi;
        for (auto& v : zp) v = z(rng);
        for (auto& v : sc) v = us(rng);
        std::vector<Value> in = {ints_value(q.t, s.xs, xq), floats(s.ss, sc)};
        if (with_zp) in.push_back(ints_value(q.t, s.ss, zp));
        auto out = run_node(r, make_node("DequantizeLinear", in.size(), 1, qattrs(s)), in, 21);
        REQUIRE(out.is_ok());
        const Value& y = out.value()[0];
        REQUIRE(y.dtype() == DType::kF32);
        for (int64_t i = 0; i < n; ++i) {
          const int64_t p = param_index(s.xs, s.axis, s.gran, s.block, i);
          // (x - zp) is exact in float32 here, so one rounding of the exact product.
          const float want = static_cast<float>(double(xq[i] - (with_zp ? zp[p] : 0)) * sc[p]);
          REQUIRE(y.data<float>()[i] == want);
        }
      }
}

TEST_CASE("DequantizeLinear and QuantizeLinear with float16 scales", "[runtime][quantize]") {
  const KernelRegistry& r = builtin_kernels();
  const std::vector<uint16_t> s = {float_to_half(0.1f), float_to_half(3.0f)};
  const Value sv = make_value<uint16_t>(DType::kF16, {2}, s);
  const Value x = ints_value(DType::kI8, {2, 3}, {-128, 0, 127, 5, -5, 1});
  auto y = run_node(r, make_node("DequantizeLinear", 2, 1, {Attribute::make_int("axis", 0)}), {x, sv}, 21);
  REQUIRE(y.is_ok());
  REQUIRE(y.value()[0].dtype() == DType::kF16);
  const int xv[] = {-128, 0, 127, 5, -5, 1};
  for (int i = 0; i < 6; ++i)
    CHECK(y.value()[0].data<uint16_t>()[i] == float_to_half(static_cast<float>(xv[i] * double(half_to_float(s[i / 3])))));
  // output_dtype overrides the scale type.
  auto y32 = run_node(r, make_node("DequantizeLinear", 2, 1, {Attribute::make_int("axis", 0), Attribute::make_int("output_dtype", 1)}), {x, sv}, 23);
  REQUIRE(y32.is_ok());
  CHECK(y32.value()[0].dtype() == DType::kF32);
  // Quantize float16 x with a float16 scale: the quotient is rounded to float16 first.
  const std::vector<uint16_t> xh = {float_to_half(1.0f), float_to_half(-7.5f)};
  auto q = run_node(r, make_node("QuantizeLinear", 2, 1, {Attribute::make_int("output_dtype", 3)}),
                    {make_value<uint16_t>(DType::kF16, {2}, xh), make_value<uint16_t>(DType::kF16, {}, {float_to_half(0.5f)})}, 21);
  REQUIRE(q.is_ok());
  CHECK(int_at(q.value()[0], 0) == 2);
  CHECK(int_at(q.value()[0], 1) == -15);
}

TEST_CASE("DynamicQuantizeLinear follows the spec (range with 0, round half to even)", "[runtime][quantize]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(24);
  for (int64_t n : {1, 3, 17, 63, 257, 40000})
    for (int kind = 0; kind < 4; ++kind) {
      std::uniform_real_distribution<float> u(kind == 1 ? 0.5f : -3.f, kind == 2 ? -0.5f : 5.f);
      std::vector<float> x(n);
      for (auto& v : x) v = kind == 3 ? 0.f : u(rng);
      auto out = run_node(r, make_node("DynamicQuantizeLinear", 1, 3), {floats({n}, x)}, 11);
      REQUIRE(out.is_ok());
      const float mn = std::min(0.f, *std::min_element(x.begin(), x.end()));
      const float mx = std::max(0.f, *std::max_element(x.begin(), x.end()));
      const float scale = mx == mn ? 1.f : (mx - mn) / 255.f;  // float32 arithmetic, like the spec
      const double zp = std::nearbyint(std::clamp<double>(0.f - mn / scale, 0, 255));
      REQUIRE(out.value()[1].data<float>()[0] == scale);
      REQUIRE(out.value()[2].data<uint8_t>()[0] == zp);
      for (int64_t i = 0; i < n; ++i)
        REQUIRE(out.value()[0].data<uint8_t>()[i] == std::clamp<double>(std::nearbyint(x[i] / scale) + zp, 0, 255));
    }
}

TEST_CASE("Quantize ops reject bad shapes, axes and types", "[runtime][quantize]") {
  const KernelRegistry& r = builtin_kernels();
  const Value x = floats({2, 3}, {1, 2, 3, 4, 5, 6});
  const Value q = ints_value(DType::kU8, {2, 3}, {1, 2, 3, 4, 5, 6});
  auto Q = [&](std::vector<Attribute> a, std::vector<Value> in) { return run_node(r, make_node("QuantizeLinear", in.size(), 1, a), in, 21).is_ok(); };
  auto DQ = [&](std::vector<Attribute> a, std::vector<Value> in) { return run_node(r, make_node("DequantizeLinear", in.size(), 1, a), in, 21).is_ok(); };
  CHECK_FALSE(Q({}, {x, floats({2}, {1, 1})}));                                              // axis 1 has size 3
  CHECK(Q({Attribute::make_int("axis", 0)}, {x, floats({2}, {1, 1})}));
  CHECK_FALSE(Q({Attribute::make_int("axis", 2)}, {x, floats({3}, {1, 1, 1})}));             // axis out of range
  CHECK_FALSE(Q({Attribute::make_int("axis", -3)}, {x, floats({3}, {1, 1, 1})}));
  CHECK_FALSE(Q({}, {x, floats({3}, {1, 1, 1}), ints_value(DType::kU8, {2}, {0, 0})}));     // zp shape
  CHECK_FALSE(Q({Attribute::make_int("block_size", 2)}, {x, floats({2, 1}, {1, 1})}));       // blocks: ceil(3/2) = 2
  CHECK(Q({Attribute::make_int("block_size", 2)}, {x, floats({2, 2}, {1, 1, 1, 1})}));
  CHECK_FALSE(Q({Attribute::make_int("block_size", -1)}, {x, floats({2, 2}, {1, 1, 1, 1})}));
  CHECK_FALSE(Q({Attribute::make_int("output_dtype", 3)}, {x, floats({}, {1}), ints_value(DType::kU8, {}, {0})}));  // type clash
  CHECK_FALSE(Q({Attribute::make_int("output_dtype", 17)}, {x, floats({}, {1})}));           // float8: unsupported
  CHECK_FALSE(Q({}, {x, ints_value(DType::kI32, {}, {1})}));                                 // integer scale
  CHECK_FALSE(DQ({}, {q, floats({}, {1}), ints_value(DType::kI8, {}, {0})}));                // zp type != x type
  CHECK_FALSE(DQ({}, {x, floats({}, {1})}));                                                 // float x
  CHECK_FALSE(DQ({}, {q, floats({2}, {1, 1})}));
  CHECK_FALSE(run_node(r, make_node("DynamicQuantizeLinear", 1, 3), {ints_value(DType::kU8, {1}, {1})}, 11).is_ok());
}
