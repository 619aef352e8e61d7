// What a Session does at plan time to integer MatMul patterns: constant int8 weights packed once
// (never an initializer that may be fed), and the QDQ form around MatMul run as one integer
// product, checked against float64 of the dequantized values.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "formats/model_loader.h"
#include "formats/onnx_format.h"
#include "tests/support/test_data.h"
#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/qgemm.h"
#include "runtime/session.h"
#include "tests/support/run_node.h"

using namespace llmc;
using namespace llmc::rt;
using namespace llmc::testing;

namespace {

Tensor random_int8(const std::string& name, std::vector<int64_t> dims, std::mt19937& rng) {
  std::uniform_int_distribution<int> u(-128, 127);
  std::vector<int8_t> v(static_cast<size_t>(shape_numel(dims)));
  for (auto& x : v) x = static_cast<int8_t>(u(rng));
  return Tensor::from_vector(name, DType::kI8, std::move(dims), v);
}

Node node(const std::string& name, const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
          const std::string& domain = "") {
  Node n;
  n.name = name;
  n.op_type = op;
  n.domain = domain;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// `f` as a float32 value, or rounded to float16; and any such value back as floats.
Value float_value(DType dt, const std::vector<int64_t>& shape, const std::vector<float>& f) {
  if (dt == DType::kF32) return make_value(DType::kF32, shape, f);
  std::vector<uint16_t> h(f.size());
  floats_to_halfs(f.data(), h.data(), static_cast<int64_t>(f.size()));
  return make_value(DType::kF16, shape, h);
}
std::vector<float> floats_of(const Value& v) {
  std::vector<float> out(static_cast<size_t>(v.numel()));
  if (v.dtype() == DType::kF32) std::copy(v.data<float>(), v.data<float>() + v.numel(), out.begin());
  else halfs_to_floats(v.data<uint16_t>(), out.data(), v.numel());
  return out;
}

// Kernel launches a profiled session made (each fold turns several into one).
size_t launches(const Session& s) {
  size_t n = 0;
  for (const auto& [op, t] : s.profile()) n += t.calls;
  return n;
}

// RMSNorm as the llama2c import writes it, on X [rows, D] with weight W: float32, or float16
// with the statistics in float32 between two Casts (as quantize --mode fp16 leaves it). With
// `expose`, the reciprocal is also a graph output, so the fold must leave the chain as written.
Model rmsnorm_chain(DType t, int64_t rows, int64_t D, const Tensor& w, bool expose) {
  const bool half = t == DType::kF16;
  Model m;
  m.opset_imports = {{"", 17}};
  m.graph.initializers = {w, Tensor::from_vector("two", DType::kF32, {}, std::vector<float>{2.f}),
                          Tensor::from_vector("eps", DType::kF32, {}, std::vector<float>{1e-5f})};
  m.graph.inputs = {tensor_info("X", t, {rows, D})};
  m.graph.outputs = {tensor_info("Y", t, {rows, D})};
  Node mean = node("mean", "ReduceMean", {"sq"}, {"ms"});
  mean.attributes = {Attribute::make_ints("axes", {-1}), Attribute::make_int("keepdims", 1)};
  Node widen = node("widen", "Cast", {"X"}, {"X32"}), narrow = node("narrow", "Cast", {"inv"}, {"inv16"});
  widen.attributes = {Attribute::make_int("to", static_cast<int64_t>(DType::kF32))};
  narrow.attributes = {Attribute::make_int("to", static_cast<int64_t>(DType::kF16))};
  if (half) m.graph.nodes.push_back(widen);
  m.graph.nodes.insert(m.graph.nodes.end(),
                       {node("pow", "Pow", {half ? "X32" : "X", "two"}, {"sq"}), mean,
                        node("add", "Add", {"ms", "eps"}, {"mse"}), node("sqrt", "Sqrt", {"mse"}, {"rms"}),
                        node("rcp", "Reciprocal", {"rms"}, {"inv"})});
  if (half) m.graph.nodes.push_back(narrow);
  m.graph.nodes.insert(m.graph.nodes.end(), {node("mul", "Mul", {"X", half ? "inv16" : "inv"}, {"xn"}),
                                              node("mul1", "Mul", {"W", "xn"}, {"Y"})});
  if (expose) m.graph.outputs.push_back(tensor_info("inv", DType::kF32, {rows, 1}));
  return m;
}

std::unique_ptr<Session> session_for(const Model& m) {
  auto s = Session::create(std::make_shared<const Model>(m), {2});
  REQUIRE(s.is_ok());
  return std::move(s).value();
}

}  // namespace

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

// X -> QuantizeLinear -> DequantizeLinear -> MatMul <- DequantizeLinear <- W (int8, per column):
// folded into MatMulIntegerToFloat; the result equals float64 of the dequantized operands.
// Left as written: a weight DequantizeLinear that feeds two MatMuls, and an activation without
// a zero point (DequantizeLinear also takes 16/32-bit integers; only the zero point's type
// shows the activation is 8-bit).
TEST_CASE("session: QDQ around MatMul runs as one integer product", "[runtime][qgemm][session]") {
  std::mt19937 rng(14);
  const int64_t M = 5, K = 67, N = 33;
  for (int variant : {0, 1, 2}) {
    const bool shared_weight_dq = variant == 1, no_zero_point = variant == 2;
    INFO("variant " << variant);
    const int zp = no_zero_point ? 0 : 131;
    Model m;
    m.opset_imports = {{"", 17}};
    const Tensor w = random_int8("W", {K, N}, rng);
    std::vector<float> ws(N);
    for (auto& s : ws) s = std::uniform_real_distribution<float>(0.001f, 0.01f)(rng);
    m.graph.initializers = {w, Tensor::from_vector("WS", DType::kF32, {N}, ws),
                            Tensor::from_vector("XS", DType::kF32, {}, std::vector<float>{0.0078f}),
                            Tensor::from_vector("XZ", DType::kU8, {}, std::vector<uint8_t>{uint8_t(zp)})};
    m.graph.inputs = {tensor_info("X", DType::kF32, {M, K})};
    m.graph.outputs = {tensor_info("Y", DType::kF32, {M, N})};
    const std::vector<std::string> xq_params =
        no_zero_point ? std::vector<std::string>{"XS"} : std::vector<std::string>{"XS", "XZ"};
    std::vector<std::string> q_in{"X"}, dq_in{"Xq"};
    q_in.insert(q_in.end(), xq_params.begin(), xq_params.end());
    dq_in.insert(dq_in.end(), xq_params.begin(), xq_params.end());
    m.graph.nodes = {node("q", "QuantizeLinear", q_in, {"Xq"}),
                     node("dqx", "DequantizeLinear", dq_in, {"Xd"}),
                     node("dqw", "DequantizeLinear", {"W", "WS"}, {"Wd"}),
                     node("mm", "MatMul", {"Xd", "Wd"}, {"Y"})};
    if (shared_weight_dq) {
      m.graph.nodes.push_back(node("mm2", "MatMul", {"X", "Wd"}, {"Y2"}));
      m.graph.outputs.push_back(tensor_info("Y2", DType::kF32, {M, N}));
    }
    auto session = session_for(m);
    const Value x = make_value(DType::kF32, {M, K}, random_floats(M * K, rng));
    auto got = session->run({{"X", x}});
    REQUIRE(got.is_ok());
    // float64 reference of the dequantized values; Xq = clamp(rint(x / s) + z) as QuantizeLinear.
    const float* xp = x.data<float>();
    const int8_t* wp = w.data_as<int8_t>();
    double worst = 0, peak = 0;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double ref = 0;
        for (int64_t k = 0; k < K; ++k) {
          const float q = std::nearbyint(xp[i * K + k] / 0.0078f) + float(zp);
          const double xd = (std::min(255.f, std::max(0.f, q)) - zp) * double(0.0078f);
          ref += xd * (double(wp[k * N + j]) * ws[j]);
        }
        worst = std::max(worst, std::fabs(ref - got.value()[0].data<float>()[i * N + j]));
        peak = std::max(peak, std::fabs(ref));
      }
    CHECK(worst / peak < 1e-6);
    // Folded: the dequantized activation is never materialised, so it cannot be tapped.
    auto tap = session->run({{"X", x}}, {"Xd"});
    CHECK(tap.is_ok() == (shared_weight_dq || no_zero_point));
  }
}

