// Softmax/LogSoftmax, LayerNormalization, RMSNormalization and the onnxruntime contrib norms
// against float64 loops.
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

// Softmax (or log-softmax) over the middle dim of [outer, r, inner], in double.
std::vector<double> ref_softmax(const std::vector<float>& x, int64_t outer, int64_t r, int64_t inner, bool log) {
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double m = -INFINITY, s = 0;
      for (int64_t k = 0; k < r; ++k) m = std::max(m, double(x[(o * r + k) * inner + i]));
      for (int64_t k = 0; k < r; ++k) s += std::exp(x[(o * r + k) * inner + i] - m);
      for (int64_t k = 0; k < r; ++k) {
        const int64_t at = (o * r + k) * inner + i;
        y[at] = log ? x[at] - m - std::log(s) : std::exp(x[at] - m) / s;
      }
    }
  return y;
}

void check_close(const Value& y, const std::vector<double>& ref, double rel, double abs) {
  REQUIRE(y.numel() == static_cast<int64_t>(ref.size()));
  for (size_t i = 0; i < ref.size(); ++i) {
    const double got = y.dtype() == DType::kF64 ? y.data<double>()[i] : y.data<float>()[i];
    INFO("element " << i << " got " << got << " want " << ref[i]);
    if (got == ref[i]) continue;  // also -inf
    REQUIRE(std::fabs(got - ref[i]) <= rel * std::fabs(ref[i]) + abs);
  }
}

// Row normalisation over the last n values of each of m rows; scale/bias dense [n].
struct NormRef {
  std::vector<double> y, mean, inv;
};
NormRef ref_norm(const std::vector<double>& x, int64_t m, int64_t n, bool center, double eps,
                 const std::vector<double>& scale, const std::vector<double>& bias) {
  NormRef r{std::vector<double>(x.size()), std::vector<double>(m), std::vector<double>(m)};
  for (int64_t o = 0; o < m; ++o) {
    double mean = 0, var = 0;
    if (center) {
      for (int64_t i = 0; i < n; ++i) mean += x[o * n + i];
      mean /= n;
    }
    for (int64_t i = 0; i < n; ++i) var += (x[o * n + i] - mean) * (x[o * n + i] - mean);
    const double inv = 1 / std::sqrt(var / n + eps);
    for (int64_t i = 0; i < n; ++i)
      r.y[o * n + i] = (x[o * n + i] - mean) * inv * scale[i] + (bias.empty() ? 0 : bias[i]);
    r.mean[o] = mean, r.inv[o] = inv;
  }
  return r;
}

}  // namespace

TEST_CASE("Softmax / LogSoftmax opset 13 along any axis", "[runtime][softmax]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(1);
  for (int64_t len : {1, 3, 17, 63, 257})
    for (int axis = 0; axis < 3; ++axis)
      for (bool log : {false, true}) {
        std::vector<int64_t> shape{3, 2, 5};
        shape[axis] = len;
        const auto x = random_floats(shape_numel(shape), rng, -10.f, 10.f);
        const int64_t outer = axis == 0 ? 1 : axis == 1 ? 3 : 6, inner = shape_numel(shape) / outer / len;
        const std::vector<Attribute> attrs = axis == 2 ? std::vector<Attribute>{} : std::vector<Attribute>{Attribute::make_int("axis", axis - 3)};
        auto out = run_node(r, make_node(log ? "LogSoftmax" : "Softmax", 1, 1, attrs), {make_value(DType::kF32, shape, x)}, 13);
        INFO("len " << len << " axis " << axis << " log " << log);
        REQUIRE(out.is_ok());
        REQUIRE(out.value()[0].shape() == shape);
        check_close(out.value()[0], ref_softmax(x, outer, len, inner, log), 1e-5, log ? 1e-5 : 1e-7);
      }
}

