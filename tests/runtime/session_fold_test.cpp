// Plan-time folds of op chains into one step: the QDQ form around MatMul as one integer product
// (checked against float64 of the dequantized values), RMSNorm, the rotary embedding and SiLU
// (bit-exact against the chains as written). Grouped products: session_group_test.cpp.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "runtime/kernels/hgemm.h"
#include "runtime/session.h"
#include "tests/support/run_node.h"
#include "tests/support/session_models.h"

using namespace llmc;
using namespace llmc::rt;
using namespace llmc::testing;

namespace {

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

}  // namespace

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


// Constant steps run once at plan time (session_fold_constants.cpp): PyTorch's Constant nodes
// and the shape arithmetic over them (Unsqueeze, Concat) leave the plan, and the Reshape they
// feed gets the same shape. Left in the plan: a step reading a graph input, steps whose constant
// input a feed may override, a graph output's producer, a weight's DequantizeLinear (the QDQ
// fold's), and a ConstantOfShape whose constant shape asks for more than the fold's 64 KB (it
// then fails at run time under the session's own limit, the node named, as before).
TEST_CASE("session: steps on constants run once at plan time", "[runtime][session]") {
  std::mt19937 rng(31);
  const auto xf = random_floats(24, rng);
  auto scalar = [](const std::string& name, int64_t v) {
    Node c = node(name, "Constant", {}, {name});
    c.attributes = {Attribute::make_tensor("value", Tensor::from_vector(name, DType::kI64, {}, std::vector<int64_t>{v}))};
    return c;
  };
  Node ax = scalar("axis", 0);
  Node u1 = node("u1", "Unsqueeze", {"six", "axis"}, {"six1"}), u2 = node("u2", "Unsqueeze", {"four", "axis"}, {"four1"});
  Node cat = node("cat", "Concat", {"six1", "four1"}, {"shape"});
  cat.attributes = {Attribute::make_int("axis", 0)};
  for (bool overridable : {false, true}) {
    INFO("the Unsqueeze axes are a graph input with a default: " << overridable);
    Model m;
    m.opset_imports = {{"", 17}};
    m.graph.inputs = {tensor_info("X", DType::kF32, {2, 12})};
    m.graph.outputs = {tensor_info("Y", DType::kF32, {6, 4}), tensor_info("seven", DType::kI64, {})};
    m.graph.nodes = {scalar("six", 6), scalar("four", 4), scalar("seven", 7), u1, u2, cat,
                     node("reshape", "Reshape", {"X", "shape"}, {"Y"})};
    if (overridable) {
      m.graph.initializers = {Tensor::from_vector("axis", DType::kI64, {1}, std::vector<int64_t>{0})};
      m.graph.inputs.push_back(tensor_info("axis", DType::kI64, {1}));
    } else {
      m.graph.nodes.insert(m.graph.nodes.begin(), ax);
    }
    auto session = session_for(m);
    session->set_profiling(true);
    auto got = session->run({{"X", make_value(DType::kF32, {2, 12}, xf)}});
    REQUIRE(got.is_ok());
    REQUIRE(got.value()[0].shape() == std::vector<int64_t>{6, 4});
    REQUIRE(std::memcmp(got.value()[0].raw(), xf.data(), xf.size() * sizeof(float)) == 0);
    std::map<std::string, int64_t> calls;
    for (const auto& [op, t] : session->profile()) calls[op] = t.calls;
    CHECK(calls["Reshape"] == 1);
    CHECK(calls["Constant"] == 1);  // "seven" is a graph output: produced by its step
    CHECK(calls["Unsqueeze"] == (overridable ? 2 : 0));
    CHECK(calls["Concat"] == (overridable ? 1 : 0));
  }
  SECTION("a constant step too large to fold still fails at run time, naming its node") {
    Model m;
    m.opset_imports = {{"", 17}};
    m.graph.initializers = {Tensor::from_vector("dims", DType::kI64, {1}, std::vector<int64_t>{int64_t{1} << 40})};
    m.graph.inputs = {tensor_info("X", DType::kF32, {1})};
    m.graph.outputs = {tensor_info("Y", DType::kF32, {-1})};
    m.graph.nodes = {node("big", "ConstantOfShape", {"dims"}, {"Z"}), node("add", "Add", {"X", "Z"}, {"Y"})};
    auto session = session_for(m);
    auto got = session->run({{"X", make_value(DType::kF32, {1}, std::vector<float>{1.f})}});
    REQUIRE(!got.is_ok());
    CHECK(got.status().message().find("'big'") != std::string::npos);
  }
}

