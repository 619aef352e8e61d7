// Reduce*, ArgMax/ArgMin, CumSum and TopK kernels against float64 / exact integer loops.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"
#include "tests/support/run_node.h"

using namespace llmc;
using namespace llmc::rt;
using namespace llmc::testing;

namespace {

std::vector<double> as_doubles(const Value& v) {
  std::vector<double> out(static_cast<size_t>(v.numel()));
  if (v.dtype() == DType::kF16) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = half_to_float(v.data<uint16_t>()[i]);
    return out;
  }
  Status s = dispatch_numeric(v.dtype(), [&](auto t) -> Status {
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(v.data<decltype(t)>()[i]);
    return Status::ok();
  });
  REQUIRE(s.is_ok());
  return out;
}

// Groups the input values by output element (reduced dims dropped) in row-major order.
std::vector<std::vector<double>> groups(const std::vector<double>& x, const std::vector<int64_t>& shape,
                                        const std::vector<bool>& red) {
  int64_t nout = 1;
  for (size_t d = 0; d < shape.size(); ++d)
    if (!red[d]) nout *= shape[d];
  std::vector<std::vector<double>> g(static_cast<size_t>(nout));
  std::vector<int64_t> idx(shape.size(), 0);
  for (size_t i = 0; i < x.size(); ++i) {
    int64_t o = 0;
    for (size_t d = 0; d < shape.size(); ++d)
      if (!red[d]) o = o * shape[d] + idx[d];
    g[o].push_back(x[i]);
    for (size_t d = shape.size(); d-- > 0;)
      if (++idx[d] < shape[d]) break;
      else idx[d] = 0;
  }
  return g;
}

double ref_op(const std::string& op, const std::vector<double>& v) {
  double a = 0;
  if (op == "ReduceMax") {
    a = -INFINITY;
    for (double x : v) a = std::max(a, x);
  } else if (op == "ReduceMin") {
    a = INFINITY;
    for (double x : v) a = std::min(a, x);
  } else if (op == "ReduceProd") {
    a = 1;
    for (double x : v) a *= x;
  } else if (op == "ReduceLogSumExp") {
    for (double x : v) a += std::exp(x);
    a = std::log(a);
  } else {
    for (double x : v) a += op == "ReduceSumSquare" || op == "ReduceL2" ? x * x : op == "ReduceL1" ? std::fabs(x) : x;
    if (op == "ReduceMean") a /= static_cast<double>(v.size());
    if (op == "ReduceL2") a = std::sqrt(a);
    if (op == "ReduceLogSum") a = std::log(a);
  }
  return a;
}

// Runs `op` on x reducing `axes` in the attribute form (old opset) or the input form (opset 18).
Result<std::vector<Value>> run_reduce(const KernelRegistry& r, const std::string& op, const Value& x,
                                      const std::vector<int64_t>& axes, bool keepdims, bool input_form,
                                      int64_t noop = 0) {
  std::vector<Attribute> attrs{Attribute::make_int("keepdims", keepdims)};
  if (input_form) {
    attrs.push_back(Attribute::make_int("noop_with_empty_axes", noop));
    Value a = make_value<int64_t>(DType::kI64, {static_cast<int64_t>(axes.size())}, axes);
    return run_node(r, make_node(op, 2, 1, attrs), {x, a}, 18);
  }
  if (!axes.empty()) attrs.push_back(Attribute::make_ints("axes", axes));
  return run_node(r, make_node(op, 1, 1, attrs), {x}, op == "ReduceSum" ? 11 : 13);
}

const char* kReduceOps[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                            "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"};

}  // namespace

