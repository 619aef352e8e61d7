// pack-nm-sparse on the real stories260K after 2:4 / 1:4 pruning: every pruned product becomes
// NMSparseMatMul; the float32 and float16 artifacts compute what the unpacked ones do (within
// summation order), the int8 one bit for bit; the artifact survives write and read; weights
// that are not n:4 are left with the reason.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>

#include "formats/onnx_format.h"
#include "ir/nm_sparse.h"
#include "tests/support/pass_fixtures.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

int64_t count_op(const Model& m, const std::string& op) {
  int64_t c = 0;
  for (const Node& n : m.graph.nodes) c += n.op_type == op;
  return c;
}

// Prefill logits of the first 16 tokens, then each decode step's (one token at a time through
// the KV cache): prefill and decode take different paths through NMSparseMatMul.
std::vector<float> logits(const Model& m, const std::vector<int32_t>& tokens) {
  auto d = decoder_for(m);
  std::vector<float> out;
  auto keep = [&](const Result<rt::Value>& r) {
    REQUIRE(r.is_ok());
    const float* p = r->data<float>();
    out.insert(out.end(), p, p + r->numel());
  };
  keep(d->forward_fresh(std::vector<int32_t>(tokens.begin(), tokens.begin() + 16)));
  for (size_t i = 16; i < tokens.size(); ++i) keep(d->forward({tokens[i]}));
  return out;
}

double max_abs_gap(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::fabs(a[i] - b[i])));
  return worst;
}

}  // namespace

TEST_CASE("pack-nm-sparse packs 2:4 float32, float16 and int8 products of stories260K", "[passes][prune][nm_sparse][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 2, 32)) return;
  const std::vector<int32_t> tokens(s.eval_tokens.begin(), s.eval_tokens.begin() + 48);
  Model pruned = s.model;
  REQUIRE(run_named_pass("prune-magnitude", pruned, {{"pattern", "2:4"}}).is_ok());
  const int64_t products = 5 * 7;  // q, k, v, o, gate, up, down in 5 layers; the LM head stays dense

  // float32.
  Model packed = pruned;
  auto r = run_named_pass("pack-nm-sparse", packed, {});
  REQUIRE(r.is_ok());
  INFO(r->summary);
  CHECK(r->rewrites == products);
  CHECK(count_op(packed, kNMSparseMatMul) == products);
  CHECK(packed.opset(kLlmcDomain) == 1);
  // Each weight [K, N] became K/2 rows of N values and K/2 rows of N/4 position bytes.
  size_t dense_bytes = 0, packed_bytes = 0;
  for (const Node& n : packed.graph.nodes) {
    if (n.op_type != kNMSparseMatMul) continue;
    const Tensor* v = packed.graph.find_initializer(n.inputs[1]);
    const Tensor* ix = packed.graph.find_initializer(n.inputs[2]);
    REQUIRE(v->name().size() > 10);
    const Tensor* w = pruned.graph.find_initializer(v->name().substr(0, v->name().size() - 10));  // "_nm_values"
    REQUIRE(w);
    const int64_t K = w->dims()[0], N = w->dims()[1];
    REQUIRE(v->dims() == std::vector<int64_t>{K / 2, N});
    REQUIRE(ix->dims() == std::vector<int64_t>{K / 2, (N + 3) / 4});
    dense_bytes += w->nbytes();
    packed_bytes += v->nbytes() + ix->nbytes();
  }
  CHECK(r->bytes_before - r->bytes_after == dense_bytes - packed_bytes);
  CHECK(double(packed_bytes) / dense_bytes == Approx(17.0 / 32).epsilon(0.01));
  const double gap32 = max_abs_gap(logits(packed, tokens), logits(pruned, tokens));
  CHECK(gap32 < 1e-4);

  // The artifact reads back and computes the same.
  const std::string dir = scratch_dir("pack_nm");
  REQUIRE(write_onnx(packed, dir + "/p.onnx").is_ok());
  auto back = read_onnx(dir + "/p.onnx");
  REQUIRE(back.is_ok());
  CHECK(count_op(*back, kNMSparseMatMul) == products);
  // (The LM head's dense MatMul packs its weight only from a file mapping, so it sums in another
  // order after the read: not bit-equal.)
  CHECK(max_abs_gap(logits(*back, tokens), logits(packed, tokens)) < 1e-4);

  // int8 (symmetric dynamic): the packed graph's logits equal the dense int8 graph's exactly.
  Model q8 = pruned;
  REQUIRE(run_named_pass("quantize-int8-dynamic", q8, {}).is_ok());
  Model q8p = q8;
  auto r8 = run_named_pass("pack-nm-sparse", q8p, {});
  REQUIRE(r8.is_ok());
  CHECK(r8->rewrites == products);
  CHECK(count_op(q8p, "MatMulInteger") == 1);  // the LM head, int8 but dense
  CHECK(count_op(q8p, "DynamicQuantizeLinear") == 1);
  CHECK(max_abs_gap(logits(q8p, tokens), logits(q8, tokens)) == 0);

  // float16.
  Model h = pruned;
  REQUIRE(run_named_pass("quantize-fp16", h, {}).is_ok());
  Model hp = h;
  auto rh = run_named_pass("pack-nm-sparse", hp, {});
  REQUIRE(rh.is_ok());
  CHECK(rh->rewrites == products);
  const std::vector<float> lh = logits(h, tokens);
  const double gap16 = max_abs_gap(logits(hp, tokens), lh);
  // Float16 activations round at other points of the sum: a few float16 ulps of the largest logit.
  double top = 0;
  for (float v : lh) top = std::max(top, double(std::fabs(v)));
  CHECK(gap16 <= 4 * std::ldexp(1.0, std::ilogb(top) - 10));

  // 1:4 pruned weights pack as 1:4 under auto.
  Model one = s.model;
  REQUIRE(run_named_pass("prune-magnitude", one, {{"pattern", "1:4"}}).is_ok());
  auto r1 = run_named_pass("pack-nm-sparse", one, {});
  REQUIRE(r1.is_ok());
  CHECK(r1->rewrites == products);
  for (const Node& n : one.graph.nodes)
    if (n.op_type == kNMSparseMatMul) REQUIRE(n.attr_int("n", 0) == 1);
  std::printf("stories260K pack-nm-sparse: max |packed - unpacked| logits f32 %.2e, f16 %.2e, int8 0; bytes %zu -> %zu\n",
              gap32, gap16, r->bytes_before, r->bytes_after);
}