namespace {

// Attention products over a grouped-query cache X [1, G, S, D] as Hugging Face's repeat_kv
// exports them: Unsqueeze(X, axis) -> Expand(e) -> Reshape(r) -> [Transpose(0,1,3,2)] ->
// MatMul(A, .), the repeated cache also read by a Shape (its length). `b_of(h, s, d)` says which element of X the graph's B[0, h, s, d] is.
struct KvCase {
  const char* what;
  int64_t axis;
  std::vector<int64_t> expand, reshape;
  int64_t heads;  // A's heads
  bool expose_reshape;
  bool folded;  // expected: the chain leaves the plan
};

}  // namespace

TEST_CASE("session: grouped-query repeat of the KV cache folded into the attention products", "[runtime][session]") {
  const int64_t G = 2, r = 3, S = 7, D = 5, M = 4;
  std::mt19937 rng(37);
  const auto xf = random_floats(G * S * D, rng);
  const std::vector<KvCase> cases = {
      {"repeat_kv", 2, {1, G, r, S, D}, {1, G * r, S, D}, G * r, false, true},
      {"near miss: heads interleaved (Unsqueeze at axis 1)", 1, {1, r, G, S, D}, {1, r * G, S, D}, G * r, false, false},
      {"near miss: the repeated cache is also a graph output", 2, {1, G, r, S, D}, {1, G * r, S, D}, G * r, true, false},
      {"folded, but repeated along the sequence at run time: computed as written", 2, {1, G, r, S, D}, {1, G, r * S, D}, G,
       false, true},
  };
  for (const auto& c : cases)
    for (bool keys : {true, false}) {
      INFO(c.what << (keys ? ", keys (transposed)" : ", values"));
      const int64_t s_total = c.reshape[2], heads = c.heads;
      // Which X element B[0, h, s, d] is, from the shapes: the reference of the chain.
      auto b_of = [&](int64_t h, int64_t s, int64_t d) {
        if (c.axis == 1) return ((h % G) * S + s) * D + d;
        if (c.reshape[1] == G * r) return ((h / r) * S + s) * D + d;
        return (h * S + s % S) * D + d;
      };
      const int64_t K = keys ? D : s_total, N = keys ? s_total : D;
      const auto af = random_floats(heads * M * K, rng);
      Model m;
      m.opset_imports = {{"", 17}};
      m.graph.initializers = {Tensor::from_vector("axes", DType::kI64, {1}, std::vector<int64_t>{c.axis}),
                              Tensor::from_vector("e", DType::kI64, {5}, c.expand),
                              Tensor::from_vector("r", DType::kI64, {4}, c.reshape)};
      m.graph.inputs = {tensor_info("X", DType::kF32, {1, G, S, D}), tensor_info("A", DType::kF32, {1, heads, M, K})};
      m.graph.outputs = {tensor_info("Y", DType::kF32, {1, heads, M, N})};
      Node tr = node("t", "Transpose", {"B"}, {"BT"});
      tr.attributes = {Attribute::make_ints("perm", {0, 1, 3, 2})};
      m.graph.nodes = {node("u", "Unsqueeze", {"X", "axes"}, {"U"}), node("x", "Expand", {"U", "e"}, {"E"}),
                       node("rs", "Reshape", {"E", "r"}, {"B"})};
      if (keys) m.graph.nodes.push_back(tr);
      m.graph.nodes.push_back(node("mm", "MatMul", {"A", keys ? "BT" : "B"}, {"Y"}));
      // The keys' length read off the repeated cache (Hugging Face slices the mask with it).
      Node len = node("len", "Shape", {"B"}, {"L"});
      len.attributes = {Attribute::make_int("start", -2), Attribute::make_int("end", -1)};
      m.graph.nodes.push_back(len);
      m.graph.outputs.push_back(tensor_info("L", DType::kI64, {1}));
      if (c.expose_reshape) m.graph.outputs.push_back(tensor_info("B", DType::kF32, {1, heads, s_total, D}));
      auto session = session_for(m);
      session->set_profiling(true);
      auto got = session->run({{"X", make_value(DType::kF32, {1, G, S, D}, xf)},
                               {"A", make_value(DType::kF32, {1, heads, M, K}, af)}});
      REQUIRE(got.is_ok());
      const Value& y = got.value()[0];
      REQUIRE(y.shape() == std::vector<int64_t>{1, heads, M, N});
      CHECK(session->profile().count("Expand") == (c.folded ? 0u : 1u));
      REQUIRE(got.value()[1].numel() == 1);
      CHECK(got.value()[1].data<int64_t>()[0] == s_total);
      // The repeated cache as a tap (calibration observes every MatMul input): computed from X.
      auto tap = session->run({{"X", make_value(DType::kF32, {1, G, S, D}, xf)},
                               {"A", make_value(DType::kF32, {1, heads, M, K}, af)}}, {"B"});
      REQUIRE(tap.is_ok());
      const Value& bv = tap.value()[0];
      REQUIRE(bv.shape() == c.reshape);
      for (int64_t i = 0; i < bv.numel(); ++i) {
        const int64_t h = i / (s_total * D), s = (i / D) % s_total, d = i % D;
        REQUIRE(bv.data<float>()[i] == xf[b_of(h, s, d)]);
      }
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            double want = 0;
            for (int64_t k = 0; k < K; ++k)
              want += double(af[(h * M + i) * K + k]) * xf[keys ? b_of(h, j, k) : b_of(h, k, j)];
            REQUIRE(std::fabs(y.data<float>()[(h * M + i) * N + j] - want) <= 1e-5 * (1 + std::fabs(want)));
          }
    }
}