TEST_CASE("Reduce ops match float64 for every axis subset, both opset forms", "[runtime][reduce]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(11);
  const std::vector<std::vector<int64_t>> shapes = {{257}, {3, 17}, {63, 1, 3}, {2, 3, 17, 5}, {1, 3, 1}};
  for (const auto& shape : shapes) {
    const int rank = static_cast<int>(shape.size());
    const auto pos = random_floats(shape_numel(shape), rng, 0.1f, 2.f);
    auto sig = pos;  // magnitudes in [0.1, 2), random signs
    for (auto& v : sig) v = rng() % 2 ? -v : v;
    for (const char* op : kReduceOps)
      for (int mask = 0; mask < (1 << rank); ++mask)
        for (int keep = 0; keep < 2; ++keep)
          for (int form = 0; form < 2; ++form) {
            std::vector<int64_t> axes;
            std::vector<bool> red(rank, mask == 0);
            for (int d = 0; d < rank; ++d)
              if (mask >> d & 1) axes.push_back(d % 2 ? d - rank : d), red[d] = true;  // some negative
            const auto& xf = std::string(op) == "ReduceLogSum" ? pos : sig;
            const Value x = make_value(DType::kF32, shape, xf);
            const std::vector<double> xd(xf.begin(), xf.end());
            INFO(op << " shape " << shape_str(shape) << " mask " << mask << " keepdims " << keep << " form " << form);
            auto out = run_reduce(r, op, x, axes, keep, form);
            REQUIRE(out.is_ok());
            const Value& y = out.value()[0];
            std::vector<int64_t> want;
            for (int d = 0; d < rank; ++d)
              if (!red[d] || keep) want.push_back(red[d] ? 1 : shape[d]);
            REQUIRE(y.shape() == want);
            const auto g = groups(xd, shape, red);
            const auto got = as_doubles(y);
            for (size_t i = 0; i < g.size(); ++i) {
              const double ref = ref_op(op, g[i]);
              REQUIRE(std::fabs(got[i] - ref) <= 1e-6 * std::fabs(ref) + 1e-30);
            }
          }
  }
}

TEST_CASE("Reduce accumulates float32 sums in double", "[runtime][reduce]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(5);
  // LLM case: mean over the hidden dim, values with a large common offset.
  const int64_t rows = 63, hidden = 4097;
  auto xf = random_floats(rows * hidden, rng);
  for (auto& v : xf) v += 1000.f;
  auto out = run_reduce(r, "ReduceMean", make_value(DType::kF32, {rows, hidden}, xf), {-1}, true, false);
  REQUIRE(out.is_ok());
  REQUIRE(out.value()[0].shape() == std::vector<int64_t>{rows, 1});
  for (int64_t i = 0; i < rows; ++i) {
    double s = 0;
    for (int64_t k = 0; k < hidden; ++k) s += xf[i * hidden + k];
    REQUIRE(std::fabs(out.value()[0].data<float>()[i] - s / hidden) <= 1e-7 * (s / hidden));
  }
  // One long sum over a leading axis (the [r, inner] path) and over everything.
  const int64_t n = 1 << 20;
  auto ones = random_floats(n, rng, 0.5f, 1.5f);
  double exact = 0;
  for (float v : ones) exact += v;
  auto all = run_reduce(r, "ReduceSum", make_value(DType::kF32, {n / 4, 4}, ones), {}, false, true);
  REQUIRE(all.is_ok());
  REQUIRE(all.value()[0].shape().empty());
  CHECK(std::fabs(all.value()[0].data<float>()[0] - exact) <= 1e-7 * exact);
  auto cols = run_reduce(r, "ReduceSum", make_value(DType::kF32, {n / 4, 4}, ones), {0}, false, true);
  REQUIRE(cols.is_ok());
  double c0 = 0;
  for (int64_t i = 0; i < n; i += 4) c0 += ones[i];
  CHECK(std::fabs(cols.value()[0].data<float>()[0] - c0) <= 1e-7 * c0);
}

