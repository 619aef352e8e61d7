// The PassManager and --passes one-liners: parsing, option resolution before any step runs,
// per-step records, verification after each step and the graph-changed hook.
#include "passes/pass_manager.h"

#include <catch2/catch.hpp>

#include "ir/graph_builder.h"
#include "passes/registry.h"

namespace llmc {
namespace {

// y = MatMul(x, w); a dead branch MatMul(x, w2) -> unused; an initializer nothing reads.
Model small_model() {
  Model m;
  m.set_opset("", 17);
  Graph& g = m.graph;
  ValueInfo x;
  x.name = "x";
  x.type.kind = ValueType::Kind::kTensor;
  x.type.elem = DType::kF32;
  g.inputs.push_back(x);
  g.initializers.push_back(Tensor::from_vector("w", DType::kF32, {4, 4}, std::vector<float>(16, 0.5f)));
  g.initializers.push_back(Tensor::from_vector("w2", DType::kF32, {4, 2}, std::vector<float>(8, 1.f)));
  g.initializers.push_back(Tensor::from_vector("orphan", DType::kF32, {3}, std::vector<float>{1, 2, 3}));
  GraphBuilder b(g);
  const std::string y = b.op("MatMul", "mm", {"x", "w"});
  b.op("MatMul", "dead", {"x", "w2"});
  ValueInfo out;
  out.name = y;
  g.outputs.push_back(out);
  return m;
}

TEST_CASE("parse_pass_list reads names, options and list values", "[passes][pipeline]") {
  auto steps = parse_pass_list("smooth-quant{alpha=0.5, op-types=MatMul,Gemm},quantize-int8-static{method=entropy} , remove-unused");
  REQUIRE(steps.is_ok());
  REQUIRE(steps->size() == 3);
  CHECK((*steps)[0].pass == "smooth-quant");
  CHECK((*steps)[0].options.at("op-types") == "MatMul,Gemm");
  CHECK((*steps)[0].options.at("alpha") == "0.5");
  CHECK((*steps)[1].options.at("method") == "entropy");
  CHECK((*steps)[2].pass == "remove-unused");
  CHECK((*steps)[2].where == "--passes step 3");
  CHECK(format_pass_list(*steps) == "smooth-quant{alpha=0.5,op-types=MatMul,Gemm},quantize-int8-static{method=entropy},remove-unused");
  for (const char* bad : {"", "a{x=1", "a{x=1}b", "a{=1}", "a{x=1,x=2}", ",,"}) {
    INFO(bad);
    CHECK_FALSE(parse_pass_list(bad).is_ok());
  }
}

TEST_CASE("resolve_steps fails on the first bad step before anything runs", "[passes][pipeline]") {
  auto steps = parse_pass_list("remove-unused,smooth-quant{alpha=2}");
  REQUIRE(steps.is_ok());
  Status st = resolve_steps(*steps);
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.message() == "--passes step 2: pass 'smooth-quant': option 'alpha' must be a number in [0, 1], got '2'");
  auto ok = parse_pass_list("remove-unused,quantize-fp16{keep-io-types=0}");
  REQUIRE(resolve_steps(*ok).is_ok());
  CHECK((*ok)[1].options.at("keep-io-types") == "false");
  CHECK((*ok)[1].options.at("max-finite-val") == "65504");
}

TEST_CASE("PassManager records each step and calls the graph-changed hook", "[passes][pipeline]") {
  Model m = small_model();
  auto steps = parse_pass_list("remove-unused,quantize-int8-dynamic,remove-unused");
  REQUIRE(steps.is_ok());
  REQUIRE(resolve_steps(*steps).is_ok());
  PassContext ctx;
  int changed = 0, after_calls = 0;
  ctx.on_graph_changed = [&] { ++changed; };
  auto records = PassManager().run(m, *steps, ctx, [&](size_t i, const StepRecord& r, const Model& model) {
    CHECK(i == static_cast<size_t>(after_calls++));
    return verify(model.graph);
  });
  REQUIRE(records.is_ok());
  REQUIRE(records->size() == 3);
  const StepRecord& dce = (*records)[0];
  CHECK(dce.params_before == 16 + 8 + 3);
  CHECK(dce.params_after == 16);
  CHECK(dce.result.decisions.size() == 1);
  CHECK(dce.result.decisions[0].node == "dead");
  CHECK((*records)[1].result.changed);
  CHECK((*records)[1].params_after > 16);  // int8 values + scales
  CHECK_FALSE((*records)[2].result.changed);  // nothing left to remove: the pass is idempotent
  CHECK(changed == 2);
  CHECK(after_calls == 3);
}

TEST_CASE("remove-unused keeps graph inputs and outputs and is idempotent", "[passes][remove-unused]") {
  Model m = small_model();
  ValueInfo stale;
  stale.name = "gone";
  m.graph.value_info.push_back(stale);
  PassContext ctx;
  auto r = run_pass("remove-unused", m, {}, ctx);
  REQUIRE(r.is_ok());
  CHECK(r->changed);
  CHECK(r->rewrites == 1 + 2 + 1);  // a node, two initializers, a value_info entry
  CHECK(m.graph.nodes.size() == 1);
  CHECK(m.graph.initializers.size() == 1);
  CHECK(m.graph.inputs.size() == 1);
  CHECK(m.graph.value_info.empty());
  CHECK(r->bytes_after == 64);
  auto again = run_pass("remove-unused", m, {}, ctx);
  REQUIRE(again.is_ok());
  CHECK_FALSE(again->changed);
  CHECK_FALSE(run_pass("remove-unused", m, {{"aggressive", "1"}}, ctx).is_ok());
}

}  // namespace
}  // namespace llmc