TEST_CASE("Softmax / LogSoftmax before opset 13 flatten to 2-D at axis", "[runtime][softmax]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(2);
  const std::vector<int64_t> shape{2, 3, 17};
  const auto x = random_floats(102, rng, -5.f, 5.f);
  for (bool log : {false, true})
    for (int axis : {0, 1, 2, -1, -2}) {
      const int a = axis < 0 ? axis + 3 : axis;
      const int64_t outer = a == 0 ? 1 : a == 1 ? 2 : 6;
      for (int64_t opset : {11, 12}) {
        auto out = run_node(r, make_node(log ? "LogSoftmax" : "Softmax", 1, 1, {Attribute::make_int("axis", axis)}),
                            {make_value(DType::kF32, shape, x)}, opset);
        REQUIRE(out.is_ok());
        check_close(out.value()[0], ref_softmax(x, outer, 102 / outer, 1, log), 1e-5, 1e-6);
      }
    }
  // Default axis: 1 before opset 13 (rows of 51), -1 from 13 (rows of 17).
  auto old = run_node(r, make_node("Softmax", 1, 1), {make_value(DType::kF32, shape, x)}, 11);
  auto now = run_node(r, make_node("Softmax", 1, 1), {make_value(DType::kF32, shape, x)}, 13);
  REQUIRE(old.is_ok());
  REQUIRE(now.is_ok());
  check_close(old.value()[0], ref_softmax(x, 2, 51, 1, false), 1e-5, 1e-7);
  check_close(now.value()[0], ref_softmax(x, 6, 17, 1, false), 1e-5, 1e-7);
}

TEST_CASE("Softmax is stable on large values - float64 and float16 - errors", "[runtime][softmax]") {
  const KernelRegistry& r = builtin_kernels();
  const std::vector<float> big{10000.f, 10001.f, 10002.f, -INFINITY};
  for (bool log : {false, true}) {
    auto out = run_node(r, make_node(log ? "LogSoftmax" : "Softmax", 1, 1), {make_value(DType::kF32, {1, 4}, big)}, 13);
    REQUIRE(out.is_ok());
    check_close(out.value()[0], ref_softmax({0.f, 1.f, 2.f, -INFINITY}, 1, 4, 1, log), 1e-6, 1e-7);
  }
  // A NaN poisons its row (as in numpy), not its neighbours.
  auto nan = run_node(r, make_node("Softmax", 1, 1), {make_value<float>(DType::kF32, {2, 2}, {1.f, NAN, 1.f, 1.f})}, 13);
  REQUIRE(nan.is_ok());
  CHECK(std::isnan(nan.value()[0].data<float>()[0]));
  CHECK(nan.value()[0].data<float>()[3] == 0.5f);
  std::mt19937 rng(3);
  const auto x = random_floats(3 * 63, rng, -2.f, 2.f);
  auto d = run_node(r, make_node("Softmax", 1, 1), {make_value(DType::kF64, {3, 63}, std::vector<double>(x.begin(), x.end()))}, 13);
  REQUIRE(d.is_ok());
  REQUIRE(d.value()[0].dtype() == DType::kF64);
  check_close(d.value()[0], ref_softmax(x, 3, 63, 1, false), 1e-12, 0);
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < h.size(); ++i) h[i] = float_to_half(x[i]);
  auto hv = run_node(r, make_node("Softmax", 1, 1), {make_value(DType::kF16, {3, 63}, h)}, 13);
  REQUIRE(hv.is_ok());
  REQUIRE(hv.value()[0].dtype() == DType::kF16);
  const auto ref = ref_softmax(x, 3, 63, 1, false);
  for (size_t i = 0; i < ref.size(); ++i) CHECK(std::fabs(half_to_float(hv.value()[0].data<uint16_t>()[i]) - ref[i]) <= 2e-3 * ref[i] + 1e-4);

  const Value v = make_value<float>(DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(!run_node(r, make_node("Softmax", 1, 1, {Attribute::make_int("axis", 2)}), {v}, 13).is_ok());
  CHECK(!run_node(r, make_node("LogSoftmax", 1, 1, {Attribute::make_int("axis", -3)}), {v}, 11).is_ok());
  CHECK(!run_node(r, make_node("Softmax", 1, 1), {make_value<int32_t>(DType::kI32, {2}, {1, 2})}, 13).is_ok());
}