TEST_CASE("Reduce on float64, int32, int64 and float16", "[runtime][reduce]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> u(-1000, 1000);
  const std::vector<int64_t> shape{3, 17, 5};
  std::vector<int32_t> i32(255);
  for (auto& v : i32) v = u(rng);
  const std::vector<int64_t> i64(i32.begin(), i32.end());
  const std::vector<double> f64(i32.begin(), i32.end());
  const std::vector<double> xd(i32.begin(), i32.end());
  const std::vector<bool> red{false, true, false};
  const auto g = groups(xd, shape, red);
  for (const char* op : {"ReduceSum", "ReduceMax", "ReduceMin", "ReduceMean"}) {
    for (const Value& x : {make_value(DType::kI32, shape, i32), make_value(DType::kI64, shape, i64),
                           make_value(DType::kF64, shape, f64)}) {
      INFO(op << " " << dtype_name(x.dtype()));
      auto out = run_reduce(r, op, x, {1}, false, true);
      REQUIRE(out.is_ok());
      REQUIRE(out.value()[0].dtype() == x.dtype());
      const auto got = as_doubles(out.value()[0]);
      for (size_t i = 0; i < g.size(); ++i) {
        double ref = ref_op(op, g[i]);
        if (x.dtype() != DType::kF64 && std::string(op) == "ReduceMean") ref = std::trunc(ref);  // integer division
        REQUIRE(got[i] == ref);
      }
    }
  }
  // float16 runs through float32 and comes back float16.
  std::vector<uint16_t> h(255);
  for (size_t i = 0; i < h.size(); ++i) h[i] = float_to_half(static_cast<float>(i32[i]) / 64.f);
  auto out = run_reduce(r, "ReduceMean", make_value(DType::kF16, shape, h), {1}, true, false);
  REQUIRE(out.is_ok());
  REQUIRE(out.value()[0].dtype() == DType::kF16);
  REQUIRE(out.value()[0].shape() == std::vector<int64_t>{3, 1, 5});
  const auto got = as_doubles(out.value()[0]);
  for (size_t i = 0; i < g.size(); ++i) CHECK(std::fabs(got[i] - ref_op("ReduceMean", g[i]) / 64) <= 1e-3 * std::fabs(got[i]) + 1e-3);
}

TEST_CASE("Reduce empty axes, noop_with_empty_axes and errors", "[runtime][reduce]") {
  const KernelRegistry& r = builtin_kernels();
  const std::vector<float> xf{1, 2, 3, 4, 5, 6};
  const Value x = make_value(DType::kF32, {2, 3}, xf);
  auto noop = run_reduce(r, "ReduceSum", x, {}, true, true, 1);
  REQUIRE(noop.is_ok());
  CHECK(noop.value()[0].shape() == x.shape());
  CHECK(noop.value()[0].data<float>()[5] == 6.f);
  auto all = run_reduce(r, "ReduceSum", x, {}, true, true, 0);
  REQUIRE(all.is_ok());
  CHECK(all.value()[0].shape() == std::vector<int64_t>{1, 1});
  CHECK(all.value()[0].data<float>()[0] == 21.f);
  // Omitted axes input: reduce all.
  auto omitted = run_node(r, make_node("ReduceMax", 2, 1, {Attribute::make_int("keepdims", 0)}), {x, Value()}, 18);
  REQUIRE(omitted.is_ok());
  CHECK(omitted.value()[0].shape().empty());
  CHECK(omitted.value()[0].data<float>()[0] == 6.f);
  // Reducing a zero-size axis yields the identity of the reduction.
  auto empty = run_reduce(r, "ReduceMax", make_value<float>(DType::kF32, {2, 0}, {}), {1}, false, false);
  REQUIRE(empty.is_ok());
  CHECK(empty.value()[0].data<float>()[1] == -INFINITY);

  CHECK(!run_reduce(r, "ReduceMean", x, {2}, true, false).is_ok());   // axis out of range
  CHECK(!run_reduce(r, "ReduceMean", x, {-3}, true, true).is_ok());
  CHECK(!run_reduce(r, "ReduceSum", x, {1, -1}, true, true).is_ok());  // repeated axis
  const Value fa = make_value<float>(DType::kF32, {1}, {0.f});
  CHECK(!run_node(r, make_node("ReduceSum", 2, 1), {x, fa}, 13).is_ok());  // float axes
  CHECK(!run_reduce(r, "ReduceSum", make_value<bool>(DType::kBool, {2}, {true, false}), {0}, true, false).is_ok());
}

