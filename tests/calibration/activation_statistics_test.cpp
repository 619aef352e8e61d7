// The activation-statistics service on stories260K with TinyStories windows: Gram, abs-max,
// mean |x| and L2 norms equal a float64 reference accumulated here from the tapped activations
// (1e-9 relative), histograms count every value, observer ranges equal the collector's, the
// cache answers a second request without a stream and is dropped by invalidate() or a changed
// graph, 1 and 2 threads give the same bytes, and bad requests name what is wrong.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "calibration/activation_collector.h"
#include "calibration/activation_statistics.h"
#include "formats/model_loader.h"
#include "runtime/session.h"
#include "tests/support/pass_fixtures.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::calib;
using namespace llmc::testing;

namespace {

// The real stories260K with a calibration set of windows from the TinyStories text.
using Fixture = StoriesFixture;
bool load(Fixture& f, int64_t samples = 4, int64_t seq_len = 32) { return load_stories(f, samples, seq_len); }

// MatMul inputs the runtime materialises (not a Transpose it folds into the MatMul): the
// projections' inputs ([1, seq, dim] and [1, seq, hidden]) and attention's Q and probabilities
// ([1, heads, seq, ...]: rows are heads x positions).
std::vector<std::string> tapped_inputs(const Graph& g) {
  std::vector<std::string> out;
  for (const auto& name : node_input_names(g, "MatMul", false)) {
    bool transposed = false;
    for (const Node& n : g.nodes)
      if (!n.outputs.empty() && n.outputs[0] == name) transposed = n.op_type == "Transpose";
    if (!transposed) out.push_back(name);
  }
  return out;
}

struct Reference {
  int64_t channels = -1, rows = 0;
  std::vector<double> absmax, sum_abs, sum_sq, gram;
};

// Naive float64 sums over every row of every sample, in order, from the session's own taps.
std::map<std::string, Reference> reference(const Fixture& f, const std::vector<std::string>& names) {
  auto session = rt::Session::create(std::make_shared<const Model>(f.model), {2});
  REQUIRE(session.is_ok());
  std::map<std::string, Reference> refs;
  for (const auto& feeds : f.calib.samples) {
    auto values = (*session)->run(feeds, names);
    REQUIRE(values.is_ok());
    for (size_t k = 0; k < names.size(); ++k) {
      const rt::Value& v = (*values)[k];
      REQUIRE(v.dtype() == DType::kF32);
      Reference& r = refs[names[k]];
      const int64_t c = v.dim(-1), rows = v.numel() / c;
      if (r.channels < 0) {
        r.channels = c;
        r.absmax.assign(c, 0.0);
        r.sum_abs.assign(c, 0.0);
        r.sum_sq.assign(c, 0.0);
        r.gram.assign(c * c, 0.0);
      }
      REQUIRE(r.channels == c);
      const float* x = v.data<float>();
      for (int64_t row = 0; row < rows; ++row) {
        const float* xr = x + row * c;
        for (int64_t i = 0; i < c; ++i) {
          const double xi = xr[i];
          r.absmax[i] = std::max(r.absmax[i], std::fabs(xi));
          r.sum_abs[i] += std::fabs(xi);
          r.sum_sq[i] += xi * xi;
          for (int64_t j = 0; j < c; ++j) r.gram[i * c + j] += xi * static_cast<double>(xr[j]);
        }
      }
      r.rows += rows;
    }
  }
  return refs;
}

double relative(double a, double b, double scale) { return std::fabs(a - b) / std::max(scale, 1e-300); }

}  // namespace

