// quantize-int8-static: QDQ structure on stories260K (one Q per activation, a dedicated DQ per
// consumer, per-channel int8 weights), Gemm transB + int32 bias on a small graph, perplexity of
// the four calibration methods through our runtime, bad input.
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



std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> c;
  for (const auto& n : g.nodes) ++c[n.op_type];
  return c;
}


}  // namespace

TEST_CASE("quantize-int8-static writes QDQ with dedicated DQs and per-channel int8 weights", "[passes][quantize][static][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 2, 32)) return;
  Model m = s.model;
  auto r = run_named_pass("quantize-int8-static", m, {}, &s.calib.samples);
  REQUIRE(r.is_ok());
  CHECK(r->changed);
  REQUIRE(verify(m.graph).is_ok());
  const auto ops = op_counts(m.graph);
  // 5 layers x 7 projections + lm_head; q/k/v share one activation, gate/up another.
  CHECK(r->rewrites == 36);
  CHECK(ops.at("QuantizeLinear") == 5 * 4 + 1);
  CHECK(ops.at("DequantizeLinear") == 2 * 36);
  CHECK(ops.at("MatMul") == 46);
  CHECK(r->bytes_after < 0.45 * r->bytes_before);
  const GraphIndex idx(m.graph);
  int weight_dqs = 0;
  for (const Node& n : m.graph.nodes) {
    if (n.op_type == "DequantizeLinear") {
      INFO(n.name);
      CHECK(idx.consumers(n.outputs[0]).size() == 1);  // never fans out
      const Tensor* q = m.graph.find_initializer(n.inputs[0]);
      if (q) {  // weight: int8 [K, N], scale [N], axis 1
        ++weight_dqs;
        CHECK(q->dtype() == DType::kI8);
        REQUIRE(q->dims().size() == 2);
        const Tensor* sc = m.graph.find_initializer(n.inputs[1]);
        REQUIRE(sc);
        CHECK(sc->dims() == std::vector<int64_t>{q->dims()[1]});
        CHECK(n.attr_int("axis", -7) == 1);
      } else {
        CHECK(m.graph.nodes[idx.producer(n.inputs[0])].op_type == "QuantizeLinear");
      }
    }
    if (n.op_type == "QuantizeLinear") {
      const Tensor* zp = m.graph.find_initializer(n.inputs[2]);
      REQUIRE(zp);
      CHECK(zp->dtype() == DType::kU8);
      CHECK(zp->dims().empty());
    }
  }
  CHECK(weight_dqs == 36);
  for (const auto& t : m.graph.initializers)
    if (t.name().size() > 12 && t.name().substr(t.name().size() - 12) == "_proj.weight") CHECK(false);  // float gone
  // A second run finds no float weight left.
  auto again = run_named_pass("quantize-int8-static", m, {}, &s.calib.samples);
  REQUIRE(again.is_ok());
  CHECK(!again->changed);
  // int8 activations: symmetric, zero point 0.
  Model m8 = s.model;
  auto r8 = run_named_pass("quantize-int8-static", m8, {{"activation-type", "int8"}, {"exclude", "/lm_head/MatMul"}}, &s.calib.samples);
  REQUIRE(r8.is_ok());
  CHECK(r8->rewrites == 35);
  for (const Node& n : m8.graph.nodes)
    if (n.op_type == "QuantizeLinear") {
      const Tensor* zp = m8.graph.find_initializer(n.inputs[2]);
      CHECK(zp->dtype() == DType::kI8);
      CHECK(zp->data_as<int8_t>()[0] == 0);
    }
}