// RMSNorm as ONNX ops (as the llama2c import writes it) runs as one step: bit for bit what the
// op chain gives (an int8 model's dynamic quantisation after the norm would amplify any ulp),
// close to float64 of the formula; when an intermediate is also a graph output the chain is
// left as written.
TEST_CASE("session: RMSNorm written as ONNX ops runs as one step, bit-exact", "[runtime][session]") {
  std::mt19937 rng(15);
  const int64_t rows = 7, D = 37;
  const auto w = random_floats(D, rng, 0.5f, 1.5f);
  const Value x = make_value(DType::kF32, {rows, D}, random_floats(rows * D, rng, -3.f, 3.f));
  std::vector<Value> outs;
  for (bool expose_intermediate : {false, true}) {
    INFO("intermediate is a graph output: " << expose_intermediate);
    auto session = session_for(
        rmsnorm_chain(DType::kF32, rows, D, Tensor::from_vector("W", DType::kF32, {D}, w), expose_intermediate));
    auto got = session->run({{"X", x}});
    REQUIRE(got.is_ok());
    outs.push_back(got.value()[0]);
    CHECK(session->run({{"X", x}}, {"sq"}).is_ok() == expose_intermediate);  // folded: never materialised
  }
  double worst = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += double(x.data<float>()[r * D + d]) * x.data<float>()[r * D + d];
    const double inv = 1.0 / std::sqrt(ss / D + double(1e-5f));
    for (int64_t d = 0; d < D; ++d) {
      const double ref = w[d] * (x.data<float>()[r * D + d] * inv);
      worst = std::max(worst, std::fabs(ref - outs[0].data<float>()[r * D + d]) / (std::fabs(ref) + 1e-6));
      // Folded (outs[0]) and as written (outs[1]): the same bits.
      REQUIRE(outs[0].data<float>()[r * D + d] == outs[1].data<float>()[r * D + d]);
    }
  }
  CHECK(worst < 1e-5);
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

