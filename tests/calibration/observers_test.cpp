// Observers and histogram searches against brute force on seeded random data: min/max exact,
// percentile within a bin of the sorted quantile, entropy between p99 and absmax, mse at the
// brute-force optimum; streaming in 1 or 100 chunks; per-channel; refusals.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "calibration/observers.h"

using namespace llmc;
using namespace llmc::calib;

namespace {

std::vector<float> gaussian(size_t n, uint64_t seed, float sigma = 1.f, float mean = 0.f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(mean, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Gaussian body plus a few large outliers of both signs.
std::vector<float> gaussian_with_outliers(size_t n, uint64_t seed) {
  auto v = gaussian(n, seed);
  std::mt19937_64 rng(seed + 1);
  std::uniform_real_distribution<float> u(15.f, 40.f);
  for (int i = 0; i < 30; ++i) v[rng() % n] = (i % 2 ? -1.f : 1.f) * u(rng);
  return v;
}

std::unique_ptr<Observer> make(ObserverKind kind, std::optional<int> axis = std::nullopt, double pct = 99.99,
                               bool symmetric = false) {
  ObserverOptions o;
  o.kind = kind;
  o.axis = axis;
  o.percentile = pct;
  o.symmetric = symmetric;
  auto obs = make_observer(o);
  REQUIRE(obs.is_ok());
  return std::move(obs).value();
}

QuantRange feed(Observer& obs, const std::vector<float>& v, int chunks) {
  const size_t step = (v.size() + chunks - 1) / chunks;
  for (size_t i = 0; i < v.size(); i += step) {
    const size_t n = std::min(step, v.size() - i);
    REQUIRE(obs.observe(v.data() + i, {static_cast<int64_t>(n)}).is_ok());
  }
  auto r = obs.range();
  REQUIRE(r.is_ok());
  return *r;
}

// Exact quantile of sorted data at `fraction` (the ceil(f*N)-th smallest value).
float sorted_quantile(std::vector<float> v, double fraction) {
  std::sort(v.begin(), v.end());
  const size_t k = static_cast<size_t>(std::max(1.0, std::ceil(fraction * v.size()))) - 1;
  return v[std::min(k, v.size() - 1)];
}

// Squared error of symmetric quantisation with threshold t (step t/127, clipped), per value.
double brute_mse(const std::vector<float>& v, double t) {
  const double s = t / 127;
  double e = 0;
  for (float x : v) {
    const double a = std::fabs(static_cast<double>(x));
    const double q = s * std::min(std::floor(a / s + 0.5), 127.0);
    e += (a - q) * (a - q);
  }
  return e / v.size();
}

}  // namespace

TEST_CASE("minmax observer is exact per tensor and per channel", "[calibration][observers]") {
  const int64_t A = 7, B = 33, C = 5;
  auto v = gaussian(A * B * C, 11, 3.f, 0.5f);
  auto per_tensor = make(ObserverKind::kMinMax);
  REQUIRE(per_tensor->observe(v.data(), {A, B, C}).is_ok());
  auto r = per_tensor->range();
  REQUIRE(r.is_ok());
  CHECK(r->min == *std::min_element(v.begin(), v.end()));
  CHECK(r->max == *std::max_element(v.begin(), v.end()));
  CHECK(per_tensor->count() == A * B * C);

  for (int axis : {0, 1, -1}) {
    auto obs = make(ObserverKind::kMinMax, axis);
    REQUIRE(obs->observe(v.data(), {A, B, C}).is_ok());
    auto ranges = obs->channel_ranges();
    REQUIRE(ranges.is_ok());
    const int64_t channels = axis == 0 ? A : axis == 1 ? B : C;
    REQUIRE(static_cast<int64_t>(ranges->size()) == channels);
    for (int64_t c = 0; c < channels; ++c) {
      float lo = std::numeric_limits<float>::infinity(), hi = -lo;
      for (int64_t a = 0; a < A; ++a)
        for (int64_t b = 0; b < B; ++b)
          for (int64_t k = 0; k < C; ++k) {
            const int64_t ch = axis == 0 ? a : axis == 1 ? b : k;
            if (ch != c) continue;
            lo = std::min(lo, v[(a * B + b) * C + k]);
            hi = std::max(hi, v[(a * B + b) * C + k]);
          }
      CHECK((*ranges)[c].min == lo);
      CHECK((*ranges)[c].max == hi);
    }
    // The per-tensor view of a per-channel observer is the envelope.
    CHECK(obs->range()->min == r->min);
    CHECK(obs->range()->max == r->max);
  }
}

TEST_CASE("percentile observer is within one bin of the sorted percentile", "[calibration][observers]") {
  auto v = gaussian(200000, 21, 2.f, 1.f);  // asymmetric around 0
  SECTION("two-sided, of x") {
    auto obs = make(ObserverKind::kPercentile, std::nullopt, 99.9);
    const QuantRange r = feed(*obs, v, 1);
    const double w = static_cast<HistogramObserver&>(*obs).histogram(0).bin_width();
    CHECK(std::fabs(r.min - sorted_quantile(v, 0.0005)) <= w);
    CHECK(std::fabs(r.max - sorted_quantile(v, 0.9995)) <= w);
    CHECK(r.max < *std::max_element(v.begin(), v.end()));
  }
  SECTION("symmetric, of |x|") {
    auto obs = make(ObserverKind::kPercentile, std::nullopt, 99.99, /*symmetric=*/true);
    const QuantRange r = feed(*obs, v, 1);
    std::vector<float> a(v.size());
    std::transform(v.begin(), v.end(), a.begin(), [](float x) { return std::fabs(x); });
    const double w = static_cast<HistogramObserver&>(*obs).histogram(0).bin_width();
    CHECK(std::fabs(r.max - sorted_quantile(a, 0.9999)) <= w);
    CHECK(r.min == std::max(-r.max, *std::min_element(v.begin(), v.end())));
  }
  SECTION("a non-negative tensor keeps min >= 0") {
    std::vector<float> pos(v.size());
    std::transform(v.begin(), v.end(), pos.begin(), [](float x) { return std::fabs(x) + 0.25f; });
    for (bool sym : {false, true}) {
      auto obs = make(ObserverKind::kPercentile, std::nullopt, 99.0, sym);
      const QuantRange r = feed(*obs, pos, 3);
      CHECK(r.min >= 0.25f);
      CHECK(r.max <= *std::max_element(pos.begin(), pos.end()));
    }
  }
}

TEST_CASE("entropy threshold on a Gaussian with outliers lies between p99 and absmax", "[calibration][observers]") {
  auto v = gaussian_with_outliers(100000, 31);
  auto obs = make(ObserverKind::kEntropy);
  const QuantRange r = feed(*obs, v, 1);
  std::vector<float> a(v.size());
  std::transform(v.begin(), v.end(), a.begin(), [](float x) { return std::fabs(x); });
  const float absmax = *std::max_element(a.begin(), a.end());
  const float p99 = sorted_quantile(a, 0.99);
  CHECK(r.max < absmax);
  CHECK(r.max > p99);
  CHECK(r.min == -r.max);

  // Uniform data gains nothing from clipping: the threshold stays near the absmax.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> flat(100000);
  for (auto& x : flat) x = u(rng);
  auto uni = make(ObserverKind::kEntropy);
  const QuantRange ru = feed(*uni, flat, 1);
  CHECK(ru.max >= 0.95f * *std::max_element(flat.begin(), flat.end()));
}

TEST_CASE("mse threshold minimises a brute-force quantisation MSE", "[calibration][observers]") {
  auto v = gaussian_with_outliers(40000, 41);
  auto obs = make(ObserverKind::kMse);
  const QuantRange r = feed(*obs, v, 1);
  const Histogram& h = static_cast<HistogramObserver&>(*obs).histogram(0);
  const double w = h.bin_width();
  // Brute force over the same candidate thresholds (bin edges), on the raw values.
  double best = std::numeric_limits<double>::infinity(), best_t = 0;
  for (int k = 1; k <= h.num_bins(); ++k) {
    if (k * w > 45) break;
    const double e = brute_mse(v, k * w);
    if (e < best) best = e, best_t = k * w;
  }
  CHECK(std::fabs(r.max - best_t) <= w * 1.0001);
  CHECK(brute_mse(v, r.max) <= best * 1.01);
  // The histogram's error model agrees with the raw-data error.
  for (double t : {1.0, 3.0, 6.0, 20.0})
    CHECK(histogram_quantization_mse(h, t, 8) == Approx(brute_mse(v, t)).epsilon(0.03));
}

TEST_CASE("observers give the same ranges for 1 chunk or 100", "[calibration][observers]") {
  auto v = gaussian_with_outliers(50000, 51);
  for (ObserverKind kind : {ObserverKind::kMinMax, ObserverKind::kPercentile, ObserverKind::kEntropy, ObserverKind::kMse}) {
    for (bool sym : {false, true}) {
      INFO(observer_kind_name(kind) << " symmetric " << sym);
      auto one = make(kind, std::nullopt, 99.9, sym), many = make(kind, std::nullopt, 99.9, sym);
      const QuantRange a = feed(*one, v, 1), b = feed(*many, v, 100);
      double w = 0;
      if (kind != ObserverKind::kMinMax) {
        const Histogram& h1 = static_cast<HistogramObserver&>(*one).histogram(0);
        const Histogram& h2 = static_cast<HistogramObserver&>(*many).histogram(0);
        w = h1.bin_width();
        CHECK(h1.range() == h2.range());
        CHECK(h1.counts() == h2.counts());
      }
      CHECK(std::fabs(a.min - b.min) <= w);
      CHECK(std::fabs(a.max - b.max) <= w);
    }
  }
}

TEST_CASE("histogram doubles its range exactly and handles zeros", "[calibration][observers]") {
  for (auto mode : {Histogram::Mode::kAbs, Histogram::Mode::kSigned}) {
    Histogram h(16, mode);
    std::vector<float> zeros(5, 0.f);
    h.add(zeros.data(), 5);  // before any range exists
    CHECK(h.range() == 0);
    h.extend(3.0);
    CHECK(h.range() == 4.0);  // next power of two
    std::vector<float> x{-2.5f, 1.f, 3.f};
    h.add(x.data(), 3);
    h.extend(9.0);
    CHECK(h.range() == 16.0);
    CHECK(h.total() == 8);
    uint64_t sum = 0;
    for (auto c : h.counts()) sum += c;
    CHECK(sum == 8);
    // Zeros sit in the bin starting at 0.
    const int zero_bin = mode == Histogram::Mode::kAbs ? 0 : 8;
    CHECK(h.lower_edge(zero_bin) == 0.0);
    CHECK(h.counts()[zero_bin] >= 5);
    CHECK(histogram_quantile(h, 1.0) >= 3.0);
  }
}

TEST_CASE("per-channel histogram observers keep one histogram per channel", "[calibration][observers]") {
  const int64_t rows = 4000, C = 3;
  std::vector<float> v(rows * C);
  auto g = gaussian(rows * C, 61);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t c = 0; c < C; ++c) v[i * C + c] = g[i * C + c] * static_cast<float>(c + 1);
  auto obs = make(ObserverKind::kPercentile, -1, 99.0);
  REQUIRE(obs->observe(v.data(), {rows, C}).is_ok());
  auto ranges = obs->channel_ranges();
  REQUIRE(ranges.is_ok());
  REQUIRE(ranges->size() == 3);
  for (int64_t c = 0; c < C; ++c) {
    std::vector<float> col(rows);
    for (int64_t i = 0; i < rows; ++i) col[i] = v[i * C + c];
    const double w = static_cast<HistogramObserver&>(*obs).histogram(c).bin_width();
    CHECK(std::fabs((*ranges)[c].max - sorted_quantile(col, 0.995)) <= w);
    CHECK(std::fabs((*ranges)[c].min - sorted_quantile(col, 0.005)) <= w);
  }
  CHECK((*ranges)[2].max > (*ranges)[0].max);
}

TEST_CASE("observers refuse bad input and unknown methods", "[calibration][observers]") {
  auto obs = make(ObserverKind::kEntropy, 1);
  std::vector<float> ok(12, 1.f);
  CHECK(!obs->channel_ranges().is_ok());  // nothing seen yet
  REQUIRE(obs->observe(ok.data(), {3, 4}).is_ok());
  auto changed = obs->observe(ok.data(), {4, 3});
  REQUIRE(!changed.is_ok());
  CHECK(changed.message().find("channels") != std::string::npos);
  CHECK(!obs->observe(ok.data(), {12}).is_ok());  // no axis 1 in a 1-D tensor
  std::vector<float> bad = ok;
  bad[5] = std::nanf("");
  auto nan = make(ObserverKind::kMinMax);
  auto s = nan->observe(bad.data(), {12});
  REQUIRE(!s.is_ok());
  CHECK(s.message().find("non-finite") != std::string::npos);
  CHECK(nan->count() == 0);
  bad[5] = std::numeric_limits<float>::infinity();
  CHECK(!nan->observe(bad.data(), {12}).is_ok());

  auto ints = rt::Value::allocate(DType::kI64, {2});
  auto wrong = nan->observe(ints);
  REQUIRE(!wrong.is_ok());
  CHECK(wrong.message().find("f32") != std::string::npos);

  auto kind = parse_observer_kind("kl");
  REQUIRE(!kind.is_ok());
  CHECK(kind.status().message().find("minmax, percentile, entropy, mse") != std::string::npos);
  for (const char* name : {"minmax", "percentile", "entropy", "mse"}) {
    auto k = parse_observer_kind(name);
    REQUIRE(k.is_ok());
    CHECK(std::string(observer_kind_name(*k)) == name);
  }
  ObserverOptions o;
  o.num_bins = 1000 + 2;
  CHECK(!make_observer(o).is_ok());
  o = ObserverOptions{};
  o.percentile = 0;
  CHECK(!make_observer(o).is_ok());
}
