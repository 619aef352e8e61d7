// prune-wanda on the real stories260K: the mask equals one computed here from float64 input
// norms of the session's own activations (|W| x ||x||2, lowest half of every output row), it
// beats magnitude pruning's perplexity at the same sparsity, and it needs calibration data.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>

#include "ir/graph_utils.h"
#include "tests/support/pass_fixtures.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

TEST_CASE("prune-wanda zeroes the lowest |w| x input norm of every output row", "[passes][prune][wanda][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 4, 64)) return;
  Model pruned = s.model;
  auto r = run_named_pass("prune-wanda", pruned, {}, &s.calib.samples);
  REQUIRE(r.is_ok());
  INFO(r->summary);

  // Reference: float64 sum of x_k^2 over every calibration token of each MatMul's input.
  const Graph& g = s.model.graph;
  const GraphIndex idx(g);
  std::vector<const Node*> mms;
  std::vector<std::string> taps;
  for (const auto& n : g.nodes)
    if (n.op_type == "MatMul" && g.find_initializer(n.inputs[1]) && !idx.is_graph_output(n.outputs[0])) {
      mms.push_back(&n);
      taps.push_back(n.inputs[0]);
    }
  REQUIRE(mms.size() == 35);
  const auto sumsq = activation_sumsq(s.model, s.calib.samples, taps);
  int64_t checked_rows = 0;
  for (const Node* n : mms) {
    const Tensor* before = g.find_initializer(n->inputs[1]);
    const Tensor* after = pruned.graph.find_initializer(n->inputs[1]);
    const int64_t K = before->dims()[0], N = before->dims()[1];
    const auto& ss = sumsq.at(n->inputs[0]);
    for (int64_t col = 0; col < N; ++col) {
      std::vector<std::pair<double, int64_t>> score;
      for (int64_t k = 0; k < K; ++k)
        score.push_back({std::fabs(double(before->data_as<float>()[k * N + col])) * std::sqrt(ss[k]), k});
      std::sort(score.begin(), score.end());
      for (int64_t j = 0; j < K; ++j) {
        const int64_t k = score[j].second;
        const float w = after->data_as<float>()[k * N + col];
        if (j < K / 2) REQUIRE(w == 0.f);
        else REQUIRE(w == before->data_as<float>()[k * N + col]);
      }
      ++checked_rows;
    }
  }
  CHECK(checked_rows > 0);
}

TEST_CASE("prune-wanda beats magnitude pruning at 50% and 2:4 on stories260K", "[passes][prune][wanda][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 16, 128)) return;
  const double dense = perplexity_of(s.model, s.eval_tokens);
  std::printf("stories260K perplexity over %zu tokens: dense %.4f\n", s.eval_tokens.size(), dense);
  for (const char* setting : {"sparsity", "pattern"}) {
    const PassOptions opts = std::string(setting) == "sparsity" ? PassOptions{{"sparsity", "0.5"}, {"scope", "row"}}
                                                                : PassOptions{{"pattern", "2:4"}};
    Model mag = s.model, wanda = s.model;
    REQUIRE(run_named_pass("prune-magnitude", mag, opts).is_ok());
    REQUIRE(run_named_pass("prune-wanda", wanda, opts, &s.calib.samples).is_ok());
    const double p_mag = perplexity_of(mag, s.eval_tokens), p_wanda = perplexity_of(wanda, s.eval_tokens);
    std::printf("  %-9s magnitude %.4f, wanda %.4f\n", setting == std::string("sparsity") ? "50%" : "2:4", p_mag, p_wanda);
    INFO(setting << ": magnitude " << p_mag << ", wanda " << p_wanda);
    CHECK(p_wanda < p_mag);
    CHECK(p_wanda > dense);
  }
}

TEST_CASE("prune-wanda without calibration data says so", "[passes][prune][wanda][bad-input]") {
  StoriesFixture s;
  if (!load_stories(s, 2, 32)) return;
  Model m = s.model;
  auto r = run_named_pass("prune-wanda", m, {});
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("needs calibration data") != std::string::npos);
}
