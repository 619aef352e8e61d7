// Products the Session runs grouped or packed: constant int8 weights packed once (never an
// initializer that may be fed), DynamicQuantizeMatMuls and float MatMuls of one activation run
// as one step, and int8 decode with the fused epilogue; each bit-exact against the ungrouped
// products.
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <random>

#include "formats/model_loader.h"
#include "formats/onnx_format.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/qgemm.h"
#include "runtime/session.h"
#include "tests/support/run_node.h"
#include "tests/support/session_models.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::rt;
using namespace llmc::testing;

// The session packs a constant B once and reuses it; an initializer that is also a graph input
// may be fed, so it is never packed (the fed weights must be used).
TEST_CASE("session: DynamicQuantizeMatMul packs constant weights once, never fed ones", "[runtime][qgemm][session]") {
  std::mt19937 rng(13);
  const int64_t M = 3, K = 37, N = 70;
  auto weights = [&] { return random_int8("W", {K, N}, rng); };
  for (bool w_is_input : {false, true}) {
    Model m;
    m.opset_imports = {{"", 17}, {"com.microsoft", 1}};
    const Tensor w0 = weights();
    m.graph.initializers.push_back(w0);
    m.graph.initializers.push_back(Tensor::from_vector("S", DType::kF32, {}, std::vector<float>{0.02f}));
    m.graph.inputs = {tensor_info("X", DType::kF32, {M, K})};
    if (w_is_input) m.graph.inputs.push_back(tensor_info("W", DType::kI8, {K, N}));
    m.graph.outputs = {tensor_info("Y", DType::kF32, {M, N})};
    const Node n = node("dqmm", "DynamicQuantizeMatMul", {"X", "W", "S"}, {"Y"}, "com.microsoft");
    m.graph.nodes = {n};
    auto created = session_for(m);
    auto& session = *created;
    for (int run = 0; run < 3; ++run) {
      const Value x = make_value(DType::kF32, {M, K}, random_floats(M * K, rng));
      std::map<std::string, Value> feeds{{"X", x}};
      Tensor w = w0;
      if (w_is_input && run > 0) {  // new weights each run
        w = weights();
        feeds["W"] = Value::copy_of(w);
      }
      auto got = session.run(feeds);
      REQUIRE(got.is_ok());
      // The same node run on its own (no session: nothing packed or cached).
      const Value want = run1(n, {x, Value::copy_of(w), Value::copy_of(m.graph.initializers[1])}, 1);
      const float* g = got.value()[0].data<float>();
      const float* e = want.data<float>();
      for (int64_t i = 0; i < M * N; ++i) REQUIRE(g[i] == e[i]);
    }
    // The packed panels are what the step streams each run (idle workers read them ahead);
    // fed weights are not packed, so nothing is declared.
    const auto packed = qgemm_pack_b(w0.data_as<int8_t>(), K, N, N, true, nullptr);
    CHECK(session.streaming_bytes() == (w_is_input ? 0 : packed->data.size()));
  }
}