TEST_CASE("statistics service matches a float64 reference on stories260K", "[calibration][statistics]") {
  Fixture f;
  if (!load(f)) return;
  const auto names = tapped_inputs(f.model.graph);
  REQUIRE(names.size() >= 20);  // 4 projection inputs and 2 attention inputs per layer, and lm_head's
  ActivationStatistics service(&f.calib, 2);
  StatisticsRequest request;
  request.values = names;
  request.kinds = kAbsMax | kMeanAbs | kL2Norm | kGram | kHistogram;
  request.histogram_bins = 512;
  auto stats = service.get(f.model, request);
  REQUIRE(stats.is_ok());
  const auto refs = reference(f, names);
  double worst_gram = 0, worst_norm = 0;
  for (const auto& name : names) {
    INFO(name);
    const ChannelStatistics& s = *stats->at(name);
    const Reference& r = refs.at(name);
    REQUIRE(s.channels == r.channels);
    CHECK(s.rows == r.rows);
    CHECK(s.kinds == request.kinds);
    const int64_t c = s.channels;
    REQUIRE(s.gram.size() == static_cast<size_t>(c * c));
    REQUIRE(s.absmax.size() == static_cast<size_t>(c));
    for (int64_t i = 0; i < c; ++i) {
      CHECK(s.absmax[i] == r.absmax[i]);  // a maximum is exact
      worst_norm = std::max(worst_norm, relative(s.mean_abs[i], r.sum_abs[i] / r.rows, r.sum_abs[i] / r.rows));
      worst_norm = std::max(worst_norm, relative(s.l2_norm[i], std::sqrt(r.sum_sq[i]), std::sqrt(r.sum_sq[i])));
      // Off the diagonal a sum can cancel to ~0: relative to sqrt(G_ii G_jj), which bounds |G_ij|.
      for (int64_t j = 0; j < c; ++j) {
        const double scale = std::sqrt(r.gram[i * c + i] * r.gram[j * c + j]);
        worst_gram = std::max(worst_gram, relative(s.gram[i * c + j], r.gram[i * c + j], scale));
        CHECK(s.gram[i * c + j] == s.gram[j * c + i]);
      }
    }
    // Histogram: every value counted once, over a power-of-two range covering the largest |x|.
    REQUIRE(s.histogram.size() == 512u);
    double total = 0;
    for (double n : s.histogram) total += n;
    CHECK(total == double(s.rows * c));
    const double amax = *std::max_element(s.absmax.begin(), s.absmax.end());
    CHECK(s.hist_max >= amax);
    CHECK(s.hist_max < 2 * amax);
    CHECK(std::exp2(std::round(std::log2(s.hist_max))) == s.hist_max);
  }
  INFO("largest relative differences: Gram " << worst_gram << ", mean |x| and L2 " << worst_norm);
  CHECK(worst_gram <= 1e-9);
  CHECK(worst_norm <= 1e-9);
}

TEST_CASE("statistics service ranges equal the collector's and folded transposes are measured", "[calibration][statistics]") {
  Fixture f;
  if (!load(f, 3, 24)) return;
  const auto names = node_input_names(f.model.graph, "MatMul", false);  // with attention's K transpose
  for (ObserverKind kind : {ObserverKind::kMinMax, ObserverKind::kEntropy, ObserverKind::kPercentile}) {
    INFO(observer_kind_name(kind));
    ObserverOptions o;
    o.kind = kind;
    o.symmetric = kind == ObserverKind::kPercentile;
    auto session = rt::Session::create(std::make_shared<const Model>(f.model), {2});
    REQUIRE(session.is_ok());
    CollectorOptions co;
    co.observer = o;
    auto collected = collect_activation_stats(**session, f.calib, names, co);
    REQUIRE(collected.is_ok());
    ActivationStatistics service(&f.calib, 2);
    StatisticsRequest request;
    request.values = names;
    request.kinds = kRange | kAbsMax;
    request.observer = o;
    auto stats = service.get(f.model, request);
    REQUIRE(stats.is_ok());
    for (const auto& name : names) {
      INFO(name);
      const ChannelStatistics& s = *stats->at(name);
      CHECK(s.range.min == collected->ranges.at(name).min);
      CHECK(s.range.max == collected->ranges.at(name).max);
      CHECK(std::max(std::fabs(s.range.min), std::fabs(s.range.max)) <= *std::max_element(s.absmax.begin(), s.absmax.end()));
    }
  }
}