// The float16 model's form of the chain (statistics in float32 between two Casts, both Muls in
// float16) folds too, to the same bits as the ops as written.
TEST_CASE("session: float16 RMSNorm chain with float32 statistics runs as one step, bit-exact", "[runtime][session]") {
  std::mt19937 rng(17);
  const int64_t rows = 5, D = 70;
  auto halfs = [](const std::vector<float>& f) {
    std::vector<uint16_t> h(f.size());
    floats_to_halfs(f.data(), h.data(), static_cast<int64_t>(f.size()));
    return h;
  };
  const auto w = halfs(random_floats(D, rng, 0.5f, 1.5f));
  const Value x = make_value(DType::kF16, {rows, D}, halfs(random_floats(rows * D, rng, -3.f, 3.f)));
  std::vector<Value> outs;
  std::vector<size_t> steps;
  for (bool expose_intermediate : {false, true}) {
    INFO("intermediate is a graph output: " << expose_intermediate);
    auto session = session_for(
        rmsnorm_chain(DType::kF16, rows, D, Tensor::from_vector("W", DType::kF16, {D}, w), expose_intermediate));
    session->set_profiling(true);
    auto got = session->run({{"X", x}});
    REQUIRE(got.is_ok());
    REQUIRE(got.value()[0].dtype() == DType::kF16);
    outs.push_back(got.value()[0]);
    steps.push_back(launches(*session));
  }
  CHECK(steps[0] == 1);  // folded: one step
  CHECK(steps[1] == 9);  // an intermediate is a graph output: left as written
  for (int64_t i = 0; i < rows * D; ++i) REQUIRE(outs[0].data<uint16_t>()[i] == outs[1].data<uint16_t>()[i]);
  // And close to float64 RMSNorm of the same float16 values (float16 output rounding).
  std::vector<float> xf(rows * D), wf(D), yf(rows * D);
  halfs_to_floats(x.data<uint16_t>(), xf.data(), rows * D);
  halfs_to_floats(w.data(), wf.data(), D);
  halfs_to_floats(outs[0].data<uint16_t>(), yf.data(), rows * D);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += double(xf[r * D + d]) * xf[r * D + d];
    const double inv = 1.0 / std::sqrt(ss / D + 1e-5);
    for (int64_t d = 0; d < D; ++d) {
      const double ref = wf[d] * xf[r * D + d] * inv;
      REQUIRE(std::fabs(yf[r * D + d] - ref) <= 2e-3 * std::fabs(ref) + 1e-4);
    }
  }
}

