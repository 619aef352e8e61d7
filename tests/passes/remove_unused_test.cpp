// remove-unused: dead nodes, unused initializers and stale value_info go; the model's inputs
// and outputs stay; a second run changes nothing.
#include "passes/remove_unused.h"

#include <catch2/catch.hpp>

#include "ir/graph_utils.h"
#include "passes/registry.h"
#include "tests/support/small_models.h"

namespace llmc {
namespace {

TEST_CASE("remove-unused keeps graph inputs and outputs and is idempotent", "[passes][remove-unused]") {
  Model m = testing::matmul_with_dead_branch();
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