TEST_CASE("statistics service caches until invalidate or a changed graph", "[calibration][statistics]") {
  Fixture f;
  if (!load(f, 2, 16)) return;
  const auto names = tapped_inputs(f.model.graph);
  ActivationStatistics service(&f.calib, 2);
  size_t samples_streamed = 0;
  service.progress = [&](size_t done, size_t total) {
    CHECK(total == 2);
    ++samples_streamed;
  };
  CHECK(service.samples() == 2);
  StatisticsRequest request;
  request.values = names;
  request.kinds = kAbsMax | kGram;
  auto first = service.get(f.model, request);
  REQUIRE(first.is_ok());
  CHECK(service.streams() == 1);
  CHECK(samples_streamed == 2);
  auto again = service.get(f.model, request);  // everything cached: no stream, the same objects
  REQUIRE(again.is_ok());
  CHECK(service.streams() == 1);
  CHECK(samples_streamed == 2);
  CHECK(again->at(names[0]) == first->at(names[0]));
  request.values = {names[1]};
  request.kinds = kAbsMax;  // a subset
  REQUIRE(service.get(f.model, request).is_ok());
  CHECK(service.streams() == 1);
  request.kinds = kAbsMax | kL2Norm;  // a new kind: one more stream, the same object, absmax untouched
  const std::vector<double> absmax = first->at(names[1])->absmax;
  auto more = service.get(f.model, request);
  REQUIRE(more.is_ok());
  CHECK(service.streams() == 2);
  CHECK(more->at(names[1]) == first->at(names[1]));
  CHECK(more->at(names[1])->absmax == absmax);
  CHECK(more->at(names[1])->kinds == (kAbsMax | kGram | kL2Norm));
  service.invalidate();
  REQUIRE(service.get(f.model, request).is_ok());
  CHECK(service.streams() == 3);
  // A graph with another initializer is another graph: measured again without invalidate().
  Model changed = f.model;
  changed.graph.initializers.push_back(Tensor::from_vector("extra", DType::kF32, {1}, std::vector<float>{1.f}));
  REQUIRE(service.get(changed, request).is_ok());
  CHECK(service.streams() == 4);
  REQUIRE(service.get(changed, request).is_ok());
  CHECK(service.streams() == 4);
}

TEST_CASE("statistics service gives the same bytes on 1 and 2 threads", "[calibration][statistics]") {
  Fixture f;
  if (!load(f, 2, 40)) return;
  const auto names = tapped_inputs(f.model.graph);
  StatisticsRequest request;
  request.values = names;
  request.kinds = kAbsMax | kMeanAbs | kL2Norm | kGram;
  ActivationStatistics one(&f.calib, 1), two(&f.calib, 2);
  auto a = one.get(f.model, request);
  auto b = two.get(f.model, request);
  REQUIRE(a.is_ok());
  REQUIRE(b.is_ok());
  for (const auto& name : names) {
    INFO(name);
    const ChannelStatistics& x = *a->at(name);
    const ChannelStatistics& y = *b->at(name);
    REQUIRE(x.gram.size() == y.gram.size());
    CHECK(std::memcmp(x.gram.data(), y.gram.data(), x.gram.size() * sizeof(double)) == 0);
    CHECK(x.mean_abs == y.mean_abs);
    CHECK(x.l2_norm == y.l2_norm);
  }
}

TEST_CASE("statistics service errors name the problem", "[calibration][statistics]") {
  Fixture f;
  if (!load(f, 2, 8)) return;
  StatisticsRequest request;
  request.values = {"no_such_value"};
  ActivationStatistics none(nullptr, 1);
  auto a = none.get(f.model, request);
  REQUIRE(!a.is_ok());
  CHECK(a.status().message().find("calibration samples") != std::string::npos);
  CHECK(none.samples() == 0);
  const CalibrationSet empty_set;
  ActivationStatistics empty(&empty_set, 1);
  auto e = empty.get(f.model, request);
  REQUIRE(!e.is_ok());
  CHECK(e.status().message().find("empty") != std::string::npos);
  ActivationStatistics service(&f.calib, 1);
  auto unknown = service.get(f.model, request);
  REQUIRE(!unknown.is_ok());
  CHECK(unknown.status().message().find("no_such_value") != std::string::npos);
  request.values = {"input_ids"};  // int64: statistics take float32, and the error names the tensor
  auto ints = service.get(f.model, request);
  REQUIRE(!ints.is_ok());
  CHECK(ints.status().message().find("'input_ids'") != std::string::npos);
  CHECK(ints.status().message().find("f32") != std::string::npos);
  request.values = tapped_inputs(f.model.graph);
  request.kinds = 0;
  CHECK(!service.get(f.model, request).is_ok());
  request.kinds = kHistogram;
  request.histogram_bins = 10;
  CHECK(!service.get(f.model, request).is_ok());
  request.kinds = kRange;
  request.observer.num_bins = 10;
  CHECK(!service.get(f.model, request).is_ok());
  CHECK(service.streams() == 0);  // no request completed a pass over the samples
}