// A rotary embedding as ONNX ops (the llama2c import's interleaved pairs: Split into halves, four
// Muls, Sub, Add, Concat) runs as one step with the bits of the chain, for float32 and float16
// (every intermediate rounded to float16 as the separate kernels do), cos/sin broadcast over
// batch and heads, and Mul operands in either order. Left as written when an intermediate is a
// graph output. Checked against float64 of the rotation too.
TEST_CASE("session: rotary embedding chain runs as one step, bit-exact", "[runtime][session]") {
  std::mt19937 rng(23);
  const int64_t B = 2, S = 3, H = 4, P = 5, k = 2;  // x [B, S, H, P, 2k], cos/sin [1, S, 1, P, k]
  const std::vector<int64_t> xs{B, S, H, P, 2 * k}, cs{1, S, 1, P, k};
  const auto xf = random_floats(shape_numel(xs), rng, -2.f, 2.f);
  const auto cf = random_floats(shape_numel(cs), rng, -1.f, 1.f), sf = random_floats(shape_numel(cs), rng, -1.f, 1.f);
  for (DType dt : {DType::kF32, DType::kF16}) {
    INFO("dtype " << dtype_name(dt));
    const Value x = float_value(dt, xs, xf), c = float_value(dt, cs, cf), s = float_value(dt, cs, sf);
    std::vector<Value> outs;
    std::vector<size_t> steps;
    for (bool expose_intermediate : {false, true}) {
      INFO("intermediate is a graph output: " << expose_intermediate);
      Model m;
      m.opset_imports = {{"", 17}};
      m.graph.initializers = {Tensor::from_vector("split", DType::kI64, {2}, std::vector<int64_t>{k, k})};
      m.graph.inputs = {tensor_info("X", dt, xs), tensor_info("C", dt, cs), tensor_info("S", dt, cs)};
      m.graph.outputs = {tensor_info("Y", dt, xs)};
      Node split = node("split", "Split", {"X", "split"}, {"e", "o"});
      split.attributes = {Attribute::make_int("axis", -1)};
      Node cat = node("cat", "Concat", {"a", "b"}, {"Y"});
      cat.attributes = {Attribute::make_int("axis", -1)};
      m.graph.nodes = {split, node("m0", "Mul", {"e", "C"}, {"ec"}), node("m1", "Mul", {"S", "o"}, {"os"}),
                       node("sub", "Sub", {"ec", "os"}, {"a"}), node("m2", "Mul", {"S", "e"}, {"es"}),
                       node("m3", "Mul", {"o", "C"}, {"oc"}), node("add", "Add", {"oc", "es"}, {"b"}), cat};
      if (expose_intermediate) m.graph.outputs.push_back(tensor_info("os", dt, {B, S, H, P, k}));
      auto session = session_for(m);
      session->set_profiling(true);
      auto got = session->run({{"X", x}, {"C", c}, {"S", s}});
      REQUIRE(got.is_ok());
      REQUIRE(got.value()[0].dtype() == dt);
      REQUIRE(got.value()[0].shape() == xs);
      outs.push_back(got.value()[0]);
      steps.push_back(launches(*session));
      CHECK(session->run({{"X", x}, {"C", c}, {"S", s}}, {"ec"}).is_ok() == expose_intermediate);
    }
    CHECK(steps[0] == 1);
    CHECK(steps[1] == 8);
    REQUIRE(outs[0].nbytes() == outs[1].nbytes());
    REQUIRE(std::memcmp(outs[0].raw(), outs[1].raw(), outs[0].nbytes()) == 0);
    // Float64 of the rotation of the same (rounded) inputs.
    const auto xv = floats_of(x), cv = floats_of(c), sv = floats_of(s), yv = floats_of(outs[0]);
    const double tol = dt == DType::kF32 ? 1e-6 : 4e-3;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < S; ++t)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t p = 0; p < P; ++p)
            for (int64_t j = 0; j < k; ++j) {
              const int64_t xi = (((b * S + t) * H + h) * P + p) * 2 * k, ci = (t * P + p) * k + j;
              const double e = xv[xi + j], o = xv[xi + k + j], cc = cv[ci], ss = sv[ci];
              REQUIRE(std::fabs(yv[xi + j] - (e * cc - o * ss)) <= tol * (std::fabs(e) + std::fabs(o)));
              REQUIRE(std::fabs(yv[xi + k + j] - (e * ss + o * cc)) <= tol * (std::fabs(e) + std::fabs(o)));
            }
  }
}

