// smooth-quant: function preserved in float (stories260K logits through our runtime; a
// LayerNormalization graph with a weight shared outside the group), where 1/s goes (norm
// weights vs inserted Muls), a second run is a no-op (s = 1), and on a model with activation
// outliers int8-static perplexity is better with it than without. Bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>

#include "calibration/calibration_data.h"
#include "formats/llama2c_import.h"
#include "formats/llama2c_tokenizer.h"
#include "ir/graph_utils.h"
#include "passes/registry.h"
#include "runtime/eval.h"
#include "tests/support/pass_fixtures.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {





double max_logit_diff(const Model& a, const Model& b, const std::vector<int32_t>& tokens) {
  auto la = decoder_for(a)->forward_fresh(tokens);
  auto lb = decoder_for(b)->forward_fresh(tokens);
  REQUIRE(la.is_ok());
  REQUIRE(lb.is_ok());
  REQUIRE(la->numel() == lb->numel());
  double d = 0;
  for (int64_t i = 0; i < la->numel(); ++i)
    d = std::max(d, double(std::fabs(la->data<float>()[i] - lb->data<float>()[i])));
  return d;
}

float* floats(Model& m, const std::string& name) {
  Tensor* t = m.graph.find_initializer(name);
  REQUIRE(t);
  return reinterpret_cast<float*>(t->mutable_data());
}

int count_ops(const Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op_type == op;
  return n;
}

// stories260K with outlier activation channels, the same function: a few channels of each
// RMSNorm weight times 30, the matching input rows of the projections reading it divided by 30.
Model with_outliers(const Model& base) {
  Model m = base;
  const std::vector<int64_t> channels{5, 21, 46};
  for (int l = 0; l < 5; ++l) {
    const std::string w = "model.layers." + std::to_string(l);
    const std::map<std::string, std::vector<std::string>> norms{
        {".input_layernorm.weight", {".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight"}},
        {".post_attention_layernorm.weight", {".mlp.gate_proj.weight", ".mlp.up_proj.weight"}}};
    for (const auto& [norm, projections] : norms) {
      float* g = floats(m, w + norm);
      for (int64_t c : channels) g[c] *= 30.f;
      for (const auto& p : projections) {
        const int64_t cols = m.graph.find_initializer(w + p)->dims()[1];
        float* W = floats(m, w + p);
        for (int64_t c : channels)
          for (int64_t n = 0; n < cols; ++n) W[c * cols + n] /= 30.f;
      }
    }
  }
  return m;
}

}  // namespace

TEST_CASE("smooth-quant keeps stories260K's logits and folds 1/s into the RMSNorm weights", "[passes][smoothquant][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 4, 64)) return;
  const std::vector<int32_t> tokens(s.eval_tokens.begin(), s.eval_tokens.begin() + 128);
  const std::vector<float> norm0(floats(s.model, "model.layers.0.input_layernorm.weight"),
                                 floats(s.model, "model.layers.0.input_layernorm.weight") + 64);
  for (const char* alpha : {"0", "0.5", "1"}) {
    INFO("alpha " << alpha);
    Model m = s.model;
    auto r = run_named_pass("smooth-quant", m, {{"alpha", alpha}}, &s.calib.samples);
    REQUIRE(r.is_ok());
    CHECK(r->changed);
    CHECK(r->rewrites == 36);
    REQUIRE(verify(m.graph).is_ok());
    int folded = 0, inserted = 0;
    int smoothed = 0;
    for (const auto& d : r->decisions) {
      smoothed += d.action == "smoothed";
      if (d.action == "skipped") CHECK(d.reason == "weight is not a constant initializer");  // attention
      folded += d.reason.find("folded into Mul") != std::string::npos;
      inserted += d.reason.find("inserted Mul") != std::string::npos;
    }
    CHECK(smoothed == 36);
    CHECK(folded == 5 * 5 + 1);    // q/k/v and gate/up of every layer, lm_head
    CHECK(inserted == 5 * 2);      // o_proj and down_proj read no norm output
    CHECK(count_ops(m.graph, "Mul") == count_ops(s.model.graph, "Mul") + 10);
    CHECK(r->bytes_after == r->bytes_before + 10 * 4 * 64 + 5 * 4 * (172 - 64));  // the inserted 1/s vectors
    const double diff = max_logit_diff(s.model, m, tokens);
    std::printf("smooth-quant alpha %s: max |logit difference| vs float original %.3g\n", alpha, diff);
    CHECK(diff < 1e-3);
  }
  // The original model shares its weight bytes with the copy: they were copied, not written through.
  for (int c = 0; c < 64; ++c) CHECK(floats(s.model, "model.layers.0.input_layernorm.weight")[c] == norm0[c]);
}