TEST_CASE("ArgMax / ArgMin with ties, keepdims and select_last_index", "[runtime][reduce]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(21);
  std::uniform_int_distribution<int> u(-4, 4);  // many ties
  for (int64_t len : {1, 3, 17, 63, 257})
    for (int axis = 0; axis < 3; ++axis)
      for (const char* op : {"ArgMax", "ArgMin"})
        for (int keep = 0; keep < 2; ++keep)
          for (int last = 0; last < 2; ++last) {
            std::vector<int64_t> shape{2, 3, 5};
            shape[axis] = len;
            std::vector<float> xf(static_cast<size_t>(shape_numel(shape)));
            for (auto& v : xf) v = static_cast<float>(u(rng));
            const int64_t ax = axis == 2 && keep ? -1 : axis;
            auto out = run_node(r, make_node(op, 1, 1, {Attribute::make_int("axis", ax), Attribute::make_int("keepdims", keep),
                                                         Attribute::make_int("select_last_index", last)}),
                                {make_value(DType::kF32, shape, xf)}, 13);
            INFO(op << " len " << len << " axis " << axis << " keep " << keep << " last " << last);
            REQUIRE(out.is_ok());
            const Value& y = out.value()[0];
            REQUIRE(y.dtype() == DType::kI64);
            std::vector<int64_t> want = shape;
            if (keep) want[axis] = 1;
            else want.erase(want.begin() + axis);
            REQUIRE(y.shape() == want);
            const int64_t outer = axis == 0 ? 1 : axis == 1 ? shape[0] : shape[0] * shape[1];
            const int64_t inner = shape_numel(shape) / outer / len;
            for (int64_t o = 0; o < outer; ++o)
              for (int64_t i = 0; i < inner; ++i) {
                int64_t best = 0;
                for (int64_t k = 1; k < len; ++k) {
                  const float v = xf[(o * len + k) * inner + i], b = xf[(o * len + best) * inner + i];
                  const bool better = std::string(op) == "ArgMax" ? v > b : v < b;
                  if (better || (last && v == b)) best = k;
                }
                REQUIRE(y.data<int64_t>()[o * inner + i] == best);
              }
          }
  const Value x = make_value<int32_t>(DType::kI32, {2, 2}, {1, 7, 9, 3});
  auto ai = run_node(r, make_node("ArgMax", 1, 1, {Attribute::make_int("axis", 1)}), {x}, 13);
  REQUIRE(ai.is_ok());
  CHECK(ai.value()[0].data<int64_t>()[0] == 1);
  CHECK(ai.value()[0].data<int64_t>()[1] == 0);
  CHECK(!run_node(r, make_node("ArgMax", 1, 1, {Attribute::make_int("axis", 2)}), {x}, 13).is_ok());
  CHECK(!run_node(r, make_node("ArgMin", 1, 1, {Attribute::make_int("axis", 1)}),
                  {make_value<float>(DType::kF32, {2, 0}, {})}, 13).is_ok());
}

TEST_CASE("CumSum: axis, exclusive, reverse, float32 and int64", "[runtime][reduce]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(4);
  for (int64_t len : {1, 3, 17, 63, 257})
    for (int axis = 0; axis < 3; ++axis)
      for (int excl = 0; excl < 2; ++excl)
        for (int rev = 0; rev < 2; ++rev) {
          std::vector<int64_t> shape{3, 2, 5};
          shape[axis] = len;
          const auto xf = random_floats(shape_numel(shape), rng);
          std::vector<int64_t> xi(xf.size());
          for (size_t i = 0; i < xi.size(); ++i) xi[i] = static_cast<int64_t>(xf[i] * 1e6);
          const int64_t outer = axis == 0 ? 1 : axis == 1 ? shape[0] : shape[0] * shape[1];
          const int64_t inner = shape_numel(shape) / outer / len;
          const Value axis_v = axis == 1 ? make_value<int32_t>(DType::kI32, {}, {1}) : make_value<int64_t>(DType::kI64, {1}, {axis - 3});
          const Node node = make_node("CumSum", 2, 1, {Attribute::make_int("exclusive", excl), Attribute::make_int("reverse", rev)});
          auto of = run_node(r, node, {make_value(DType::kF32, shape, xf), axis_v}, 14);
          auto oi = run_node(r, node, {make_value(DType::kI64, shape, xi), axis_v}, 14);
          INFO("len " << len << " axis " << axis << " exclusive " << excl << " reverse " << rev);
          REQUIRE(of.is_ok());
          REQUIRE(oi.is_ok());
          for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i) {
              double s = 0;
              int64_t si = 0;
              for (int64_t step = 0; step < len; ++step) {
                const int64_t k = rev ? len - 1 - step : step;
                const int64_t at = (o * len + k) * inner + i;
                if (!excl) s += xf[at], si += xi[at];
                REQUIRE(std::fabs(of.value()[0].data<float>()[at] - s) <= 1e-6 * std::fabs(s) + 1e-7);
                REQUIRE(oi.value()[0].data<int64_t>()[at] == si);
                if (excl) s += xf[at], si += xi[at];
              }
            }
        }
  const Value x = make_value<float>(DType::kF32, {3}, {1, 2, 3});
  CHECK(!run_node(r, make_node("CumSum", 2, 1), {x, make_value<int64_t>(DType::kI64, {}, {1})}, 14).is_ok());
  CHECK(!run_node(r, make_node("CumSum", 2, 1), {x, make_value<int64_t>(DType::kI64, {2}, {0, 0})}, 14).is_ok());
  CHECK(!run_node(r, make_node("CumSum", 2, 1), {x, Value()}, 14).is_ok());
}