TEST_CASE("LayerNormalization: every axis, broadcast scale, optional bias and stats", "[runtime][layernorm]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(4);
  for (int64_t len : {1, 3, 17, 63, 257})
    for (int axis = 0; axis < 3; ++axis)
      for (int variant = 0; variant < 3; ++variant) {  // 0: full scale + bias, 1: no bias, 2: broadcast scale
        const std::vector<int64_t> shape{2, 3, len};
        const auto xf = random_floats(shape_numel(shape), rng, -3.f, 5.f);
        const std::vector<int64_t> norm_shape(shape.begin() + axis, shape.end());
        const int64_t n = shape_numel(norm_shape), m = shape_numel(shape) / n;
        std::vector<int64_t> sshape = variant == 2 ? std::vector<int64_t>{len} : norm_shape;
        if (variant == 2 && axis == 0) sshape = {1, 1, len};
        const auto sf = random_floats(shape_numel(sshape), rng, 0.5f, 1.5f), bf = random_floats(n, rng, -2.f, 2.f);
        std::vector<double> scale(n), bias;
        for (int64_t i = 0; i < n; ++i) scale[i] = variant == 2 ? sf[i % len] : sf[i];
        if (variant != 1) bias.assign(bf.begin(), bf.end());
        const double eps = variant == 1 ? 1e-2 : 1e-5;
        const auto ref = ref_norm(std::vector<double>(xf.begin(), xf.end()), m, n, true, eps, scale, bias);

        std::vector<Attribute> attrs{Attribute::make_int("axis", axis == 2 && variant ? -1 : axis)};
        if (variant == 1) attrs.push_back(Attribute::make_float("epsilon", 1e-2f));
        Node node = make_node("LayerNormalization", 3, 3, attrs);
        std::vector<Value> ins{make_value(DType::kF32, shape, xf), make_value(DType::kF32, sshape, sf),
                               variant == 1 ? Value() : make_value(DType::kF32, norm_shape, bf)};
        INFO("len " << len << " axis " << axis << " variant " << variant);
        auto out = run_node(r, node, ins, 17);
        REQUIRE(out.is_ok());
        REQUIRE(out.value()[0].shape() == shape);
        check_close(out.value()[0], ref.y, 1e-5, 1e-5);
        std::vector<int64_t> stat_shape = shape;
        for (int d = axis; d < 3; ++d) stat_shape[d] = 1;
        REQUIRE(out.value()[1].shape() == stat_shape);
        REQUIRE(out.value()[2].dtype() == DType::kF32);
        check_close(out.value()[1], ref.mean, 1e-6, 1e-6);
        check_close(out.value()[2], ref.inv, 1e-6, 0);
        // Only Y requested.
        node.outputs = {"y"};
        auto y_only = run_node(r, node, ins, 17);
        REQUIRE(y_only.is_ok());
        REQUIRE(y_only.value().size() == 1);
        check_close(y_only.value()[0], ref.y, 1e-5, 1e-5);
      }
  const Value x = make_value<float>(DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 6});
  const Value s3 = make_value<float>(DType::kF32, {3}, {1, 1, 1});
  CHECK(!run_node(r, make_node("LayerNormalization", 2, 1, {Attribute::make_int("axis", 2)}), {x, s3}, 17).is_ok());
  CHECK(!run_node(r, make_node("LayerNormalization", 2, 1, {Attribute::make_int("axis", 0)}), {x.reshaped({3, 2}), s3}, 17).is_ok());
  CHECK(!run_node(r, make_node("LayerNormalization", 2, 1), {x, make_value<float>(DType::kF32, {2}, {1, 1})}, 17).is_ok());
  CHECK(!run_node(r, make_node("LayerNormalization", 2, 1), {x, make_value<float>(DType::kF32, {2, 3}, {1, 1, 1, 1, 1, 1})}, 17).is_ok());
  CHECK(!run_node(r, make_node("LayerNormalization", 2, 1), {x, Value()}, 17).is_ok());
}

