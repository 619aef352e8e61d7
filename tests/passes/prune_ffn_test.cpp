// prune-ffn on the real stories260K: the neurons removed are exactly the lowest of
// ||h_j||_2 * ||W_down[j, :]||_2 (float64 norms of the session's own activations here), the
// narrower model computes what the dense one does with those neurons' down rows zeroed, the
// parameter count drops by exactly removed * (2 up columns + 1 down row), and bad input is refused.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <map>

#include "tests/support/pass_fixtures.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

TEST_CASE("prune-ffn removes the lowest-scoring neurons and keeps the others exact", "[passes][prune][ffn][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 4, 64)) return;
  Model pruned = s.model;
  auto r = run_named_pass("prune-ffn", pruned, {{"ratio", "0.25"}}, &s.calib.samples);
  REQUIRE(r.is_ok());
  INFO(r->summary);
  CHECK(r->rewrites == 5);
  const int64_t F = 172, D = 64, removed = 43;  // floor(0.25 * 172)
  CHECK(parameter_count(s.model) - parameter_count(pruned) == 5 * removed * 3 * D);

  // Float64 ||h_j|| over the calibration tokens, h = each down projection's input.
  const Graph& g = s.model.graph;
  std::vector<std::string> downs, taps;
  for (int l = 0; l < 5; ++l) {
    downs.push_back("/model/layers." + std::to_string(l) + "/mlp/down_proj/MatMul");
    taps.push_back(node_named(g, downs.back()).inputs[0]);
  }
  auto sumsq = activation_sumsq(s.model, s.calib.samples, taps);
  for (const auto& t : taps) REQUIRE(sumsq[t].size() == size_t(F));
  Model zeroed = s.model;  // the dense model with the removed neurons' down rows zeroed
  for (size_t l = 0; l < downs.size(); ++l) {
    const Node& down = node_named(g, downs[l]);
    const float* w = g.find_initializer(down.inputs[1])->data_as<float>();
    std::vector<std::pair<double, int64_t>> score;
    for (int64_t j = 0; j < F; ++j) {
      double row = 0;
      for (int64_t c = 0; c < D; ++c) row += double(w[j * D + c]) * w[j * D + c];
      score.push_back({-std::sqrt(sumsq[taps[l]][j]) * std::sqrt(row), j});  // highest first
    }
    std::stable_sort(score.begin(), score.end(), [](auto& a, auto& b) { return a.first < b.first; });
    std::vector<int64_t> keep;
    for (int64_t i = 0; i < F - removed; ++i) keep.push_back(score[i].second);
    std::sort(keep.begin(), keep.end());
    // The pruned down weight is the kept rows, in order; gate and up are the kept columns.
    const Tensor* wd = pruned.graph.find_initializer(down.inputs[1]);
    REQUIRE(wd->dims() == std::vector<int64_t>{F - removed, D});
    for (size_t i = 0; i < keep.size(); ++i)
      REQUIRE(std::memcmp(wd->data_as<float>() + i * D, w + keep[i] * D, D * sizeof(float)) == 0);
    const std::string p = "/model/layers." + std::to_string(l) + "/mlp/";
    for (const char* up : {"gate_proj/MatMul", "up_proj/MatMul"}) {
      const std::string wname = node_named(g, p + up).inputs[1];
      const Tensor* before = g.find_initializer(wname);
      const Tensor* after = pruned.graph.find_initializer(wname);
      REQUIRE(after->dims() == std::vector<int64_t>{D, F - removed});
      for (int64_t k = 0; k < D; ++k)
        for (size_t i = 0; i < keep.size(); ++i)
          REQUIRE(after->data_as<float>()[k * (F - removed) + i] == before->data_as<float>()[k * F + keep[i]]);
    }
    float* z = reinterpret_cast<float*>(zeroed.graph.find_initializer(down.inputs[1])->mutable_data());
    for (int64_t i = F - removed; i < F; ++i) std::fill(z + score[i].second * D, z + (score[i].second + 1) * D, 0.f);
  }
  // Same function: the narrow model and the zeroed dense one differ only by summation order.
  const std::vector<int32_t> tokens(s.eval_tokens.begin(), s.eval_tokens.begin() + 64);
  auto a = decoder_for(pruned)->forward_fresh(tokens);
  auto b = decoder_for(zeroed)->forward_fresh(tokens);
  REQUIRE(a.is_ok());
  REQUIRE(b.is_ok());
  double worst = 0;
  for (int64_t i = 0; i < a->numel(); ++i) worst = std::max(worst, double(std::fabs(a->data<float>()[i] - b->data<float>()[i])));
  CHECK(worst < 1e-4);
  // And it is a real change: perplexity rises but stays finite.
  const double dense = perplexity_of(s.model, s.eval_tokens), narrow = perplexity_of(pruned, s.eval_tokens);
  std::printf("stories260K prune-ffn 25%%: perplexity %.4f -> %.4f, max |narrow - zeroed dense| %.2e\n", dense, narrow, worst);
  CHECK(narrow > dense);
  CHECK(std::isfinite(narrow));
}

TEST_CASE("prune-ffn bad input: ratio, no calibration, no feed-forward block", "[passes][prune][ffn][bad-input]") {
  StoriesFixture s;
  if (!load_stories(s, 2, 32)) return;
  for (const char* ratio : {"0", "1", "-0.5", "1.5"}) {
    Model m = s.model;
    auto r = run_named_pass("prune-ffn", m, {{"ratio", ratio}}, &s.calib.samples);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("ratio") != std::string::npos);
  }
  Model m = s.model;
  auto none = run_named_pass("prune-ffn", m, {});
  REQUIRE_FALSE(none.is_ok());
  CHECK(none.status().message().find("needs calibration data") != std::string::npos);
  // A graph whose every MatMul's input is read elsewhere too: no independent neurons.
  Model flat = s.model;
  flat.graph.outputs.push_back(flat.graph.outputs[0]);
  for (const Node& n : flat.graph.nodes)
    if (n.name.find("/mlp/Mul") != std::string::npos && n.name.find("act_fn") == std::string::npos) {
      flat.graph.outputs.back().name = n.outputs[0];
      flat.graph.outputs.back().type = {};
    }
  // Only the last layer's h is a graph output: 4 blocks remain; refusing needs all of them gone.
  auto four = run_named_pass("prune-ffn", flat, {}, &s.calib.samples);
  REQUIRE(four.is_ok());
  CHECK(four->rewrites == 4);
  bool named = false;
  for (const auto& d : four->decisions) named = named || d.reason.find("is a graph output") != std::string::npos;
  CHECK(named);
  Model attention_only = s.model;
  for (Node& n : attention_only.graph.nodes)
    if (n.name.find("/mlp/act_fn/Sigmoid") != std::string::npos) n.op_type = "Softmax";  // not element-wise
  auto refused = run_named_pass("prune-ffn", attention_only, {}, &s.calib.samples);
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().message().find("found no feed-forward block") != std::string::npos);
}
