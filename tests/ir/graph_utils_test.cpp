#include "ir/graph_utils.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/graph_builder.h"

namespace llmc {
namespace {

using Names = std::vector<std::string>;
using Catch::Matchers::Contains;

Node mk(const std::string& name, Names inputs, Names outputs, Names implicit = {}) {
  Node n;
  n.name = name;
  n.op_type = "Op";
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  n.implicit_inputs = std::move(implicit);
  return n;
}

Graph graph_of(std::vector<Node> nodes, Names outputs, Names inputs = {"x"}) {
  Graph g;
  g.nodes = std::move(nodes);
  for (auto& i : inputs) g.inputs.push_back({i, {}, "", ""});
  for (auto& o : outputs) g.outputs.push_back({o, {}, "", ""});
  return g;
}

Names node_names(const Graph& g) {
  Names r;
  for (const auto& n : g.nodes) r.push_back(n.name);
  return r;
}
Names sorted_names(const Graph& g) {
  Names r = node_names(g);
  std::sort(r.begin(), r.end());
  return r;
}

TEST_CASE("topological_sort keeps a valid order unchanged", "[ir][graph]") {
  // An independent node placed between dependent ones must not move.
  Graph g = graph_of({mk("A", {"x"}, {"a"}), mk("I", {"x"}, {"i"}), mk("B", {"a", "i"}, {"b"}),
                      mk("C", {"b", ""}, {"c", ""})},
                     {"c"});
  REQUIRE(verify(g).is_ok());
  REQUIRE(topological_sort(g).is_ok());
  CHECK(node_names(g) == Names{"A", "I", "B", "C"});
}

TEST_CASE("topological_sort orders a shuffled chain and diamond", "[ir][graph]") {
  SECTION("reversed chain") {
    Graph g = graph_of({mk("C", {"b"}, {"c"}), mk("B", {"a"}, {"b"}), mk("A", {"x"}, {"a"})},
                       {"c"});
    REQUIRE_FALSE(verify(g).is_ok());
    REQUIRE(topological_sort(g).is_ok());
    CHECK(verify(g).is_ok());
    CHECK(node_names(g) == Names{"A", "B", "C"});
  }
  SECTION("diamond") {
    Graph g = graph_of({mk("D", {"b", "c"}, {"d"}), mk("C", {"a"}, {"c"}),
                        mk("B", {"a", "a"}, {"b"}), mk("A", {"x"}, {"a"})},
                       {"d"});
    REQUIRE(topological_sort(g).is_ok());
    CHECK(verify(g).is_ok());
    // C and B become ready together and keep their stored order.
    CHECK(node_names(g) == Names{"A", "C", "B", "D"});
  }
}

TEST_CASE("topological_sort is stable for independent nodes", "[ir][graph]") {
  Graph g = graph_of({mk("B", {"a"}, {"b"}), mk("P", {"x"}, {"p"}), mk("A", {"x"}, {"a"}),
                      mk("Q", {"x"}, {"q"}), mk("R", {"x"}, {"r"})},
                     {"b"});
  REQUIRE(topological_sort(g).is_ok());
  CHECK(verify(g).is_ok());
  CHECK(node_names(g) == Names{"P", "A", "B", "Q", "R"});
}

TEST_CASE("topological_sort reports cycles naming a node on the cycle", "[ir][graph]") {
  SECTION("two-node cycle") {
    Graph g = graph_of({mk("A", {"x", "b"}, {"a"}), mk("B", {"a"}, {"b"})}, {"b"});
    Status st = topological_sort(g);
    REQUIRE_FALSE(st.is_ok());
    CHECK(st.code() == StatusCode::kInvalidInput);
    CHECK_THAT(st.message(), Contains("cycle"));
    CHECK((st.message().find("'A'") != std::string::npos ||
           st.message().find("'B'") != std::string::npos));
  }
  SECTION("self loop") {
    Graph g = graph_of({mk("S", {"s"}, {"s"})}, {"s"});
    CHECK_THAT(topological_sort(g).message(), Contains("cycle") && Contains("'S'"));
  }
  SECTION("a node downstream of the cycle is stored first") {
    // D only reads the cycle's output; it is not on the cycle and must not be named.
    Graph g = graph_of({mk("D", {"a"}, {"d"}), mk("A", {"x", "b"}, {"a"}),
                        mk("B", {"a"}, {"b"})},
                       {"d"});
    Status st = topological_sort(g);
    REQUIRE_FALSE(st.is_ok());
    CHECK_THAT(st.message(), Contains("cycle") && !Contains("'D'"));
  }
}

TEST_CASE("topological_sort and verify reject undefined and redefined values", "[ir][graph]") {
  SECTION("dangling input") {
    Graph g = graph_of({mk("A", {"x"}, {"a"}), mk("N", {"a", "missing"}, {"n"})}, {"n"});
    CHECK_THAT(topological_sort(g).message(), Contains("'N'") && Contains("'missing'"));
    CHECK_THAT(verify(g).message(), Contains("'N'") && Contains("'missing'"));
  }
  SECTION("value defined by two nodes") {
    Graph g = graph_of({mk("A", {"x"}, {"a"}), mk("A2", {"x"}, {"a"})}, {"a"});
    Status st = topological_sort(g);
    REQUIRE_FALSE(st.is_ok());
    CHECK_THAT(st.message(), Contains("'a'") && Contains("more than once"));
    CHECK_FALSE(verify(g).is_ok());
  }
  SECTION("node output shadows a graph input") {
    Graph g = graph_of({mk("A", {"x"}, {"x"})}, {"x"});
    CHECK((!topological_sort(g).is_ok() && !verify(g).is_ok()));
  }
}

TEST_CASE("implicit inputs order subgraph readers after producers", "[ir][graph]") {
  Graph g = graph_of({mk("If", {"x"}, {"y"}, {"a"}), mk("A", {"x"}, {"a"})}, {"y"});
  CHECK_THAT(verify(g).message(), Contains("'If'") && Contains("'a'"));
  REQUIRE(topological_sort(g).is_ok());
  CHECK(node_names(g) == Names{"A", "If"});
  CHECK(verify(g).is_ok());
  Graph bad = graph_of({mk("If", {"x"}, {"y"}, {"nowhere"})}, {"y"});
  CHECK_THAT(topological_sort(bad).message(), Contains("'nowhere'"));
}

TEST_CASE("verify checks initializer sizes and graph outputs", "[ir][graph]") {
  Graph g = graph_of({mk("A", {"x", "w"}, {"a"})}, {"a"});
  g.initializers.push_back(Tensor::zeros("w", DType::kF32, {2, 3}));
  g.initializers.push_back(Tensor::zeros("p", DType::kI4, {3}));
  g.initializers.push_back(Tensor::strings("s", {1}, {"hi"}));
  REQUIRE(verify(g).is_ok());
  SECTION("nbytes does not match the shape") {
    const std::vector<uint8_t> five(5, 0);
    g.initializers.push_back(Tensor::from_bytes("bad", DType::kF32, {2}, five.data(), 5));
    Status st = verify(g);
    REQUIRE_FALSE(st.is_ok());
    CHECK_THAT(st.message(), Contains("'bad'") && Contains("5 bytes"));
  }
  SECTION("graph output nobody produces") {
    g.outputs.push_back({"ghost", {}, "", ""});
    Status st = verify(g);
    REQUIRE_FALSE(st.is_ok());
    CHECK_THAT(st.message(), Contains("'ghost'"));
  }
}

TEST_CASE("remove_dead_nodes keeps only what reaches outputs", "[ir][graph]") {
  Graph g = graph_of({mk("A", {"x"}, {"a"}), mk("C", {"a"}, {"c"}), mk("E", {"x"}, {"e"}),
                      mk("D", {"c"}, {"d"}), mk("B", {"a"}, {"b"}),
                      mk("If", {"b"}, {"out2"}, {"e"}), mk("Sink", {"b"}, {})},
                     {"b", "out2"});
  CHECK(remove_dead_nodes(g) == 3);
  CHECK(node_names(g) == Names{"A", "E", "B", "If"});
  CHECK(verify(g).is_ok());
  CHECK(remove_dead_nodes(g) == 0);
}

TEST_CASE("remove_unused_initializers", "[ir][graph]") {
  Graph g = graph_of({mk("A", {"x", "w1"}, {"a"}), mk("If", {"a"}, {"y"}, {"w4"})},
                     {"y", "w3"});
  for (const char* n : {"w1", "w2", "w3", "w4", "w5"})
    g.initializers.push_back(Tensor::zeros(n, DType::kF32, {1}));
  CHECK(remove_unused_initializers(g) == 2);
  Names kept;
  for (const auto& t : g.initializers) kept.push_back(t.name());
  CHECK(kept == Names{"w1", "w3", "w4"});
  CHECK(remove_unused_initializers(g) == 0);
}

TEST_CASE("UniqueNames never returns a name in use", "[ir][graph]") {
  Graph g = graph_of({mk("n", {"x"}, {"a"})}, {"a"}, {"x", "x_1"});
  g.initializers.push_back(Tensor::zeros("w", DType::kF32, {1}));
  g.value_info.push_back({"vi", {}, "", ""});
  UniqueNames names(g);
  CHECK(names.make("fresh") == "fresh");
  CHECK(names.make("fresh") == "fresh_1");
  CHECK(names.make("fresh") == "fresh_2");
  CHECK((names.make("x") == "x_2" && names.make("x") == "x_3"));
  CHECK(names.make("n") == "n_1");
  CHECK(names.make("a") == "a_1");
  CHECK(names.make("w") == "w_1");
  CHECK(names.make("vi") == "vi_1");
  CHECK(names.make("x_1") == "x_1_1");
}

TEST_CASE("GraphIndex producer and consumers", "[ir][graph]") {
  Graph g = graph_of({mk("A", {"x"}, {"a", ""}), mk("M", {"a", "a"}, {"m"}),
                      mk("If", {"x"}, {"y"}, {"a"}), mk("B", {"m", "a"}, {"b"})},
                     {"b", "y"});
  GraphIndex idx(g);
  CHECK(idx.producer("a") == 0);
  CHECK(idx.producer("b") == 3);
  CHECK(idx.producer("x") == -1);
  CHECK((idx.producer("nope") == -1 && idx.producer("") == -1));
  CHECK(idx.consumers("a") == std::vector<int>{1, 2, 3});
  CHECK(idx.consumers("x") == std::vector<int>{0, 2});
  CHECK((idx.consumers("b").empty() && idx.consumers("nope").empty()));
  CHECK(idx.is_graph_output("y"));
  CHECK_FALSE(idx.is_graph_output("a"));
}

TEST_CASE("GraphBuilder makes unique node and output names", "[ir][graph]") {
  Graph g = graph_of({}, {}, {"x"});
  GraphBuilder b(g);
  const std::string w = b.scalar_f32("w", 2.f);
  const std::string m1 = b.op("Mul", "/layer/Mul", {"x", w});
  const std::string m2 = b.op("Mul", "/layer/Mul", {m1, w});
  CHECK(m1 == "/layer/Mul_output_0");
  CHECK(m2 == "/layer/Mul_1_output_0");
  REQUIRE(g.nodes.size() == 2);
  CHECK(g.nodes[0].name == "/layer/Mul");
  CHECK(g.nodes[1].name == "/layer/Mul_1");
  const auto outs = b.add("Split", "/s", {m2}, {Attribute::make_int("axis", 0)}, 3, "custom");
  CHECK(outs == Names{"/s_output_0", "/s_output_1", "/s_output_2"});
  CHECK(g.nodes.back().domain == "custom");
  CHECK(g.nodes.back().attr_int("axis", -1) == 0);
  CHECK(b.scalar_f32("w", 3.f) == "w_1");
  CHECK(b.const_i64("x", {1, 2}, {2}) == "x_1");  // graph input names are taken too
  CHECK(g.find_initializer("x_1")->nbytes() == 16);
  CHECK(g.find_initializer(b.scalar_i64("k", 5))->dims().empty());
  CHECK(b.unique_name("/layer/Mul") == "/layer/Mul_2");
  for (const auto& o : outs) g.outputs.push_back({o, {}, "", ""});
  CHECK(verify(g).is_ok());
}

TEST_CASE("Model opset and metadata", "[ir][graph]") {
  Model m;
  m.opset_imports = {{"", 17}, {"com.microsoft", 1}};
  CHECK((m.opset("") == 17 && m.opset("ai.onnx") == 17));
  CHECK(m.opset("com.microsoft") == 1);
  CHECK(m.opset("ai.onnx.ml") == -1);
  m.set_opset("ai.onnx", 18);
  CHECK(m.opset_imports.size() == 2);
  CHECK(m.opset("") == 18);
  m.set_opset("ai.onnx.ml", 3);
  CHECK(m.opset_imports.size() == 3);
  Model m2;
  m2.opset_imports = {{"ai.onnx", 13}};
  CHECK(m2.opset("") == 13);

  m.set_metadata("k", "v1");
  m.set_metadata("other", "o");
  m.set_metadata("k", "v2");
  REQUIRE(m.metadata_props.size() == 2);
  CHECK(m.metadata_props[0] == std::make_pair(std::string("k"), std::string("v2")));
  REQUIRE(m.find_metadata("k") != nullptr);
  CHECK(*m.find_metadata("k") == "v2");
  CHECK(m.find_metadata("missing") == nullptr);
}

TEST_CASE("topological_sort of a shuffled random DAG", "[ir][graph][property]") {
  for (uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    Graph g = graph_of({}, {}, {"x"});
    g.initializers.push_back(Tensor::zeros("w", DType::kF32, {1}));
    Names values = {"x", "w"};
    for (int i = 0; i < 200; ++i) {
      Node n = mk("n" + std::to_string(i), {}, {"v" + std::to_string(i)});
      const int fan_in = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < fan_in; ++k) n.inputs.push_back(values[rng() % values.size()]);
      if (rng() % 10 == 0) n.inputs.push_back("");  // omitted optional input
      if (rng() % 15 == 0) n.implicit_inputs.push_back(values[rng() % values.size()]);
      if (rng() % 5 == 0) n.outputs.push_back("v" + std::to_string(i) + "b");
      for (const auto& o : n.outputs) values.push_back(o);
      g.nodes.push_back(std::move(n));
    }
    g.outputs.push_back({values.back(), {}, "", ""});
    REQUIRE(verify(g).is_ok());
    Graph sorted = g;
    REQUIRE(topological_sort(sorted).is_ok());
    CHECK(node_names(sorted) == node_names(g));  // already valid: unchanged

    std::shuffle(g.nodes.begin(), g.nodes.end(), rng);
    const Names before = sorted_names(g);
    REQUIRE(topological_sort(g).is_ok());
    CHECK(verify(g).is_ok());
    CHECK(sorted_names(g) == before);  // a permutation of the same nodes
    const Names once = node_names(g);
    REQUIRE(topological_sort(g).is_ok());
    CHECK(node_names(g) == once);  // idempotent
  }
}

}  // namespace
}  // namespace llmc
