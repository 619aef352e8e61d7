// Low-rank pairs (x · A) · B of one activation run as one step (session_fold_lowrank.cpp):
// every output has the bits of the two MatMuls run one after the other, for decode rows (packed
// A panels in one loop, then packed B panels) and prefill rows, with a narrow factor (never
// packed) in the group; a chain of three products pairs its first two only; an intermediate that
// is also a graph output is not folded.
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <random>

#include "formats/model_loader.h"
#include "formats/onnx_format.h"
#include "runtime/session.h"
#include "tests/support/run_node.h"
#include "tests/support/session_models.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::rt;
using namespace llmc::testing;

TEST_CASE("session: low-rank pairs of one activation run as one step, bit-exact", "[runtime][session][lowrank]") {
  std::mt19937 rng(23);
  const int64_t K = 40;
  const std::string dir = scratch_dir("lowrank_pairs");
  auto weight = [&](const std::string& name, int64_t k, int64_t n) {
    return Tensor::from_vector(name, DType::kF32, {k, n}, random_floats(k * n, rng, -0.5f, 0.5f));
  };
  // (A, B) pairs on X, packable; one with a narrow A (8 columns: not packed) on X2; then a
  // chain X -> C1 -> C2 -> C3.
  const std::vector<Tensor> weights = {weight("A1", K, 64), weight("B1", 64, 72), weight("A2", K, 80),
                                       weight("B2", 80, 64), weight("A3", K, 8),  weight("B3", 8, 64),
                                       weight("C1", K, 64), weight("C2", 64, 64), weight("C3", 64, 64)};
  for (int64_t M : {1, 3}) {
    INFO("rows " << M);
    std::vector<Value> outs[2];
    for (bool fused : {true, false}) {
      Model m;
      m.opset_imports = {{"", 17}};
      m.graph.initializers = weights;
      m.graph.inputs = {tensor_info("X", DType::kF32, {1, M, K}), tensor_info("X2", DType::kF32, {1, M, K})};
      const std::vector<std::tuple<std::string, std::string, std::string, int64_t, int64_t>> pairs = {
          {"A1", "B1", "1", 64, 72}, {"A2", "B2", "2", 80, 64}, {"A3", "B3", "3", 8, 64}};
      for (const auto& [a, b, i, r, n] : pairs) {
        m.graph.nodes.push_back(node("mm" + a, "MatMul", {i == "3" ? "X2" : "X", a}, {"T" + i}));
        m.graph.nodes.push_back(node("mm" + b, "MatMul", {"T" + i, b}, {"Y" + i}));
        m.graph.outputs.push_back(tensor_info("Y" + i, DType::kF32, {1, M, n}));
      }
      m.graph.nodes.push_back(node("mmC1", "MatMul", {"X", "C1"}, {"U1"}));
      m.graph.nodes.push_back(node("mmC2", "MatMul", {"U1", "C2"}, {"U2"}));
      m.graph.nodes.push_back(node("mmC3", "MatMul", {"U2", "C3"}, {"Y4"}));
      m.graph.outputs.push_back(tensor_info("Y4", DType::kF32, {1, M, 64}));
      if (!fused)  // intermediates read by a graph output too: nothing folds
        for (const auto& [t, r] : std::vector<std::pair<std::string, int64_t>>{{"T1", 64}, {"T2", 80}, {"T3", 8}, {"U1", 64}})
          m.graph.outputs.push_back(tensor_info(t, DType::kF32, {1, M, r}));
      const std::string path = dir + (fused ? "/fused_" : "/separate_") + std::to_string(M) + ".onnx";
      REQUIRE(write_onnx(m, path).is_ok());  // loaded back mapped: float32 weights get packed
      auto loaded = load_model(path);
      REQUIRE(loaded.is_ok());
      auto session = session_for(loaded.value());
      session->set_profiling(true);
      std::mt19937 feed_rng(5);
      for (int run = 0; run < 2; ++run) {  // the second run streams the packed panels
        const Value x = make_value(DType::kF32, {1, M, K}, random_floats(M * K, feed_rng, -2.f, 2.f));
        const Value x2 = make_value(DType::kF32, {1, M, K}, random_floats(M * K, feed_rng, -2.f, 2.f));
        auto got = session->run({{"X", x}, {"X2", x2}});
        REQUIRE(got.is_ok());
        if (run == 1) outs[fused ? 0 : 1] = std::move(got).value();
      }
      // Fused: one step for the three pairs of X, one for X2's, and C3 on its own.
      if (fused) CHECK(session->profile().at("MatMul").calls == 2 * 3);
      else CHECK(session->profile().at("MatMul").calls > 2 * 5);
      if (fused) CHECK(session->streaming_bytes() >= 4 * size_t(K * (64 + 80 + 64) + 64 * 72 + 80 * 64 + 8 * 64 + 64 * 64));
    }
    for (int i = 0; i < 4; ++i) {
      INFO("output Y" << i + 1);
      REQUIRE(outs[0][i].shape() == outs[1][i].shape());
      REQUIRE(std::memcmp(outs[0][i].raw(), outs[1][i].raw(), outs[0][i].nbytes()) == 0);
    }
  }
}

TEST_CASE("session: a low-rank pair over an empty input dimension gives zeros", "[runtime][session][lowrank][hostile]") {
  Model m;
  m.opset_imports = {{"", 17}};
  m.graph.initializers = {Tensor::from_vector("A", DType::kF32, {0, 64}, std::vector<float>{}),
                          Tensor::from_vector("B", DType::kF32, {64, 8}, std::vector<float>(64 * 8, 1.f))};
  m.graph.inputs = {tensor_info("X", DType::kF32, {2, 0})};
  m.graph.outputs = {tensor_info("Y", DType::kF32, {2, 8})};
  m.graph.nodes = {node("a", "MatMul", {"X", "A"}, {"T"}), node("b", "MatMul", {"T", "B"}, {"Y"})};
  auto session = session_for(m);
  for (int run = 0; run < 3; ++run) {  // buffers are reused between runs: never stale bytes
    auto got = session->run({{"X", make_value(DType::kF32, {2, 0}, std::vector<float>{})}});
    REQUIRE(got.is_ok());
    for (int64_t i = 0; i < 16; ++i) REQUIRE(got.value()[0].data<float>()[i] == 0.f);
  }
}

TEST_CASE("session: a low-rank pair whose intermediate exceeds the memory limit is an error, not an allocation",
          "[runtime][session][lowrank][hostile]") {
  Model m;
  m.opset_imports = {{"", 17}};
  m.graph.initializers = {Tensor::from_vector("A", DType::kF32, {1, 256}, std::vector<float>(256, 1.f)),
                          Tensor::from_vector("B", DType::kF32, {256, 1}, std::vector<float>(256, 1.f))};
  m.graph.inputs = {tensor_info("X", DType::kF32, {4096, 1})};
  m.graph.outputs = {tensor_info("Y", DType::kF32, {4096, 1})};
  m.graph.nodes = {node("a", "MatMul", {"X", "A"}, {"T"}), node("b", "MatMul", {"T", "B"}, {"Y"})};
  rt::SessionOptions options;
  options.threads = 2;
  options.limits.max_tensor_bytes = 1 << 20;  // T would be 4096 x 256 floats: 4 MB
  auto session = rt::Session::create(std::make_shared<const Model>(m), options);
  REQUIRE(session.is_ok());
  auto got = session.value()->run({{"X", make_value(DType::kF32, {4096, 1}, std::vector<float>(4096, 1.f))}});
  REQUIRE_FALSE(got.is_ok());
  CHECK_THAT(got.status().message(), Catch::Contains("limit"));
}