// DynamicQuantizeMatMuls reading one activation (Q, K, V) run as one step: each output has the
// bits its own node gives alone, for decode rows (one parallel loop over all packed weights) and
// prefill rows. Not grouped: a product of another activation, and one whose weight may be fed.
TEST_CASE("session: DynamicQuantizeMatMuls of one activation run as one step, bit-exact", "[runtime][qgemm][session]") {
  std::mt19937 rng(16);
  const int64_t K = 37;
  auto u8 = [&](const std::string& name, std::vector<int64_t> dims) {
    std::uniform_int_distribution<int> u(0, 255);
    std::vector<uint8_t> v(static_cast<size_t>(shape_numel(dims)));
    for (auto& x : v) x = static_cast<uint8_t>(u(rng));
    return Tensor::from_vector(name, DType::kU8, std::move(dims), v);
  };
  Model m;
  m.opset_imports = {{"", 17}, {"com.microsoft", 1}};
  const auto s2 = random_floats(130, rng, 0.01f, 0.03f), s3 = random_floats(5, rng, 0.01f, 0.03f);
  const auto bias2 = random_floats(130, rng);
  m.graph.initializers = {random_int8("W1", {K, 70}, rng),
                          Tensor::from_vector("S1", DType::kF32, {}, std::vector<float>{0.02f}),
                          u8("W2", {K, 130}), Tensor::from_vector("S2", DType::kF32, {130}, s2),
                          u8("Z2", {130}), Tensor::from_vector("B2", DType::kF32, {130}, bias2),
                          random_int8("W3", {K, 5}, rng), Tensor::from_vector("S3", DType::kF32, {5}, s3),
                          random_int8("WF", {K, 70}, rng)};
  const std::vector<Node> nodes = {
      node("q", "DynamicQuantizeMatMul", {"X", "W1", "S1"}, {"Y1"}, "com.microsoft"),
      node("other", "DynamicQuantizeMatMul", {"Xb", "W1", "S1"}, {"Y4"}, "com.microsoft"),
      node("k", "DynamicQuantizeMatMul", {"X", "W2", "S2", "Z2", "B2"}, {"Y2"}, "com.microsoft"),
      node("fed", "DynamicQuantizeMatMul", {"X", "WF", "S1"}, {"Y5"}, "com.microsoft"),
      node("v", "DynamicQuantizeMatMul", {"X", "W3", "S3"}, {"Y3"}, "com.microsoft")};
  m.graph.nodes = nodes;
  for (int64_t M : {1, 3}) {
    INFO("rows " << M);
    m.graph.inputs = {tensor_info("X", DType::kF32, {M, K}), tensor_info("Xb", DType::kF32, {M, K}),
                      tensor_info("WF", DType::kI8, {K, 70})};
    m.graph.outputs.clear();
    for (const auto& [y, n] : std::vector<std::pair<std::string, int64_t>>{{"Y1", 70}, {"Y4", 70}, {"Y2", 130}, {"Y5", 70}, {"Y3", 5}})
      m.graph.outputs.push_back(tensor_info(y, DType::kF32, {M, n}));
    auto session = session_for(m);
    session->set_profiling(true);
    for (int run = 0; run < 2; ++run) {  // the second run reuses the packed weights
      const Value x = make_value(DType::kF32, {M, K}, random_floats(M * K, rng, -2.f, 2.f));
      const Value xb = make_value(DType::kF32, {M, K}, random_floats(M * K, rng));
      const Value wf = Value::copy_of(m.graph.initializers[8]);
      auto got = session->run({{"X", x}, {"Xb", xb}, {"WF", wf}});
      REQUIRE(got.is_ok());
      auto init = [&](const char* name) {
        for (const auto& t : m.graph.initializers)
          if (t.name() == name) return Value::copy_of(t);
        FAIL("no initializer " << name);
        return Value();
      };
      const std::vector<Value> want = {run1(nodes[0], {x, init("W1"), init("S1")}, 1),
                                       run1(nodes[1], {xb, init("W1"), init("S1")}, 1),
                                       run1(nodes[2], {x, init("W2"), init("S2"), init("Z2"), init("B2")}, 1),
                                       run1(nodes[3], {x, wf, init("S1")}, 1),
                                       run1(nodes[4], {x, init("W3"), init("S3")}, 1)};
      for (size_t o = 0; o < want.size(); ++o) {
        INFO("output " << m.graph.outputs[o].name);
        REQUIRE(got.value()[o].shape() == want[o].shape());
        for (int64_t i = 0; i < want[o].numel(); ++i) REQUIRE(got.value()[o].data<float>()[i] == want[o].data<float>()[i]);
      }
    }
    // q, k and v ran as one step; "other" and "fed" on their own: three steps a run.
    REQUIRE(session->profile().at("DynamicQuantizeMatMul").calls == 2 * 3);
  }
}

