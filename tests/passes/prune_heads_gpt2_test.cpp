// prune-heads on a GPT-2 checkpoint (fused Q/K/V projection split by a sizes constant; seeded
// weights written here, imported by formats/hf_gpt2.cpp): the head removed is exactly the lowest
// of sum ||ctx_c||_2 * ||W_o[c, :]||_2, the fused weight, bias and split sizes narrow to the kept
// heads, the narrow model computes what the dense one does with that head's output rows zeroed,
// and shared constants or a mixed fused/separate layout are refused without a change.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>

#include "calibration/calibration_data.h"
#include "formats/model_loader.h"
#include "tests/support/pass_fixtures.h"
#include "tests/support/safetensors_files.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

constexpr int64_t kDim = 32, kHeads = 4, kHs = 8, kInner = 128, kVocab = 40, kPositions = 32;

Tensor normal(const std::string& name, std::vector<int64_t> dims, float mean, float sd, std::mt19937& rng) {
  std::normal_distribution<float> d(mean, sd);
  std::vector<float> v(static_cast<size_t>(shape_numel(dims)));
  for (float& x : v) x = d(rng);
  return Tensor::from_vector<float>(name, DType::kF32, std::move(dims), v);
}

// A one-layer GPT-2 checkpoint directory with seeded weights (no tokenizer: ids < kVocab).
std::string gpt2_checkpoint() {
  std::mt19937 rng(7);
  const std::string p = "h.0.";
  std::vector<Tensor> t = {
      normal("wte.weight", {kVocab, kDim}, 0, 0.5f, rng), normal("wpe.weight", {kPositions, kDim}, 0, 0.1f, rng),
      normal(p + "ln_1.weight", {kDim}, 1, 0.1f, rng), normal(p + "ln_1.bias", {kDim}, 0, 0.05f, rng),
      normal(p + "attn.c_attn.weight", {kDim, 3 * kDim}, 0, 0.3f, rng), normal(p + "attn.c_attn.bias", {3 * kDim}, 0, 0.05f, rng),
      normal(p + "attn.c_proj.weight", {kDim, kDim}, 0, 0.2f, rng), normal(p + "attn.c_proj.bias", {kDim}, 0, 0.05f, rng),
      normal(p + "ln_2.weight", {kDim}, 1, 0.1f, rng), normal(p + "ln_2.bias", {kDim}, 0, 0.05f, rng),
      normal(p + "mlp.c_fc.weight", {kDim, kInner}, 0, 0.2f, rng), normal(p + "mlp.c_fc.bias", {kInner}, 0, 0.05f, rng),
      normal(p + "mlp.c_proj.weight", {kInner, kDim}, 0, 0.1f, rng), normal(p + "mlp.c_proj.bias", {kDim}, 0, 0.05f, rng),
      normal("ln_f.weight", {kDim}, 1, 0.1f, rng), normal("ln_f.bias", {kDim}, 0, 0.05f, rng)};
  const std::string dir = scratch_dir("gpt2_heads");
  write_file_in(dir, "model.safetensors", make_safetensors(t, std::vector<std::string>(t.size(), "F32")));
  write_file_in(dir, "config.json",
                str_cat(R"({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": )", kDim,
                        R"(, "n_layer": 1, "n_head": )", kHeads, R"(, "n_positions": )", kPositions,
                        R"(, "vocab_size": )", kVocab, R"(, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"})"));
  return dir;
}

std::vector<Feeds> windows(const Model& m, std::vector<int32_t>& tokens) {
  tokens.resize(512);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 7919 + i / 5) % kVocab);
  calib::CalibrationOptions o;
  o.num_samples = 8;
  o.seq_len = 24;
  auto set = calib::calibration_from_tokens(m, tokens, o, "test tokens");
  REQUIRE(set.is_ok());
  return set->samples;
}

// The imported checkpoint and calibration windows over a token stream both test cases use.
struct Gpt2Fixture {
  Model dense;
  std::vector<int32_t> tokens;
  std::vector<Feeds> samples;
  Gpt2Fixture() {
    auto loaded = load_model(gpt2_checkpoint());
    REQUIRE(loaded.is_ok());
    dense = std::move(loaded).value();
    samples = windows(dense, tokens);
  }
};

const Node* named(const Graph& g, const std::string& part) {
  for (const Node& n : g.nodes)
    if (n.name.find(part) != std::string::npos) return &n;
  return nullptr;
}

}  // namespace