// A folded repeat whose shapes (data) ask for an absurd expansion: an error naming the step,
// not an overflowed size or an allocation (the shapes are checked with overflow-checked counts,
// then the chain runs as written and the Expand kernel refuses the size).
TEST_CASE("session: a folded grouped-query repeat with a hostile expand shape is refused", "[runtime][session][hostile]") {
  const int64_t G = 2, S = 3, D = 4;
  for (int64_t rep : {int64_t{1} << 40, int64_t{1} << 61}) {
    Model m;
    m.opset_imports = {{"", 17}};
    m.graph.initializers = {Tensor::from_vector("axes", DType::kI64, {1}, std::vector<int64_t>{2})};
    m.graph.inputs = {tensor_info("X", DType::kF32, {1, G, S, D}), tensor_info("A", DType::kF32, {1, 6, 1, D}),
                      tensor_info("e", DType::kI64, {5}), tensor_info("r", DType::kI64, {4})};
    m.graph.outputs = {tensor_info("Y", DType::kF32, {1, 6, 1, -1})};
    Node tr = node("t", "Transpose", {"B"}, {"BT"});
    tr.attributes = {Attribute::make_ints("perm", {0, 1, 3, 2})};
    m.graph.nodes = {node("u", "Unsqueeze", {"X", "axes"}, {"U"}), node("x", "Expand", {"U", "e"}, {"E"}),
                     node("rs", "Reshape", {"E", "r"}, {"B"}), tr, node("mm", "MatMul", {"A", "BT"}, {"Y"})};
    auto session = session_for(m);
    std::mt19937 rng(5);
    auto got = session->run({{"X", make_value(DType::kF32, {1, G, S, D}, random_floats(G * S * D, rng))},
                             {"A", make_value(DType::kF32, {1, 6, 1, D}, random_floats(6 * D, rng))},
                             {"e", make_value(DType::kI64, {5}, std::vector<int64_t>{1, G, rep, S, D})},
                             {"r", make_value(DType::kI64, {4}, std::vector<int64_t>{1, -1, S, D})}});
    REQUIRE(!got.is_ok());
    CHECK(got.status().message().find("mm") != std::string::npos);
  }
}