// Float MatMuls reading one activation with constant 2-D weights (Q, K, V; gate, up) run as one
// step: decode rows stream every product's packed panels in one parallel loop. Each output is
// bit-identical to the same MatMul run alone in a session (weights packed alike: the models are
// read from files, so float32 weights are packed from the file mapping); a weight narrower than
// a panel and one a feed may replace stay separate steps.
TEST_CASE("session: float MatMuls of one activation run as one step, bit-exact", "[runtime][session]") {
  std::mt19937 rng(21);
  const int64_t K = 40;
  const std::string dir = scratch_dir("matmul_group");
  for (DType dt : {DType::kF32, DType::kF16}) {
    auto weight = [&](const std::string& name, int64_t N) {
      const Value v = float_value(dt, {K, N}, random_floats(K * N, rng));
      return v.to_tensor(name);
    };
    const std::vector<Tensor> weights = {weight("W1", 64), weight("W2", 96), weight("WN", 8), weight("WF", 64)};
    for (int64_t M : {1, 3}) {
      INFO("dtype " << dtype_name(dt) << ", rows " << M);
      // grouped: every MatMul reads X; separate: each its own input, fed the same values.
      std::vector<Value> outs[2];
      for (bool grouped : {true, false}) {
        Model m;
        m.opset_imports = {{"", 17}};
        m.graph.initializers = weights;
        const char* ws[] = {"W1", "W2", "WN", "WF"};
        const int64_t ns[] = {64, 96, 8, 64};
        for (int i = 0; i < 4; ++i) {
          const std::string x = grouped ? "X" : "X" + std::to_string(i);
          if (grouped ? i == 0 : true) m.graph.inputs.push_back(tensor_info(x, dt, {1, M, K}));
          m.graph.nodes.push_back(node("mm" + std::to_string(i), "MatMul", {x, ws[i]}, {"Y" + std::to_string(i)}));
          m.graph.outputs.push_back(tensor_info("Y" + std::to_string(i), dt, {1, M, ns[i]}));
        }
        m.graph.inputs.push_back(tensor_info("WF", dt, {K, 64}));  // a feed may replace WF
        const std::string path = dir + "/" + dtype_name(dt) + (grouped ? "_grouped_" : "_separate_") + std::to_string(M) + ".onnx";
        REQUIRE(write_onnx(m, path).is_ok());
        auto loaded = load_model(path);
        REQUIRE(loaded.is_ok());
        auto session = session_for(loaded.value());
        session->set_profiling(true);
        std::mt19937 feed_rng(5);  // the same activations for both models
        for (int run = 0; run < 2; ++run) {  // the second run streams the packed panels
          const Value x = float_value(dt, {1, M, K}, random_floats(M * K, feed_rng, -2.f, 2.f));
          std::map<std::string, Value> feeds{{"WF", Value::copy_of(weights[3])}};
          if (grouped) feeds["X"] = x;
          else for (int i = 0; i < 4; ++i) feeds["X" + std::to_string(i)] = x;
          auto got = session->run(feeds);
          REQUIRE(got.is_ok());
          if (run == 1) outs[grouped ? 0 : 1] = std::move(got).value();
        }
        // W1 and W2 ran as one step when grouped, WN (narrow) on its own; WF (a feed may replace
        // it) is profiled with the products of two activations.
        CHECK(session->profile().at("MatMul").calls == 2 * (grouped ? 2 : 3));
        CHECK(session->profile().at("MatMul (activations)").calls == 2);
        const size_t packed_bytes = session->streaming_bytes();
        CHECK(packed_bytes >= dtype_storage_bytes(dt, K * (64 + 96)));
      }
      for (int i = 0; i < 4; ++i) {
        INFO("output Y" << i);
        REQUIRE(outs[0][i].shape() == outs[1][i].shape());
        REQUIRE(std::memcmp(outs[0][i].raw(), outs[1][i].raw(), outs[0][i].nbytes()) == 0);
      }
    }
  }
}

// Decode rows whose every product is packed take the fused epilogue (AVX-512 VNNI: float
// results straight from the panel kernel): per-column and per-tensor scales, a bias, uint8
// weights with zero points, each output bit-identical to the node run on its own.
TEST_CASE("session: int8 decode with the fused epilogue is bit-exact", "[runtime][qgemm][session]") {
  std::mt19937 rng(17);
  const int64_t K = 45;
  std::uniform_int_distribution<int> u(0, 255);
  std::vector<uint8_t> w2(static_cast<size_t>(K * 130)), z2(130);
  for (auto& x : w2) x = static_cast<uint8_t>(u(rng));
  for (auto& x : z2) x = static_cast<uint8_t>(u(rng));
  Model m;
  m.opset_imports = {{"", 17}, {"com.microsoft", 1}};
  m.graph.initializers = {random_int8("W1", {K, 70}, rng), Tensor::from_vector("S1", DType::kF32, {}, std::vector<float>{0.02f}),
                          Tensor::from_vector("W2", DType::kU8, {K, 130}, w2),
                          Tensor::from_vector("S2", DType::kF32, {130}, random_floats(130, rng, 0.01f, 0.03f)),
                          Tensor::from_vector("Z2", DType::kU8, {130}, z2),
                          Tensor::from_vector("B2", DType::kF32, {130}, random_floats(130, rng))};
  const std::vector<Node> nodes = {node("q", "DynamicQuantizeMatMul", {"X", "W1", "S1"}, {"Y1"}, "com.microsoft"),
                                   node("k", "DynamicQuantizeMatMul", {"X", "W2", "S2", "Z2", "B2"}, {"Y2"}, "com.microsoft")};
  m.graph.nodes = nodes;
  m.graph.inputs = {tensor_info("X", DType::kF32, {1, K})};
  m.graph.outputs = {tensor_info("Y1", DType::kF32, {1, 70}), tensor_info("Y2", DType::kF32, {1, 130})};
  auto session = session_for(m);
  auto init = [&](size_t i) { return Value::copy_of(m.graph.initializers[i]); };
  for (int run = 0; run < 3; ++run) {
    const Value x = make_value(DType::kF32, {1, K}, random_floats(K, rng, -3.f, 3.f));
    auto got = session->run({{"X", x}});
    REQUIRE(got.is_ok());
    const Value want[] = {run1(nodes[0], {x, init(0), init(1)}, 1), run1(nodes[1], {x, init(2), init(3), init(4), init(5)}, 1)};
    for (int o = 0; o < 2; ++o) {
      INFO("run " << run << ", output Y" << o + 1);
      REQUIRE(got.value()[o].nbytes() == want[o].nbytes());
      REQUIRE(std::memcmp(got.value()[o].raw(), want[o].raw(), want[o].nbytes()) == 0);
    }
  }
}