TEST_CASE("prune-heads on GPT-2's fused Q/K/V: the lowest head goes, split sizes follow", "[passes][prune][heads][gpt2]") {
  const Gpt2Fixture f;
  const Model& dense = f.dense;
  const std::vector<int32_t>& tokens = f.tokens;
  const std::vector<Feeds>& samples = f.samples;
  const Node* proj = named(dense.graph, "/attn/c_proj/MatMul");
  const Node* qkv = named(dense.graph, "/attn/c_attn/MatMul");
  REQUIRE(proj);
  REQUIRE(qkv);
  // Float64 scores: per head, sum over its channels of ||ctx_c|| * ||W_o[c, :]||.
  auto sumsq = activation_sumsq(dense, samples, {proj->inputs[0]});
  const float* wo = dense.graph.find_initializer(proj->inputs[1])->data_as<float>();
  std::vector<double> score(kHeads, 0.0);
  for (int64_t c = 0; c < kDim; ++c) {
    double row = 0;
    for (int64_t j = 0; j < kDim; ++j) row += double(wo[c * kDim + j]) * wo[c * kDim + j];
    score[c / kHs] += std::sqrt(sumsq[proj->inputs[0]][c]) * std::sqrt(row);
  }
  const int64_t gone = std::min_element(score.begin(), score.end()) - score.begin();

  Model pruned = dense;
  auto r = run_named_pass("prune-heads", pruned, {{"ratio", "0.25"}}, &samples);
  REQUIRE(r.is_ok());
  INFO(r->summary);
  CHECK(r->rewrites == 1);
  // Q/K/V columns of the head and their biases, and its output rows: hs * (3 * (D + 1) + D).
  CHECK(parameter_count(dense) - parameter_count(pruned) == kHs * (3 * (kDim + 1) + kDim));
  const Tensor* w = pruned.graph.find_initializer(qkv->inputs[1]);
  REQUIRE(w->dims() == std::vector<int64_t>{kDim, 3 * (kDim - kHs)});
  // Kept columns in order: Q heads, then K heads, then V heads, without `gone`.
  const float* w0 = dense.graph.find_initializer(qkv->inputs[1])->data_as<float>();
  std::vector<int64_t> kept;
  for (int64_t part = 0; part < 3; ++part)
    for (int64_t h = 0; h < kHeads; ++h)
      if (h != gone)
        for (int64_t i = 0; i < kHs; ++i) kept.push_back(part * kDim + h * kHs + i);
  for (int64_t k = 0; k < kDim; ++k)
    for (size_t j = 0; j < kept.size(); ++j) REQUIRE(w->data_as<float>()[k * w->dims()[1] + j] == w0[k * 3 * kDim + kept[j]]);
  const Node* split = named(pruned.graph, "/attn/Split");
  REQUIRE(split);
  const Tensor* sizes = pruned.graph.find_initializer(split->inputs[1]);
  REQUIRE(sizes);
  CHECK(std::vector<int64_t>(sizes->data_as<int64_t>(), sizes->data_as<int64_t>() + 3) ==
        std::vector<int64_t>{kDim - kHs, kDim - kHs, kDim - kHs});

  // Same function as the dense model with the head's output rows zeroed (prefill and decode).
  Model zeroed = dense;
  float* z = reinterpret_cast<float*>(zeroed.graph.find_initializer(proj->inputs[1])->mutable_data());
  std::fill(z + gone * kHs * kDim, z + (gone + 1) * kHs * kDim, 0.f);
  auto a = decoder_for(pruned), b = decoder_for(zeroed);
  const std::vector<int32_t> prompt(tokens.begin(), tokens.begin() + 12);
  auto la = a->forward_fresh(prompt), lb = b->forward_fresh(prompt);
  REQUIRE(la.is_ok());
  REQUIRE(lb.is_ok());
  CHECK(max_abs_gap(*la, *lb) < 1e-5);
  auto da = a->forward({tokens[12]}), db = b->forward({tokens[12]});
  REQUIRE(da.is_ok());
  REQUIRE(db.is_ok());
  CHECK(max_abs_gap(*da, *db) < 1e-5);
}

TEST_CASE("prune-heads refuses GPT-2 attention it cannot narrow consistently", "[passes][prune][heads][gpt2][bad-input]") {
  const Gpt2Fixture f;
  const Model& dense = f.dense;
  const std::vector<int32_t>& tokens = f.tokens;
  const std::vector<Feeds>& samples = f.samples;
  auto refused = [&](Model m, const std::string& says) {
    const int64_t params = parameter_count(m);
    auto r = run_named_pass("prune-heads", m, {{"ratio", "0.25"}}, &samples);
    REQUIRE_FALSE(r.is_ok());
    INFO(r.status().message());
    CHECK(r.status().message().find(says) != std::string::npos);
    CHECK(parameter_count(m) == params);
  };
  // The split sizes read by another node too: editing them would change that node.
  Model shared = dense;
  Node extra;
  extra.name = "reads_the_sizes";
  extra.op_type = "Identity";
  extra.inputs = {named(dense.graph, "/attn/Split")->inputs[1]};
  extra.outputs = {"sizes_copy"};
  shared.graph.nodes.push_back(extra);
  refused(shared, "split sizes");
  // The head merge's shape constant shared with another reader.
  Model merge = dense;
  extra.inputs = {named(dense.graph, "/attn/Reshape_ctx")->inputs[1]};
  merge.graph.nodes.push_back(extra);
  refused(merge, "shared");
}