TEST_CASE("smooth-quant twice: the second run's scales are 1", "[passes][smoothquant][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 4, 64)) return;
  Model once = s.model;
  REQUIRE(run_named_pass("smooth-quant", once, {}, &s.calib.samples).is_ok());
  Model twice = once;
  auto r = run_named_pass("smooth-quant", twice, {}, &s.calib.samples);
  REQUIRE(r.is_ok());
  CHECK(count_ops(twice.graph, "Mul") == count_ops(once.graph, "Mul"));  // 1/s folds into the earlier Muls
  for (const char* w : {"model.layers.0.self_attn.q_proj.weight", "model.layers.3.mlp.down_proj.weight", "lm_head.weight"}) {
    INFO(w);
    const Tensor* a = once.graph.find_initializer(w);
    const Tensor* b = twice.graph.find_initializer(w);
    REQUIRE(a);
    REQUIRE(b);
    double rel = 0;
    for (int64_t i = 0; i < a->numel(); ++i)
      if (a->data_as<float>()[i] != 0)
        rel = std::max(rel, double(std::fabs(b->data_as<float>()[i] / a->data_as<float>()[i] - 1)));
    CHECK(rel < 1e-4);
  }
}

TEST_CASE("smooth-quant folds into LayerNormalization scale and bias, copies shared weights", "[passes][smoothquant]") {
  const int64_t K = 8, N = 5;
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.f, 1.f);
  auto vec = [&](int64_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
  };
  auto info = [](const std::string& name, int64_t cols) {
    ValueInfo v;
    v.name = name;
    v.type.kind = ValueType::Kind::kTensor;
    v.type.elem = DType::kF32;
    v.type.has_shape = true;
    v.type.dims = {Dim{-1, "n", ""}, Dim{cols, "", ""}};
    return v;
  };
  Model m;
  m.opset_imports = {{"", 17}};
  m.graph.inputs = {info("x", K), info("z", K)};
  m.graph.outputs = {info("y1", N), info("y2", N), info("y3", N)};
  std::vector<float> scale = vec(K);
  scale[2] *= 20.f;  // an outlier channel
  m.graph.initializers = {Tensor::from_vector("ln_scale", DType::kF32, {K}, scale),
                          Tensor::from_vector("ln_bias", DType::kF32, {K}, vec(K)),
                          Tensor::from_vector("W1", DType::kF32, {K, N}, vec(K * N)),
                          Tensor::from_vector("W2", DType::kF32, {K, N}, vec(K * N))};
  auto node = [](const std::string& name, const std::string& op, std::vector<std::string> in, std::string out) {
    Node n;
    n.name = name;
    n.op_type = op;
    n.inputs = std::move(in);
    n.outputs = {std::move(out)};
    return n;
  };
  m.graph.nodes = {node("ln", "LayerNormalization", {"x", "ln_scale", "ln_bias"}, "h"),
                   node("mm1", "MatMul", {"h", "W1"}, "y1"), node("mm2", "MatMul", {"h", "W2"}, "y2"),
                   node("mm3", "MatMul", {"z", "W1"}, "y3")};  // W1 is also read outside h's group
  m.graph.nodes[0].attributes = {Attribute::make_int("axis", -1)};
  REQUIRE(verify(m.graph).is_ok());
  std::vector<Feeds> calib(3);
  for (auto& f : calib)
    for (const char* in : {"x", "z"}) {
      rt::Value v = rt::Value::allocate(DType::kF32, {4, K});
      for (int64_t i = 0; i < v.numel(); ++i) v.mutable_data<float>()[i] = d(rng) * (i % K == 3 ? 10.f : 1.f);
      f[in] = v;
    }
  Model sm = m;
  auto r = run_named_pass("smooth-quant", sm, {}, &calib);
  REQUIRE(r.is_ok());
  CHECK(r->rewrites == 3);
  REQUIRE(verify(sm.graph).is_ok());
  const GraphIndex idx(sm.graph);
  const Node& ln = sm.graph.nodes[idx.producer("h")];
  CHECK(ln.inputs[1] == "ln_scale");  // single reader: changed in place
  CHECK(sm.graph.find_initializer("ln_scale")->data_as<float>()[2] != scale[2]);
  // z's group got a Mul; W1 (two groups) became two scaled copies, the original is gone.
  CHECK(count_ops(sm.graph, "Mul") == 1);
  CHECK(sm.graph.find_initializer("W1") == nullptr);
  std::set<std::string> w1_names;
  for (const Node& n : sm.graph.nodes)
    if (n.name == "mm1" || n.name == "mm3") w1_names.insert(n.inputs[1]);
  CHECK(w1_names.size() == 2);
  // Same outputs in float.
  auto s0 = rt::Session::create(std::make_shared<const Model>(m), {1});
  auto s1 = rt::Session::create(std::make_shared<const Model>(sm), {1});
  REQUIRE(s0.is_ok());
  REQUIRE(s1.is_ok());
  auto y0 = (*s0)->run(calib[1]);
  auto y1 = (*s1)->run(calib[1]);
  REQUIRE(y0.is_ok());
  REQUIRE(y1.is_ok());
  for (size_t o = 0; o < 3; ++o)
    for (int64_t i = 0; i < (*y0)[o].numel(); ++i)
      CHECK(std::fabs((*y0)[o].data<float>()[i] - (*y1)[o].data<float>()[i]) < 1e-4);
  // fold-only leaves z's group alone.
  Model fo = m;
  auto rf = run_named_pass("smooth-quant", fo, {{"fold-only", "1"}}, &calib);
  REQUIRE(rf.is_ok());
  CHECK(rf->rewrites == 2);
  CHECK(count_ops(fo.graph, "Mul") == 0);
}