// Gemm with a constant B (Hugging Face GPT-2's Conv1D projections): packed once, transposed
// first for transB, the bias broadcast into Y before the product is accumulated; against
// float64 for prefill and decode row counts, every C broadcast and beta.
TEST_CASE("session: Gemm over a constant B (packed once) matches float64", "[runtime][matmul][session]") {
  std::mt19937 rng(29);
  const int64_t K = 45, N = 70;
  // Values as the model holds them: float32, or rounded to float16 (then the reference uses
  // the rounded values, and the float16 output's own rounding is allowed for).
  auto held = [](DType dt, std::vector<float> v) {
    if (dt == DType::kF16)
      for (auto& x : v) x = rt::half_to_float(rt::float_to_half(x));
    return v;
  };
  auto tensor = [](DType dt, const std::string& name, std::vector<int64_t> dims, const std::vector<float>& v) {
    if (dt == DType::kF32) return Tensor::from_vector(name, dt, std::move(dims), v);
    std::vector<uint16_t> h(v.size());
    rt::floats_to_halfs(v.data(), h.data(), static_cast<int64_t>(v.size()));
    return Tensor::from_vector(name, dt, std::move(dims), h);
  };
  for (DType dt : {DType::kF32, DType::kF16})
    for (int tb = 0; tb < 2; ++tb)
      for (std::vector<int64_t> cshape : {std::vector<int64_t>{}, {N}, {1, N}})
        for (float beta : {1.f, -2.f}) {
          INFO(dtype_name(dt) << " transB " << tb << " C " << cshape.size() << "-D beta " << beta);
          Model m;
          m.opset_imports = {{"", 13}};
          const auto B = held(dt, random_floats(K * N, rng));
          const auto C = held(dt, random_floats(std::max<int64_t>(1, shape_numel(cshape)), rng));
          m.graph.initializers = {tensor(dt, "B", tb ? std::vector<int64_t>{N, K} : std::vector<int64_t>{K, N}, B),
                                  tensor(dt, "C", cshape, C)};
          m.graph.inputs = {tensor_info("X", dt, {-1, K})};
          m.graph.outputs = {tensor_info("Y", dt, {-1, N})};
          Node n = node("gemm", "Gemm", {"X", "B", "C"}, {"Y"});
          n.attributes = {Attribute::make_int("transB", tb), Attribute::make_float("beta", beta)};
          m.graph.nodes = {n};
          auto session = session_for(m);
          for (int64_t M : {1, 3, 40}) {
            const auto A = held(dt, random_floats(M * K, rng));
            auto got = session->run({{"X", float_value(dt, {M, K}, A)}});
            REQUIRE(got.is_ok());
            const auto y = floats_of(got.value()[0]);
            for (int64_t i = 0; i < M; ++i)
              for (int64_t j = 0; j < N; ++j) {
                double s = 0;
                for (int64_t k = 0; k < K; ++k) s += double(A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
                s += beta * double(cshape.empty() ? C[0] : C[j]);
                const double tol = dt == DType::kF32 ? 8e-5 : 1e-3;
                REQUIRE(std::fabs(y[i * N + j] - s) < tol * (1 + std::fabs(s)));
              }
          }
        }
}
