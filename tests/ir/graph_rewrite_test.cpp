// GraphRewrite: the ordered sweep every rewriting pass uses to replace nodes and add
// initializers with unique names.
#include "ir/graph_rewrite.h"

#include <catch2/catch.hpp>

namespace llmc {
namespace {

Graph two_nodes() {
  Graph g;
  g.inputs.push_back({"x", {}, "", ""});
  g.initializers.push_back(Tensor::from_vector("w", DType::kF32, {2}, std::vector<float>{1, 2}));
  Node a;
  a.name = "a";
  a.op_type = "Mul";
  a.inputs = {"x", "w"};
  a.outputs = {"y"};
  Node b;
  b.name = "b";
  b.op_type = "Neg";
  b.inputs = {"y"};
  b.outputs = {"z"};
  g.nodes = {a, b};
  g.outputs.push_back({"z", {}, "", ""});
  return g;
}

TEST_CASE("GraphRewrite replaces a node, names new values uniquely and drops unused initializers", "[ir][rewrite]") {
  Graph g = two_nodes();
  GraphRewrite rw(g);
  // Replace a = Mul(x, w) by Add(x, w_new) writing the same output.
  const std::string w2 = rw.initializer(Tensor::from_vector("w", DType::kF32, {2}, std::vector<float>{3, 4}));
  CHECK(w2 == "w_1");  // "w" is taken
  const auto outs = rw.add("Add", "a", {"x", w2}, {}, 2);
  CHECK(rw.last().name == "a_1");
  CHECK(outs == std::vector<std::string>{"a_1_output_0", "a_1_output_1"});
  rw.last().outputs = {"y"};
  CHECK(rw.add_named("Identity", "id", {"y"}, "y") == "y_1");
  rw.last().outputs = {"unused_out"};
  rw.keep(g.nodes[1]);
  CHECK(g.initializers.size() == 1);  // nothing changes before commit
  CHECK(rw.commit() == 1);            // "w" is no longer read
  REQUIRE(g.nodes.size() == 3);
  CHECK(g.nodes[0].op_type == "Add");
  CHECK(g.nodes[2].name == "b");
  REQUIRE(g.initializers.size() == 1);
  CHECK(g.initializers[0].name() == "w_1");
  CHECK(verify(g).is_ok());
}

TEST_CASE("GraphRewrite without emitted nodes keeps the node list", "[ir][rewrite]") {
  Graph g = two_nodes();
  GraphRewrite rw(g);
  rw.initializer(Tensor::from_vector("orphan", DType::kF32, {1}, std::vector<float>{0}));
  CHECK(rw.commit() == 1);  // the new initializer nobody reads is removed again
  CHECK(g.nodes.size() == 2);
  CHECK(g.initializers.size() == 1);
}

}  // namespace
}  // namespace llmc