TEST_CASE("RMSNormalization and SimplifiedLayerNormalization", "[runtime][layernorm]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(5);
  for (int64_t len : {1, 3, 17, 63, 257})
    for (int axis : {1, 2, -1}) {
      const std::vector<int64_t> shape{3, 2, len};
      const int a = axis < 0 ? 2 : axis;
      const auto xf = random_floats(shape_numel(shape), rng, -3.f, 5.f);
      const std::vector<int64_t> norm_shape(shape.begin() + a, shape.end());
      const int64_t n = shape_numel(norm_shape), m = shape_numel(shape) / n;
      const auto sf = random_floats(n, rng, 0.5f, 1.5f);
      const auto ref = ref_norm(std::vector<double>(xf.begin(), xf.end()), m, n, false, 1e-3,
                                std::vector<double>(sf.begin(), sf.end()), {});
      const std::vector<Attribute> attrs{Attribute::make_int("axis", axis), Attribute::make_float("epsilon", 1e-3f)};
      const std::vector<Value> ins{make_value(DType::kF32, shape, xf), make_value(DType::kF32, norm_shape, sf)};
      INFO("len " << len << " axis " << axis);
      auto rms = run_node(r, make_node("RMSNormalization", 2, 1, attrs), ins, 23);
      REQUIRE(rms.is_ok());
      check_close(rms.value()[0], ref.y, 1e-5, 1e-5);
      for (const char* domain : {"", "com.microsoft"}) {
        auto s = run_node(r, make_node("SimplifiedLayerNormalization", 2, 2, attrs, domain), ins, 1);
        REQUIRE(s.is_ok());
        check_close(s.value()[0], ref.y, 1e-5, 1e-5);
        std::vector<int64_t> stat_shape = shape;
        for (int d = a; d < 3; ++d) stat_shape[d] = 1;
        REQUIRE(s.value()[1].shape() == stat_shape);
        check_close(s.value()[1], ref.inv, 1e-6, 0);
      }
    }
  const Value x = make_value<float>(DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(!run_node(r, make_node("RMSNormalization", 2, 1), {x, make_value<float>(DType::kF32, {2}, {1, 1})}, 23).is_ok());
  CHECK(!run_node(r, make_node("RMSNormalization", 2, 1, {Attribute::make_int("axis", -3)}), {x, make_value<float>(DType::kF32, {3}, {1, 1, 1})}, 23).is_ok());
  // float16 in, float16 out, float32 statistics.
  std::vector<uint16_t> h{float_to_half(1), float_to_half(2), float_to_half(3), float_to_half(4), float_to_half(5), float_to_half(6)};
  auto hv = run_node(r, make_node("SimplifiedLayerNormalization", 2, 2), {make_value(DType::kF16, {2, 3}, h),
                     make_value<uint16_t>(DType::kF16, {3}, {float_to_half(1), float_to_half(1), float_to_half(2)})}, 1);
  REQUIRE(hv.is_ok());
  REQUIRE(hv.value()[0].dtype() == DType::kF16);
  REQUIRE(hv.value()[1].dtype() == DType::kF32);
  const double inv0 = 1 / std::sqrt((1 + 4 + 9) / 3.0 + 1e-5);
  CHECK(std::fabs(half_to_float(hv.value()[0].data<uint16_t>()[2]) - 6 * inv0) <= 2e-3);
  CHECK(std::fabs(hv.value()[1].data<float>()[0] - inv0) <= 1e-6);
}

TEST_CASE("SkipLayerNormalization and SkipSimplifiedLayerNormalization (com.microsoft)", "[runtime][layernorm]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(6);
  for (int64_t len : {1, 3, 17, 63, 257})
    for (bool center : {false, true})
      for (int variant = 0; variant < 2; ++variant) {  // 0: full skip, bias, beta; 1: 2-D skip, no bias/beta
        const std::vector<int64_t> shape{2, 3, len};
        const std::vector<int64_t> skip_shape = variant ? std::vector<int64_t>{3, len} : shape;
        const auto xf = random_floats(shape_numel(shape), rng, -2.f, 2.f), sk = random_floats(shape_numel(skip_shape), rng, -2.f, 2.f);
        const auto g = random_floats(len, rng, 0.5f, 1.5f), be = random_floats(len, rng, -2.f, 2.f), bi = random_floats(len, rng, -2.f, 2.f);
        std::vector<double> sum(xf.size());
        for (size_t i = 0; i < sum.size(); ++i)
          sum[i] = double(xf[i]) + sk[variant ? i % (3 * len) : i] + (variant ? 0.0 : bi[i % len]);
        const auto ref = ref_norm(sum, 6, len, center, 1e-12, std::vector<double>(g.begin(), g.end()),
                                  center && !variant ? std::vector<double>(be.begin(), be.end()) : std::vector<double>{});
        std::vector<Value> ins{make_value(DType::kF32, shape, xf), make_value(DType::kF32, skip_shape, sk), make_value(DType::kF32, {len}, g)};
        if (center) ins.push_back(variant ? Value() : make_value(DType::kF32, {len}, be));
        ins.push_back(variant ? Value() : make_value(DType::kF32, {len}, bi));
        const char* op = center ? "SkipLayerNormalization" : "SkipSimplifiedLayerNormalization";
        INFO(op << " len " << len << " variant " << variant);
        auto out = run_node(r, make_node(op, ins.size(), 4, {}, "com.microsoft"), ins, 1);
        REQUIRE(out.is_ok());
        check_close(out.value()[0], ref.y, 1e-5, 1e-5);
        check_close(out.value()[1], ref.mean, 1e-6, 1e-6);
        check_close(out.value()[2], ref.inv, 1e-6, 0);
        REQUIRE(out.value()[3].shape() == shape);
        check_close(out.value()[3], sum, 1e-6, 1e-6);
        REQUIRE(out.value()[2].shape() == std::vector<int64_t>{2, 3, 1});
      }
  const Value x = make_value<float>(DType::kF32, {1, 3}, {1, 2, 3});
  const Value g3 = make_value<float>(DType::kF32, {3}, {1, 1, 1});
  Node n = make_node("SkipSimplifiedLayerNormalization", 3, 1, {}, "com.microsoft");
  CHECK(!run_node(r, n, {x, make_value<float>(DType::kF32, {1, 2}, {1, 2}), g3}, 1).is_ok());
  CHECK(!run_node(r, n, {x, x, make_value<float>(DType::kF32, {2}, {1, 1})}, 1).is_ok());
  CHECK(!run_node(r, n, {x, make_value<double>(DType::kF64, {1, 3}, {1, 2, 3}), g3}, 1).is_ok());
}

TEST_CASE("Softmax and norms on tensors big enough to run multi-threaded", "[runtime][softmax][layernorm]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(7);
  const auto x = random_floats(129 * 1025, rng, -8.f, 8.f);
  auto sm = run_node(r, make_node("Softmax", 1, 1), {make_value(DType::kF32, {129, 1025}, x)}, 13);
  REQUIRE(sm.is_ok());
  check_close(sm.value()[0], ref_softmax(x, 129, 1025, 1, false), 1e-5, 1e-9);
  auto mid = run_node(r, make_node("LogSoftmax", 1, 1, {Attribute::make_int("axis", 1)}), {make_value(DType::kF32, {3, 1025, 43}, x)}, 13);
  REQUIRE(mid.is_ok());
  check_close(mid.value()[0], ref_softmax(x, 3, 1025, 43, true), 1e-5, 1e-5);
  const auto s = random_floats(1025, rng, 0.5f, 1.5f), b = random_floats(1025, rng, -2.f, 2.f);
  const std::vector<double> xd(x.begin(), x.end()), sd(s.begin(), s.end()), bd(b.begin(), b.end());
  auto ln = run_node(r, make_node("LayerNormalization", 3, 1), {make_value(DType::kF32, {129, 1025}, x),
                     make_value(DType::kF32, {1025}, s), make_value(DType::kF32, {1025}, b)}, 17);
  REQUIRE(ln.is_ok());
  check_close(ln.value()[0], ref_norm(xd, 129, 1025, true, 1e-5, sd, bd).y, 1e-5, 1e-5);
  auto rms = run_node(r, make_node("RMSNormalization", 2, 1), {make_value(DType::kF32, {129, 1025}, x), make_value(DType::kF32, {1025}, s)}, 23);
  REQUIRE(rms.is_ok());
  check_close(rms.value()[0], ref_norm(xd, 129, 1025, false, 1e-5, sd, {}).y, 1e-5, 1e-5);
}