TEST_CASE("pack-nm-sparse leaves dense weights alone and says why", "[passes][nm_sparse][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 2, 32)) return;
  Model m = s.model;
  auto r = run_named_pass("pack-nm-sparse", m, {});
  REQUIRE(r.is_ok());
  CHECK(r->rewrites == 0);
  CHECK(!r->changed);
  REQUIRE(!r->decisions.empty());
  for (const auto& d : r->decisions) {
    CHECK(d.action == "skipped");
    CHECK(d.reason.find("is not 2:4 sparse") != std::string::npos);
  }
  // 2:4-pruned but asked to pack 1:4: refused per weight, nothing changes.
  Model p = s.model;
  REQUIRE(run_named_pass("prune-magnitude", p, {{"pattern", "2:4"}}).is_ok());
  auto r1 = run_named_pass("pack-nm-sparse", p, {{"pattern", "1:4"}});
  REQUIRE(r1.is_ok());
  CHECK(r1->rewrites == 0);
}

TEST_CASE("pack-nm-sparse int8 forms: DynamicQuantizeMatMul, either Mul order, a shared quantisation", "[passes][nm_sparse][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 2, 32)) return;
  const std::vector<int32_t> tokens(s.eval_tokens.begin(), s.eval_tokens.begin() + 24);
  // Only the query projections 2:4: K and V keep dense int8 weights on the same quantised input.
  Model q = s.model;
  REQUIRE(run_named_pass("prune-magnitude", q, {{"pattern", "2:4"}, {"include", ".*q_proj.*"}}).is_ok());
  Model contrib = q;
  REQUIRE(run_named_pass("quantize-int8-dynamic", q, {}).is_ok());
  REQUIRE(run_named_pass("quantize-int8-dynamic", contrib, {{"format", "contrib"}}).is_ok());
  // Swap the operands of every output-scale Mul (Mul(a, b) = Mul(b, a) bit for bit).
  for (Node& n : q.graph.nodes)
    if (n.op_type == "Mul" && n.name.find("_quant_") != std::string::npos) std::swap(n.inputs[0], n.inputs[1]);
  for (Model* m : {&q, &contrib}) {
    Model packed = *m;
    auto r = run_named_pass("pack-nm-sparse", packed, {});
    REQUIRE(r.is_ok());
    INFO(r->summary);
    CHECK(r->rewrites == 5);  // the five query projections
    for (const auto& d : r->decisions)
      if (d.action == "packed") CHECK(d.node.find("q_proj") != std::string::npos);
    CHECK(count_op(packed, kNMSparseMatMul) == 5);
    if (m == &q) CHECK(count_op(packed, "DynamicQuantizeLinear") == count_op(q, "DynamicQuantizeLinear"));  // still read by K, V
    CHECK(max_abs_gap(logits(packed, tokens), logits(*m, tokens)) == 0);
  }
}
