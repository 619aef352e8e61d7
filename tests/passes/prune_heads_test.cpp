// prune-heads on the real stories260K (8 query heads sharing 4 KV heads): the KV group removed
// is exactly the lowest of sum ||ctx_c||_2 * ||W_o[c, :]||_2 over its query heads' channels
// (float64 norms here), the narrow model computes what the dense one does with those heads'
// output-projection rows zeroed (prefill and KV-cache decoding), the parameter count drops
// exactly, and a ratio too small or an attention laid out otherwise is refused.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "tests/support/pass_fixtures.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

TEST_CASE("prune-heads removes the lowest-scoring KV group and keeps the other heads exact", "[passes][prune][heads][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 4, 64)) return;
  Model pruned = s.model;
  auto r = run_named_pass("prune-heads", pruned, {{"ratio", "0.25"}}, &s.calib.samples);
  REQUIRE(r.is_ok());
  INFO(r->summary);
  CHECK(r->rewrites == 5);
  const int64_t Hq = 8, Hkv = 4, hs = 8, D = 64, rep = 2;
  // Per layer: 2 query heads (Q columns, O rows) and 1 KV head (K and V columns).
  CHECK(parameter_count(s.model) - parameter_count(pruned) == 5 * (2 * hs * 2 * D + 1 * hs * 2 * D));

  const Graph& g = s.model.graph;
  std::vector<std::string> taps;
  for (int l = 0; l < 5; ++l) {
    const Node* o = &node_named(g, "/model/layers." + std::to_string(l) + "/self_attn/o_proj/MatMul");
    taps.push_back(o->inputs[0]);
  }
  const auto sumsq = activation_sumsq(s.model, s.calib.samples, taps);
  Model zeroed = s.model;
  for (int l = 0; l < 5; ++l) {
    const Node* o = &node_named(g, "/model/layers." + std::to_string(l) + "/self_attn/o_proj/MatMul");
    const float* wo = g.find_initializer(o->inputs[1])->data_as<float>();
    std::vector<double> score(Hkv, 0.0);
    for (int64_t c = 0; c < Hq * hs; ++c) {
      double row = 0;
      for (int64_t j = 0; j < D; ++j) row += double(wo[c * D + j]) * wo[c * D + j];
      score[c / hs / rep] += std::sqrt(sumsq.at(taps[l])[c]) * std::sqrt(row);
    }
    const int64_t gone = std::min_element(score.begin(), score.end()) - score.begin();
    // The pruned O weight is the other groups' rows, in order.
    const Tensor* after = pruned.graph.find_initializer(o->inputs[1]);
    REQUIRE(after->dims() == std::vector<int64_t>{(Hq - rep) * hs, D});
    int64_t row_out = 0;
    for (int64_t c = 0; c < Hq * hs; ++c) {
      if (c / hs / rep == gone) continue;
      for (int64_t j = 0; j < D; ++j) REQUIRE(after->data_as<float>()[row_out * D + j] == wo[c * D + j]);
      ++row_out;
    }
    float* z = reinterpret_cast<float*>(zeroed.graph.find_initializer(o->inputs[1])->mutable_data());
    std::fill(z + gone * rep * hs * D, z + (gone + 1) * rep * hs * D, 0.f);
  }
  // The KV cache inputs are narrower.
  for (const ValueInfo& in : pruned.graph.inputs)
    if (in.name.rfind("past_key_values.", 0) == 0) CHECK(in.type.dims[1].value == Hkv - 1);
  const std::vector<int32_t> tokens(s.eval_tokens.begin(), s.eval_tokens.begin() + 48);
  auto narrow = decoder_for(pruned), dense = decoder_for(zeroed);
  auto a = narrow->forward_fresh(tokens);
  auto b = dense->forward_fresh(tokens);
  REQUIRE(a.is_ok());
  REQUIRE(b.is_ok());
  const double prefill_gap = max_abs_gap(*a, *b);
  // Decoding with the narrower cache: 40 tokens, then 8 one by one.
  const std::vector<int32_t> head(tokens.begin(), tokens.begin() + 40);
  REQUIRE(narrow->forward(head).is_ok());
  REQUIRE(dense->forward(head).is_ok());
  double decode_gap = 0;
  for (size_t i = 40; i < tokens.size(); ++i) {
    auto x = narrow->forward({tokens[i]});
    auto y = dense->forward({tokens[i]});
    REQUIRE(x.is_ok());
    REQUIRE(y.is_ok());
    decode_gap = std::max(decode_gap, max_abs_gap(*x, *y));
  }
  const double p_dense = perplexity_of(s.model, s.eval_tokens), p_narrow = perplexity_of(pruned, s.eval_tokens);
  std::printf("stories260K prune-heads 25%%: perplexity %.4f -> %.4f, max |narrow - zeroed dense| prefill %.2e, decode %.2e\n",
              p_dense, p_narrow, prefill_gap, decode_gap);
  CHECK(prefill_gap < 1e-4);
  CHECK(decode_gap < 1e-4);
  CHECK(p_narrow > p_dense);
  CHECK(std::isfinite(p_narrow));
}

TEST_CASE("prune-heads bad input: ratio, no calibration, attention it cannot follow", "[passes][prune][heads][bad-input]") {
  StoriesFixture s;
  if (!load_stories(s, 2, 32)) return;
  for (const char* ratio : {"0.1", "0", "1"}) {  // 0.1 of 4 KV heads removes no group
    Model m = s.model;
    auto r = run_named_pass("prune-heads", m, {{"ratio", ratio}}, &s.calib.samples);
    INFO(ratio);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("ratio") != std::string::npos);
  }
  Model m = s.model;
  auto none = run_named_pass("prune-heads", m, {});
  REQUIRE_FALSE(none.is_ok());
  CHECK(none.status().message().find("needs calibration data") != std::string::npos);
  Model odd = s.model;
  for (Node& n : odd.graph.nodes)
    if (n.name == "/model/layers.2/self_attn/Softmax") n.op_type = "LogSoftmax";
  const Model before = odd;
  auto refused = run_named_pass("prune-heads", odd, {}, &s.calib.samples);
  REQUIRE_FALSE(refused.is_ok());
  INFO(refused.status().message());
  CHECK(refused.status().message().find("cannot follow the attention before '/model/layers.2/self_attn/o_proj/MatMul'") !=
        std::string::npos);
  CHECK(refused.status().message().find("expected Softmax") != std::string::npos);
  CHECK(parameter_count(odd) == parameter_count(before));  // nothing changed before the refusal
  // A hostile head merge with one input (arity is only checked when a kernel runs): refused, not read past.
  Model short_reshape = s.model;
  for (Node& n : short_reshape.graph.nodes)
    if (n.name == "/model/layers.2/self_attn/Reshape_ctx") n.inputs.resize(1);
  auto arity = run_named_pass("prune-heads", short_reshape, {}, &s.calib.samples);
  REQUIRE_FALSE(arity.is_ok());
  INFO(arity.status().message());
  CHECK(arity.status().message().find("found Reshape with 1 inputs") != std::string::npos);
}
