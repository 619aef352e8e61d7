// The activation collector on stories260K with TinyStories windows: ranges for every MatMul
// input (activations, weights, and attention's folded K transpose), equal to brute-force
// min/max; SmoothQuant per-channel abs-max of the right length; per-name factories; errors.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>

#include "calibration/activation_collector.h"
#include "formats/llama2c_import.h"
#include "formats/llama2c_tokenizer.h"
#include "tests/support/test_data.h"
#include "tools/calibration_loader.h"

using namespace llmc;
using namespace llmc::calib;
using namespace llmc::testing;

namespace {

struct Fixture {
  std::shared_ptr<const Model> model;
  std::unique_ptr<rt::Session> session;
  CalibrationSet set;
};

// Returns false (after data_path's skip/fail) when the real data is missing.
bool load(Fixture& f, int64_t samples = 3, int64_t seq_len = 24) {
  const std::string model_path = data_path("llama2c/stories260K.bin");
  const std::string tok_path = data_path("llama2c/tok512.bin");
  const std::string text_path = data_path("corpora/tinystories_val_prefix.txt");
  if (model_path.empty() || tok_path.empty() || text_path.empty()) return false;
  auto m = import_llama2c(model_path);
  REQUIRE(m.is_ok());
  f.model = std::make_shared<const Model>(std::move(m).value());
  auto s = rt::Session::create(f.model, {2});
  REQUIRE(s.is_ok());
  f.session = std::move(s).value();
  auto tok = Llama2cTokenizer::from_file(tok_path);
  REQUIRE(tok.is_ok());
  CalibrationOptions o;
  o.num_samples = samples;
  o.seq_len = seq_len;
  o.max_tokens = 5000;
  auto set = cli::load_calibration_file(*f.model, text_path, &*tok, o);
  REQUIRE(set.is_ok());
  f.set = std::move(set).value();
  return true;
}

const Node* producer_of(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    for (const auto& o : n.outputs)
      if (o == name) return &n;
  return nullptr;
}

}  // namespace

TEST_CASE("collector returns min/max of every MatMul input on stories260K", "[calibration][collector]") {
  Fixture f;
  if (!load(f)) return;
  const Graph& g = f.model->graph;
  const auto names = node_input_names(g, "MatMul", /*include_initializers=*/true);
  REQUIRE(names.size() >= 46);
  CollectorOptions o;
  o.channel_absmax = true;
  size_t progress_calls = 0;
  o.progress = [&](size_t done, size_t total) {
    ++progress_calls;
    CHECK(total == 3);
    CHECK(done <= total);
  };
  auto stats = collect_activation_stats(*f.session, f.set, names, o);
  REQUIRE(stats.is_ok());
  CHECK(stats->samples == 3);
  CHECK(progress_calls == 3);
  CHECK(stats->ranges.size() == names.size());
  CHECK(stats->channel_ranges.empty());  // per-tensor observers

  int transposed = 0;
  for (const auto& name : names) {
    INFO(name);
    REQUIRE(stats->ranges.count(name));
    const QuantRange r = stats->ranges.at(name);
    CHECK(r.min <= r.max);
    if (const Tensor* w = g.find_initializer(name)) {
      // A weight: its exact min/max, and one abs-max per column (the last axis).
      const float* p = w->data_as<float>();
      CHECK(r.min == *std::min_element(p, p + w->numel()));
      CHECK(r.max == *std::max_element(p, p + w->numel()));
      CHECK(static_cast<int64_t>(stats->channel_absmax.at(name).size()) == w->dims().back());
      continue;
    }
    // An activation: brute-force min/max over the samples (a folded Transpose's values are its
    // input's values, rearranged).
    const Node* prod = producer_of(g, name);
    std::string tap = name;
    if (prod && prod->op_type == "Transpose") tap = prod->inputs[0], ++transposed;
    float lo = INFINITY, hi = -INFINITY;
    int64_t last_dim = -1;
    for (const auto& feeds : f.set.samples) {
      auto v = f.session->run(feeds, {tap});
      REQUIRE(v.is_ok());
      REQUIRE(!(*v)[0].empty());
      const float* p = (*v)[0].data<float>();
      lo = std::min(lo, *std::min_element(p, p + (*v)[0].numel()));
      hi = std::max(hi, *std::max_element(p, p + (*v)[0].numel()));
      last_dim = (*v)[0].dim(-1);
    }
    CHECK(r.min == lo);
    CHECK(r.max == hi);
    if (prod && prod->op_type == "Transpose") continue;
    CHECK(static_cast<int64_t>(stats->channel_absmax.at(name).size()) == last_dim);
  }
  CHECK(transposed >= 5);  // at least attention's K^T in each of the 5 layers

  // The activation feeding each projection has one abs-max per input feature of its weight.
  for (const Node& n : g.nodes) {
    if (n.op_type != "MatMul") continue;
    const Tensor* w = g.find_initializer(n.inputs[1]);
    if (!w || g.find_initializer(n.inputs[0])) continue;
    const auto& a = stats->channel_absmax.at(n.inputs[0]);
    CHECK(static_cast<int64_t>(a.size()) == w->dims()[0]);
    const QuantRange r = stats->ranges.at(n.inputs[0]);
    CHECK(*std::max_element(a.begin(), a.end()) == std::max(std::fabs(r.min), std::fabs(r.max)));
  }
}