TEST_CASE("smooth-quant lowers int8-static perplexity on a model with activation outliers", "[passes][smoothquant][llama2c][eval]") {
  StoriesFixture s;
  if (!load_stories(s)) return;
  const Model outliers = with_outliers(s.model);
  const double base = perplexity_of(s.model, s.eval_tokens);
  const double base_outliers = perplexity_of(outliers, s.eval_tokens);
  CHECK(std::fabs(base_outliers / base - 1) < 1e-4);  // the construction preserves the function
  auto quantized = [&](const Model& src, bool smooth, const char* pass) {
    Model m = src;
    if (smooth) {
      auto r = run_named_pass("smooth-quant", m, {{"alpha", "0.5"}}, &s.calib.samples);
      REQUIRE(r.is_ok());
    }
    auto r = run_named_pass(pass, m, {}, &s.calib.samples);
    REQUIRE(r.is_ok());
    REQUIRE(r->rewrites >= 36);  // + the embedding Gather for int8-dynamic
    REQUIRE(verify(m.graph).is_ok());
    return perplexity_of(m, s.eval_tokens);
  };
  const double plain = quantized(outliers, false, "quantize-int8-static");
  const double smoothed = quantized(outliers, true, "quantize-int8-static");
  const double plain_dyn = quantized(outliers, false, "quantize-int8-dynamic");
  const double smoothed_dyn = quantized(outliers, true, "quantize-int8-dynamic");
  const double orig_plain = quantized(s.model, false, "quantize-int8-static");
  const double orig_smoothed = quantized(s.model, true, "quantize-int8-static");
  std::printf("perplexity on %zu tokens, float %.4f (outlier model %.4f)\n"
              "  outlier model int8-static (minmax): %.4f without smooth-quant, %.4f with (alpha 0.5)\n"
              "  outlier model int8-dynamic:         %.4f without smooth-quant, %.4f with\n"
              "  stories260K   int8-static (minmax): %.4f without smooth-quant, %.4f with\n",
              s.eval_tokens.size(), base, base_outliers, plain, smoothed, plain_dyn, smoothed_dyn, orig_plain,
              orig_smoothed);
  CHECK(smoothed < plain);
  CHECK(std::isfinite(smoothed_dyn));
}

TEST_CASE("smooth-quant bad input", "[passes][smoothquant][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 1, 16)) return;
  Model m = s.model;
  auto none = run_named_pass("smooth-quant", m, {}, nullptr);
  REQUIRE(!none.is_ok());
  CHECK(none.status().message().find("needs --calib DATA") != std::string::npos);
  const std::vector<Feeds> empty;
  auto e = run_named_pass("smooth-quant", m, {}, &empty);
  REQUIRE(!e.is_ok());
  CHECK(e.status().message().find("empty") != std::string::npos);
  auto a = run_named_pass("smooth-quant", m, {{"alpha", "1.5"}}, &s.calib.samples);
  REQUIRE(!a.is_ok());
  CHECK(a.status().message().find("1.5") != std::string::npos);
  CHECK(!run_named_pass("smooth-quant", m, {{"alpha", "-0.1"}}, &s.calib.samples).is_ok());
  CHECK(!run_named_pass("smooth-quant", m, {{"alpha", "half"}}, &s.calib.samples).is_ok());
  CHECK(!run_named_pass("smooth-quant", m, {{"op-types", "Conv"}}, &s.calib.samples).is_ok());
  CHECK(count_ops(m.graph, "Mul") == count_ops(s.model.graph, "Mul"));  // untouched by the failures
}