TEST_CASE("quantize-int8-static on Gemm: transB weight per row, int32 bias, close to float", "[passes][quantize][static]") {
  const int64_t K = 16, N = 6;
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.f, 0.5f);
  std::vector<float> w(N * K), b(N);
  for (auto& v : w) v = d(rng);
  for (auto& v : b) v = d(rng);
  Model m;
  m.opset_imports = {{"", 17}};
  ValueInfo x;
  x.name = "x";
  x.type.kind = ValueType::Kind::kTensor;
  x.type.elem = DType::kF32;
  x.type.has_shape = true;
  x.type.dims = {Dim{-1, "n", ""}, Dim{K, "", ""}};
  ValueInfo y = x;
  y.name = "y";
  y.type.dims[1].value = N;
  m.graph.inputs = {x};
  m.graph.outputs = {y};
  m.graph.initializers = {Tensor::from_vector("W", DType::kF32, {N, K}, w), Tensor::from_vector("B", DType::kF32, {N}, b)};
  Node gemm;
  gemm.name = "gemm0";
  gemm.op_type = "Gemm";
  gemm.inputs = {"x", "W", "B"};
  gemm.outputs = {"y"};
  gemm.attributes = {Attribute::make_int("transB", 1)};
  m.graph.nodes = {gemm};
  std::vector<Feeds> calib(4);
  for (auto& f : calib) {
    rt::Value v = rt::Value::allocate(DType::kF32, {8, K});
    for (int64_t i = 0; i < v.numel(); ++i) v.mutable_data<float>()[i] = d(rng) * 2.f;
    f["x"] = v;
  }
  Model q = m;
  auto r = run_named_pass("quantize-int8-static", q, {{"op-types", "MatMul,Gemm"}}, &calib);
  REQUIRE(r.is_ok());
  REQUIRE(r->rewrites == 1);
  CHECK(r->decisions[0].reason.find("int32 bias") != std::string::npos);
  const GraphIndex idx(q.graph);
  const Node& g = q.graph.nodes.back();
  REQUIRE(g.op_type == "Gemm");
  const Node& wdq = q.graph.nodes[idx.producer(g.inputs[1])];
  CHECK(wdq.attr_int("axis", -7) == 0);
  CHECK(q.graph.find_initializer(wdq.inputs[0])->dims() == std::vector<int64_t>{N, K});
  const Node& bdq = q.graph.nodes[idx.producer(g.inputs[2])];
  CHECK(q.graph.find_initializer(bdq.inputs[0])->dtype() == DType::kI32);
  // Differential: float vs QDQ through the runtime on a calibration sample.
  auto s0 = rt::Session::create(std::make_shared<const Model>(m), {1});
  auto s1 = rt::Session::create(std::make_shared<const Model>(q), {1});
  REQUIRE(s0.is_ok());
  REQUIRE(s1.is_ok());
  auto y0 = (*s0)->run(calib[0]);
  auto y1 = (*s1)->run(calib[0]);
  REQUIRE(y0.is_ok());
  REQUIRE(y1.is_ok());
  double max_err = 0, max_ref = 0;
  for (int64_t i = 0; i < (*y0)[0].numel(); ++i) {
    max_err = std::max(max_err, double(std::fabs((*y0)[0].data<float>()[i] - (*y1)[0].data<float>()[i])));
    max_ref = std::max(max_ref, double(std::fabs((*y0)[0].data<float>()[i])));
  }
  INFO("max error " << max_err << " of max |y| " << max_ref);
  CHECK(max_err < 0.03 * max_ref);
  // per-tensor weights: one scale, no axis.
  Model pt = m;
  REQUIRE(run_named_pass("quantize-int8-static", pt, {{"op-types", "Gemm"}, {"per-tensor", "1"}}, &calib).is_ok());
  const GraphIndex pidx(pt.graph);
  const Node& pdq = pt.graph.nodes[pidx.producer(pt.graph.nodes.back().inputs[1])];
  CHECK(pdq.find_attr("axis") == nullptr);
  CHECK(pt.graph.find_initializer(pdq.inputs[1])->dims().empty());
}

TEST_CASE("quantize-int8-static calibration methods: perplexity on stories260K", "[passes][quantize][static][llama2c][eval]") {
  StoriesFixture s;
  if (!load_stories(s)) return;
  const double base = perplexity_of(s.model, s.eval_tokens);
  std::map<std::string, double> ppl;
  for (const char* method : {"minmax", "percentile", "entropy", "mse"}) {
    Model m = s.model;
    auto r = run_named_pass("quantize-int8-static", m, {{"method", method}}, &s.calib.samples);
    REQUIRE(r.is_ok());
    REQUIRE(r->rewrites == 36);
    ppl[method] = perplexity_of(m, s.eval_tokens);
  }
  std::printf("stories260K int8-static perplexity on %zu tokens: float %.4f, minmax %.4f, percentile %.4f, "
              "entropy %.4f, mse %.4f\n",
              s.eval_tokens.size(), base, ppl["minmax"], ppl["percentile"], ppl["entropy"], ppl["mse"]);
  for (const auto& [method, p] : ppl) {
    INFO(method);
    CHECK(std::isfinite(p));
    CHECK(p < base * 1.5);  // int8 stays usable
  }
  CHECK(std::min(ppl["entropy"], ppl["percentile"]) <= ppl["minmax"]);
}

TEST_CASE("quantize-int8-static bad input", "[passes][quantize][static][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 1, 16)) return;
  Model m = s.model;
  auto none = run_named_pass("quantize-int8-static", m, {}, nullptr);
  REQUIRE(!none.is_ok());
  CHECK(none.status().message().find("int8-static needs --calib DATA") != std::string::npos);
  const std::vector<Feeds> empty;
  auto e = run_named_pass("quantize-int8-static", m, {}, &empty);
  REQUIRE(!e.is_ok());
  CHECK(e.status().message().find("empty") != std::string::npos);
  auto method = run_named_pass("quantize-int8-static", m, {{"method", "median"}}, &s.calib.samples);
  REQUIRE(!method.is_ok());
  CHECK(method.status().message().find("median") != std::string::npos);
  CHECK(!run_named_pass("quantize-int8-static", m, {{"method", "percentile"}, {"percentile", "101"}}, &s.calib.samples).is_ok());
  CHECK(!run_named_pass("quantize-int8-static", m, {{"method", "percentile"}, {"percentile", "abc"}}, &s.calib.samples).is_ok());
  CHECK(!run_named_pass("quantize-int8-static", m, {{"activation-type", "int4"}}, &s.calib.samples).is_ok());
  CHECK(!run_named_pass("quantize-int8-static", m, {{"op-types", "Conv"}}, &s.calib.samples).is_ok());
  Model old = s.model;
  old.set_opset("", 12);
  auto o = run_named_pass("quantize-int8-static", old, {}, &s.calib.samples);
  REQUIRE(!o.is_ok());
  CHECK(o.status().message().find("13") != std::string::npos);
  // percentile given with another method: a warning, not an error.
  Model w = s.model;
  auto r = run_named_pass("quantize-int8-static", w, {{"method", "minmax"}, {"percentile", "99.9"}}, &s.calib.samples);
  REQUIRE(r.is_ok());
  CHECK(r->warnings.size() == 1);
  CHECK(verify(m.graph).is_ok());  // failed runs left the model alone
  CHECK(op_counts(m.graph).count("QuantizeLinear") == 0);
}