TEST_CASE("collector: histogram observers, grouped runs, per-name factories", "[calibration][collector]") {
  Fixture f;
  if (!load(f, 4, 16)) return;
  const Graph& g = f.model->graph;
  const auto acts = node_input_names(g, "MatMul", /*include_initializers=*/false);
  for (const auto& a : acts) CHECK(!g.find_initializer(a));
  auto minmax = collect_activation_stats(*f.session, f.set, acts);
  REQUIRE(minmax.is_ok());
  for (const char* method : {"percentile", "entropy", "mse"}) {
    INFO(method);
    CollectorOptions o;
    o.observer.kind = parse_observer_kind(method).value();
    auto all = collect_activation_stats(*f.session, f.set, acts, o);
    REQUIRE(all.is_ok());
    o.taps_per_run = 7;  // the same statistics, fewer taps alive per run
    auto grouped = collect_activation_stats(*f.session, f.set, acts, o);
    REQUIRE(grouped.is_ok());
    for (const auto& name : acts) {
      const QuantRange a = all->ranges.at(name), b = grouped->ranges.at(name), mm = minmax->ranges.at(name);
      CHECK(a.min == b.min);
      CHECK(a.max == b.max);
      CHECK(a.min >= mm.min);  // clipped ranges stay inside the observed one
      CHECK(a.max <= mm.max);
    }
  }
  // Weights per output channel (axis 1 of [in, out]), activations per tensor.
  ObserverFactory factory = [&](const std::string& name) {
    ObserverOptions o;
    if (g.find_initializer(name)) o.axis = 1;
    return make_observer(o);
  };
  const auto all_inputs = node_input_names(g, "MatMul", true);
  auto mixed = collect_activation_stats(*f.session, f.set, all_inputs, factory);
  REQUIRE(mixed.is_ok());
  for (const auto& name : all_inputs) {
    const Tensor* w = g.find_initializer(name);
    CHECK(mixed->channel_ranges.count(name) == (w ? 1u : 0u));
    if (w) CHECK(static_cast<int64_t>(mixed->channel_ranges.at(name).size()) == w->dims()[1]);
  }
}

TEST_CASE("collector errors name the tensor", "[calibration][collector]") {
  Fixture f;
  if (!load(f, 2, 8)) return;
  auto unknown = collect_activation_stats(*f.session, f.set, {"no_such_value"});
  REQUIRE(!unknown.is_ok());
  CHECK(unknown.status().message().find("no_such_value") != std::string::npos);
  auto empty = collect_activation_stats(*f.session, CalibrationSet{}, {"input_ids"});
  REQUIRE(!empty.is_ok());
  CHECK(empty.status().message().find("empty") != std::string::npos);
  // input_ids is i64: observers take f32, and the error says which tensor.
  auto ints = collect_activation_stats(*f.session, f.set, {"input_ids"});
  REQUIRE(!ints.is_ok());
  CHECK(ints.status().message().find("'input_ids'") != std::string::npos);
  CHECK(ints.status().message().find("f32") != std::string::npos);
  CollectorOptions bad;
  bad.observer.num_bins = 10;
  CHECK(!collect_activation_stats(*f.session, f.set, {"input_ids"}, bad).is_ok());
}