// SiLU as ONNX ops (Mul(x, Sigmoid(x)), either operand order) runs as one step with the bits of
// the two kernels, float32 and float16 (the sigmoid rounded to float16 before the product, as
// the separate Sigmoid's output is), large |x| included; left as written when the sigmoid is a
// graph output. Checked against float64 too.
TEST_CASE("session: x * Sigmoid(x) runs as one step, bit-exact", "[runtime][session]") {
  std::mt19937 rng(29);
  const std::vector<int64_t> shape{3, 41};
  auto xf = random_floats(shape_numel(shape), rng, -12.f, 12.f);
  xf[0] = 95.f, xf[1] = -95.f, xf[2] = -88.5f, xf[3] = 0.f;  // past exp_f32's range, and zero
  for (DType dt : {DType::kF32, DType::kF16}) {
    for (bool sigmoid_first : {false, true}) {
      INFO("dtype " << dtype_name(dt) << ", Mul(Sigmoid(x), x): " << sigmoid_first);
      const Value x = float_value(dt, shape, xf);
      std::vector<Value> outs;
      std::vector<size_t> steps;
      for (bool expose_intermediate : {false, true}) {
        INFO("sigmoid is a graph output: " << expose_intermediate);
        Model m;
        m.opset_imports = {{"", 17}};
        m.graph.inputs = {tensor_info("X", dt, shape)};
        m.graph.outputs = {tensor_info("Y", dt, shape)};
        m.graph.nodes = {node("sig", "Sigmoid", {"X"}, {"S"}),
                         node("mul", "Mul", sigmoid_first ? std::vector<std::string>{"S", "X"} : std::vector<std::string>{"X", "S"}, {"Y"})};
        if (expose_intermediate) m.graph.outputs.push_back(tensor_info("S", dt, shape));
        auto session = session_for(m);
        session->set_profiling(true);
        auto got = session->run({{"X", x}});
        REQUIRE(got.is_ok());
        REQUIRE(got.value()[0].dtype() == dt);
        outs.push_back(got.value()[0]);
        steps.push_back(launches(*session));
      }
      CHECK(steps[0] == 1);
      CHECK(steps[1] == 2);
      REQUIRE(outs[0].nbytes() == outs[1].nbytes());
      REQUIRE(std::memcmp(outs[0].raw(), outs[1].raw(), outs[0].nbytes()) == 0);
      const auto xv = floats_of(x), yv = floats_of(outs[0]);
      // float16: relative 2e-3, plus the sigmoid's own rounding where it is subnormal (spacing
      // 6e-8) times |x|, and the product's.
      const double tol = dt == DType::kF32 ? 1e-6 : 2e-3;
      for (size_t i = 0; i < xv.size(); ++i) {
        const double ref = xv[i] / (1.0 + std::exp(-double(xv[i])));
        const double quantum = dt == DType::kF32 ? 1e-30 : 3e-8 * std::fabs(xv[i]) + 3e-8;
        REQUIRE(std::fabs(yv[i] - ref) <= tol * std::fabs(ref) + quantum);
      }
    }
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
