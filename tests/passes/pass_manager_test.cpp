// The PassManager and --passes one-liners: parsing, option resolution before any step runs,
// per-step records, verification after each step and the graph-changed hook.
#include "passes/pass_manager.h"

#include <catch2/catch.hpp>

#include "ir/graph_utils.h"
#include "passes/registry.h"
#include "tests/support/small_models.h"

namespace llmc {
namespace {

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
  // A bare name after an option: a continued value for list options, a switched-on boolean else.
  auto mixed = parse_pass_list("quantize-int8-static{method=entropy,per-tensor,op-types=MatMul,Gemm}");
  REQUIRE(mixed.is_ok());
  CHECK((*mixed)[0].options.at("method") == "entropy");
  CHECK((*mixed)[0].options.at("per-tensor") == "true");
  CHECK((*mixed)[0].options.at("op-types") == "MatMul,Gemm");
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
  Model m = testing::matmul_with_dead_branch();
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

}  // namespace
}  // namespace llmc