TEST_CASE("TopK: largest/smallest, ties keep the lower index, K input and attribute", "[runtime][reduce]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(8);
  std::uniform_int_distribution<int> u(-20, 20);
  for (int64_t len : {1, 3, 17, 63, 257})
    for (int axis = 0; axis < 3; ++axis)
      for (int largest = 0; largest < 2; ++largest)
        for (int64_t k : {int64_t{1}, len / 2, len}) {
          std::vector<int64_t> shape{2, 3, 4};
          shape[axis] = len;
          std::vector<float> xf(static_cast<size_t>(shape_numel(shape)));
          for (auto& v : xf) v = static_cast<float>(u(rng)) / 4.f;
          auto out = run_node(r, make_node("TopK", 2, 2, {Attribute::make_int("axis", axis - 3), Attribute::make_int("largest", largest)}),
                              {make_value(DType::kF32, shape, xf), make_value<int64_t>(DType::kI64, {1}, {k})}, 11);
          INFO("len " << len << " axis " << axis << " largest " << largest << " k " << k);
          REQUIRE(out.is_ok());
          std::vector<int64_t> want = shape;
          want[axis] = k;
          REQUIRE(out.value()[0].shape() == want);
          REQUIRE(out.value()[1].shape() == want);
          const int64_t outer = axis == 0 ? 1 : axis == 1 ? shape[0] : shape[0] * shape[1];
          const int64_t inner = shape_numel(shape) / outer / len;
          for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i) {
              std::vector<int64_t> idx(len);
              std::iota(idx.begin(), idx.end(), 0);
              auto val = [&](int64_t j) { return xf[(o * len + j) * inner + i]; };
              std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return largest ? val(a) > val(b) : val(a) < val(b); });
              for (int64_t j = 0; j < k; ++j) {
                const int64_t at = (o * k + j) * inner + i;
                REQUIRE(out.value()[1].data<int64_t>()[at] == idx[j]);
                REQUIRE(out.value()[0].data<float>()[at] == val(idx[j]));
              }
            }
        }
  // Opset < 10: k is an attribute. int64 input.
  const Value xi = make_value<int64_t>(DType::kI64, {5}, {4, 9, 1, 9, 3});
  auto a = run_node(r, make_node("TopK", 1, 2, {Attribute::make_int("k", 2)}), {xi}, 9);
  REQUIRE(a.is_ok());
  CHECK(a.value()[0].data<int64_t>()[0] == 9);
  CHECK(a.value()[1].data<int64_t>()[0] == 1);
  CHECK(a.value()[1].data<int64_t>()[1] == 3);
  CHECK(!run_node(r, make_node("TopK", 2, 2), {xi, make_value<int64_t>(DType::kI64, {1}, {6})}, 11).is_ok());
  CHECK(!run_node(r, make_node("TopK", 2, 2), {xi, make_value<int64_t>(DType::kI64, {1}, {-1})}, 11).is_ok());
  CHECK(!run_node(r, make_node("TopK", 2, 2, {Attribute::make_int("axis", 1)}), {xi, make_value<int64_t>(DType::kI64, {1}, {1})}, 11).is_ok());
}
