// Weight-only int4/int8 (passes/nbits_quant.h, nbits_common.h, quantize_int4, quantize_int4_gptq,
// awq_scale): the ranges and packing ONNX Runtime reads, byte-for-byte agreement with ONNX
// Runtime's own quantiser, GPTQ's sweep against its closed forms, AWQ's exact rescaling, and bad
// input.
#include <Eigen/Dense>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <cstring>
#include <numeric>
#include <random>

#include "calibration/calibration_data.h"
#include "formats/npy.h"
#include "formats/onnx_format.h"
#include "ir/graph_builder.h"
#include "ir/graph_utils.h"
#include "passes/channel_scaling.h"
#include "passes/hessian.h"
#include "passes/nbits_quant.h"
#include "passes/quantize_int4_gptq.h"
#include "tests/support/pass_fixtures.h"
#include "tests/support/session_models.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Unpacks MatMulNBits' tensors the way the op's specification reads them (independently of
// pack_nbits): element k of row n, low nibble first, and the packed zero points.
double spec_dequant(const NBitsTensors& t, int bits, int64_t block, int64_t n, int64_t k) {
  const int64_t blocks = t.scales.dims()[1], blob = t.b.dims()[2];
  const int64_t b = k / block, e = k % block;
  const uint8_t byte = t.b.data()[(n * blocks + b) * blob + e * bits / 8];
  const int q = bits == 8 ? byte : (e % 2 ? byte >> 4 : byte & 15);
  int zp = 1 << (bits - 1);
  if (t.zero_points) {
    const int64_t zp_row = t.zero_points->dims()[1];
    const uint8_t z = t.zero_points->data()[n * zp_row + b * bits / 8];
    zp = bits == 8 ? z : (b % 2 ? z >> 4 : z & 15);
  }
  return double(q - zp) * double(t.scales.data_as<float>()[n * blocks + b]);
}

}  // namespace

TEST_CASE("nbits ranges: ONNX Runtime's asymmetric and symmetric choices, worked by hand", "[passes][int4]") {
  NBitsFormat asym{4, 32, false};
  const float a[] = {-1.f, 0.5f, 2.f};
  BlockRange r = block_range(a, 3, asym);
  CHECK(r.scale == Approx(0.2f));  // (2 - (-1)) / 15
  CHECK(r.zero_point == 5);        // round(1 / 0.2)
  CHECK(quantize_code(-1.0, r, 15) == 0);
  CHECK(quantize_code(2.0, r, 15) == 15);
  const float pos[] = {0.1f, 0.5f};  // the range always holds 0: zp 0, 0 stays exact
  r = block_range(pos, 2, asym);
  CHECK(r.zero_point == 0);
  CHECK(r.scale == Approx(0.5f / 15));
  NBitsFormat sym{4, 32, true};
  const float b[] = {0.5f, -2.f, 1.f};
  r = block_range(b, 3, sym);
  CHECK(r.scale == Approx(0.25f));  // -2 / -8: the largest magnitude lands on code 0
  CHECK(r.zero_point == 8);
  CHECK(quantize_code(-2.0, r, 15) == 0);
  CHECK(quantize_code(1.0, r, 15) == 12);
  const float c[] = {3.f, -1.f};  // a positive extreme: negative scale, still code 0
  r = block_range(c, 2, sym);
  CHECK(r.scale == Approx(-0.375f));
  CHECK(quantize_code(3.0, r, 15) == 0);
  CHECK(dequantize_code(0, r) == Approx(3.0));
  const float tie[] = {1.f, -1.f};  // both signs at the largest magnitude: MLAS takes the min
  r = block_range(tie, 2, sym);
  CHECK(r.scale == 0.125f);
  CHECK(quantize_code(-1.0, r, 15) == 0);
  CHECK(quantize_code(1.0, r, 15) == 15);                // 16, clamped
  CHECK(quantize_code(0.5, block_range(a, 3, asym), 15) == 8);  // 2.5 + 5: half away from zero, as roundf
  const float zeros[] = {0.f, 0.f};
  r = block_range(zeros, 2, asym);
  CHECK(r.scale == 0.f);
  CHECK(dequantize_code(quantize_code(0.0, r, 15), r) == 0.0);
  CHECK(block_size_problem(24) != "");
  CHECK(block_size_problem(8) != "");
  CHECK(block_size_problem(16) == "");
  CHECK(block_size_problem(256) == "");
}

TEST_CASE("nbits packing: what the op's specification reads back, K padded, every format", "[passes][int4]") {
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.f, 1.f);
  const int64_t N = 5, K = 70;  // 70 = 2 blocks of 32 and a padded one
  std::vector<float> w(N * K);
  for (auto& x : w) x = d(rng);
  for (int bits : {4, 8})
    for (bool symmetric : {false, true})
      for (int64_t block : {16, 32, 64, 128}) {
        const NBitsFormat f{bits, block, symmetric};
        INFO(f.describe());
        const NBitsCodes codes = rtn_codes(w.data(), N, K, f, nullptr);
        auto t = pack_nbits(codes, "w");
        REQUIRE(t.is_ok());
        const int64_t blocks = (K + block - 1) / block;
        CHECK(t->b.dims() == std::vector<int64_t>{N, blocks, block * bits / 8});
        CHECK(t->scales.dims() == std::vector<int64_t>{N, blocks});
        CHECK(t->zero_points.has_value() == !symmetric);
        if (!symmetric) CHECK(t->zero_points->dims() == std::vector<int64_t>{N, (blocks * bits + 7) / 8});
        CHECK(t->b.name() == (bits == 4 ? "w_Q4" : "w_Q8"));
        const std::vector<float> deq = dequantize_codes(codes);
        double worst = 0;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t k = 0; k < K; ++k) {
            CHECK(float(spec_dequant(*t, bits, block, n, k)) == deq[n * K + k]);
            worst = std::max(worst, std::fabs(double(deq[n * K + k]) - w[n * K + k]));
          }
        // Round to nearest: at most half a step of the block's scale (absmax / levels).
        CHECK(worst <= (bits == 4 ? 4.5 / 15 * 0.5 * 1.0001 * 2 : 4.5 / 255 * 0.5 * 1.0001 * 2));
      }
}

TEST_CASE("quantize-int4 (rtn) writes byte-for-byte what ONNX Runtime's MatMulNBitsQuantizer writes",
          "[passes][int4][ort][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 1, 16)) return;
  const std::string py = venv_python();
  if (py.empty()) return;
  for (bool symmetric : {false, true}) {
    INFO("symmetric " << symmetric);
    const std::string dir = scratch_dir(symmetric ? "int4_peer_sym" : "int4_peer_asym");
    REQUIRE(write_onnx(s.model, dir + "/float.onnx").is_ok());
    const std::string cmd = shell_quote(py) + " " + shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/ort_quantize_nbits.py") +
                            " " + shell_quote(dir + "/float.onnx") + " " + shell_quote(dir + "/ort.onnx") +
                            (symmetric ? " --symmetric" : "");
    auto r = run_shell(cmd);
    INFO(r.errors);
    REQUIRE(r.exit_code == 0);
    auto theirs = read_onnx(dir + "/ort.onnx");
    REQUIRE(theirs.is_ok());
    Model ours = s.model;  // ONNX Runtime quantises the LM head to 4 bits too
    PassOptions o{{"lm-head", "4"}};
    if (symmetric) o["symmetric"] = "true";
    auto res = run_named_pass("quantize-int4", ours, o);
    REQUIRE(res.is_ok());
    int compared = 0;
    for (const Tensor& t : theirs->graph.initializers) {
      const Tensor* mine = ours.graph.find_initializer(t.name());
      if (t.name().find("_Q4") == std::string::npos && t.name().find("_scales") == std::string::npos &&
          t.name().find("_zero_points") == std::string::npos)
        continue;
      INFO(t.name());
      REQUIRE(mine);
      REQUIRE(mine->dims() == t.dims());
      REQUIRE(mine->nbytes() == t.nbytes());
      CHECK(std::memcmp(mine->data(), t.data(), t.nbytes()) == 0);
      ++compared;
    }
    CHECK(compared == 36 * (symmetric ? 2 : 3));  // 5 layers x 7 weights + the LM head
    int nbits_nodes = 0;
    for (const Node& n : ours.graph.nodes)
      if (n.op_type == "MatMulNBits") {
        ++nbits_nodes;
        CHECK(n.domain == "com.microsoft");
        CHECK(n.attr_int("accuracy_level", -1) == 4);
        CHECK(n.attr_int("block_size", -1) == 32);
      }
    CHECK(nbits_nodes == 36);
  }
}

TEST_CASE("quantize-int4 mixed precision: layer-bits by regex, LM head float or 8-bit, exclude", "[passes][int4][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 1, 16)) return;
  Model m = s.model;
  auto r = run_named_pass("quantize-int4", m,
                          {{"layer-bits", ".*down_proj.*=8,.*layers\\.0/.*=float"}, {"lm-head", "float"}, {"exclude", ".*v_proj.*"}});
  REQUIRE(r.is_ok());
  std::map<std::string, int> bits;  // node name -> bits (0: still a float MatMul)
  for (const Node& n : m.graph.nodes) {
    if (n.op_type == "MatMulNBits") bits[n.name] = int(n.attr_int("bits", 0));
    if (n.op_type == "MatMul" && m.graph.find_initializer(n.inputs[1])) bits[n.name] = 0;
  }
  CHECK(bits.at("/model/layers.1/mlp/down_proj/MatMul") == 8);
  CHECK(bits.at("/model/layers.1/mlp/up_proj/MatMul") == 4);
  CHECK(bits.at("/model/layers.0/mlp/up_proj/MatMul") == 0);    // layers.0/ kept float
  CHECK(bits.at("/model/layers.1/self_attn/q_proj/MatMul") == 4);  // patterns match whole names
  CHECK(bits.at("/model/layers.0/mlp/down_proj/MatMul") == 8);  // the first matching rule wins
  CHECK(bits.at("/model/layers.2/self_attn/v_proj/MatMul") == 0);
  CHECK(bits.at("/lm_head/MatMul") == 0);
  bool reasons = false;
  for (const auto& d : r->decisions)
    reasons |= d.node == "/lm_head/MatMul" && d.reason.find("kept float by lm-head") != std::string::npos;
  CHECK(reasons);
  Model defaults = s.model;
  REQUIRE(run_named_pass("quantize-int4", defaults, {}).is_ok());
  for (const Node& n : defaults.graph.nodes)
    if (n.name == "/lm_head/MatMul") CHECK(n.attr_int("bits", 0) == 8);  // the LM head defaults to 8 bits
  Model bad = s.model;
  CHECK_FALSE(run_named_pass("quantize-int4", bad, {{"layer-bits", "down_proj=3"}}).is_ok());
  CHECK_FALSE(run_named_pass("quantize-int4", bad, {{"layer-bits", "([=4"}}).is_ok());
}

TEST_CASE("gptq sweep: H = I gives RTN's codes, correlated inputs lose less output error than RTN",
          "[passes][int4][gptq]") {
  std::mt19937 rng(3);
  std::normal_distribution<double> d(0.0, 1.0);
  const int64_t K = 80, N = 40, T = 400;
  Mat X(T, K), W(N, K);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) X(t, k) = d(rng) + (k > 0 ? 0.8 * X(t, k - 1) : 0.0);  // correlated neighbours
  for (int64_t i = 0; i < N * K; ++i) W.data()[i] = d(rng);
  const NBitsFormat f{4, 16, false};
  std::vector<float> wf(W.data(), W.data() + N * K);
  const NBitsCodes rtn = rtn_codes(wf.data(), N, K, f, nullptr);
  std::vector<int64_t> order(K);
  std::iota(order.begin(), order.end(), 0);
  SECTION("identity Hessian: no error feedback, the RTN codes") {
    std::vector<double> gram(K * K, 0.0);
    for (int64_t k = 0; k < K; ++k) gram[k * K + k] = 1.0;
    auto h = prepare_hessian(gram, K, 1, 0.01, "identity");
    REQUIRE(h.is_ok());
    std::vector<double> w(W.data(), W.data() + N * K);
    const NBitsCodes g = gptq_codes(w, N, *h, order, f, 32, nullptr);
    CHECK(g.q == rtn.q);
  }
  SECTION("correlated inputs: output error below RTN's, in order and act-order, whatever the threads") {
    const Mat G = X.transpose() * X;
    std::vector<double> gram(G.data(), G.data() + K * K);
    auto output_error = [&](const NBitsCodes& c) {
      const std::vector<float> deq = dequantize_codes(c);
      Mat Wq(N, K);
      for (int64_t i = 0; i < N * K; ++i) Wq.data()[i] = deq[i];
      return (X * (W - Wq).transpose()).norm();
    };
    const double e_rtn = output_error(rtn);
    auto h = prepare_hessian(gram, K, T, 0.01, "correlated");
    REQUIRE(h.is_ok());
    std::vector<double> w(W.data(), W.data() + N * K);
    const NBitsCodes g = gptq_codes(w, N, *h, order, f, 32, nullptr);
    const double e_gptq = output_error(g);
    // act-order: the permuted Hessian, the same block structure in the original order.
    std::vector<int64_t> act(order);
    std::stable_sort(act.begin(), act.end(), [&](int64_t a, int64_t b) { return G(a, a) > G(b, b); });
    std::vector<double> pg(K * K);
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < K; ++j) pg[i * K + j] = G(act[i], act[j]);
    auto ha = prepare_hessian(pg, K, T, 0.01, "act-order");
    REQUIRE(ha.is_ok());
    std::vector<double> wa(W.data(), W.data() + N * K);
    const NBitsCodes ga = gptq_codes(wa, N, *ha, act, f, 32, nullptr);
    const double e_act = output_error(ga);
    std::printf("gptq synthetic output error: rtn %.4f, gptq %.4f, gptq act-order %.4f\n", e_rtn, e_gptq, e_act);
    CHECK(e_gptq < 0.8 * e_rtn);
    CHECK(e_act < 0.8 * e_rtn);
    // Every code is on the grid of its block's range, and the threads do not change a bit.
    rt::ThreadPool pool(2);
    std::vector<double> w2(W.data(), W.data() + N * K);
    const NBitsCodes g2 = gptq_codes(w2, N, *h, order, f, 32, &pool);
    CHECK(g2.q == g.q);
    for (auto q : g.q) CHECK(q <= 15);
  }
}

TEST_CASE("awq-scale without clipping keeps stories260K's function, with it every group says what it chose",
          "[passes][int4][awq][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 8, 64)) return;
  Model m = s.model;
  auto r = run_named_pass("awq-scale", m, {{"clip", "false"}}, &s.calib.samples);
  REQUIRE(r.is_ok());
  const std::vector<int32_t> tokens(s.eval_tokens.begin(), s.eval_tokens.begin() + 64);
  auto before = decoder_for(s.model)->forward_fresh(tokens);
  auto after = decoder_for(m)->forward_fresh(tokens);
  REQUIRE(before.is_ok());
  REQUIRE(after.is_ok());
  CHECK(max_abs_gap(*before, *after) < 1e-3);
  int scaled = 0, folded_up = 0, inserted = 0;
  for (const auto& d : r->decisions) {
    if (d.action != "scaled") continue;
    ++scaled;
    folded_up += d.reason.find("up_proj/MatMul' (weight columns)") != std::string::npos;
    inserted += d.reason.find("inserted Mul") != std::string::npos;
    CHECK(d.reason.find("awq alpha ") != std::string::npos);
  }
  CHECK(scaled == 36);
  CHECK(folded_up == 5);  // every down_proj's 1/s went into its up_proj's columns
  CHECK(inserted == 5);   // o_proj reads the attention output: no producer to fold into
}

TEST_CASE("channel scaling folds 1/s into a MatMul's columns only for Mul(a, MatMul(z, V)), never Mul(u, u)",
          "[passes][int4][awq]") {
  for (bool square : {false, true}) {
    INFO("square " << square);
    Model m;
    m.set_opset("", 17);
    m.graph.inputs.push_back(tensor_value("z", DType::kF32, {num(3), num(4)}));
    m.graph.inputs.push_back(tensor_value("a", DType::kF32, {num(3), num(4)}));
    m.graph.initializers.push_back(Tensor::from_vector("V", DType::kF32, {4, 4}, std::vector<float>(16, 0.5f)));
    m.graph.initializers.push_back(Tensor::from_vector("W", DType::kF32, {4, 2}, std::vector<float>(8, 1.f)));
    m.graph.nodes.push_back(node("up", "MatMul", {"z", "V"}, {"u"}));
    m.graph.nodes.push_back(node("act", "Mul", {square ? "u" : "a", "u"}, {"x"}));
    m.graph.nodes.push_back(node("down", "MatMul", {"x", "W"}, {"y"}));
    m.graph.outputs.push_back(tensor_value("y", DType::kF32, {num(3), num(2)}));
    PassResult result;
    auto filter = NodeFilter::parse("");
    REQUIRE(filter.is_ok());
    const auto groups = scale_groups(m.graph, {"MatMul"}, *filter, result);
    const ScaleGroup* down = nullptr;
    for (const auto& g : groups)
      if (g.x == "x") down = &g;
    REQUIRE(down);
    ChannelScaler scaler(m.graph, /*fold_into_matmul=*/true);
    CHECK(scaler.foldable(*down) == !square);
    const std::string where = scaler.apply(*down, {2.f, 2.f, 4.f, 4.f});
    scaler.commit();
    CHECK(where.find(square ? "inserted Mul" : "weight columns") != std::string::npos);
    if (!square) {  // V's columns divided by s: 0.5 / 2 and 0.5 / 4
      const float* v = m.graph.find_initializer("V")->data_as<float>();
      CHECK(v[0] == 0.25f);
      CHECK(v[3] == 0.125f);
    }
  }
}

TEST_CASE("int4 passes bad input: block size, short calibration, singular XᵀX", "[passes][int4][bad-input][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 1, 32)) return;
  Model m = s.model;
  for (const char* block : {"24", "8"}) {
    auto r = run_named_pass("quantize-int4", m, {{"block-size", block}});
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("power of two") != std::string::npos);
  }
  for (const char* pass : {"quantize-int4-gptq", "awq-scale"}) {
    INFO(pass);
    auto r = run_named_pass(pass, m, {}, &s.calib.samples);  // 32 tokens, inputs of 64 and 172 channels
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("calibration too short") != std::string::npos);
    CHECK(r.status().message().find("node '") != std::string::npos);
    auto none = run_named_pass(pass, m, {});
    REQUIRE_FALSE(none.is_ok());
    CHECK(none.status().message().find("needs calibration data") != std::string::npos);
  }
  SECTION("a channel that is always zero: damping reported, its weights zeroed, no failure") {
    StoriesFixture big;
    REQUIRE(load_stories(big, 4, 64));
    Model z = big.model;
    Tensor* gamma = z.graph.find_initializer("model.layers.0.input_layernorm.weight");
    REQUIRE(gamma);
    reinterpret_cast<float*>(gamma->mutable_data())[5] = 0.f;
    auto r = run_named_pass("quantize-int4-gptq", z, {}, &big.calib.samples);
    REQUIRE(r.is_ok());
    bool dead = false;
    for (const auto& w : r->warnings) dead |= w.find("are 0 on every calibration token") != std::string::npos;
    CHECK(dead);
  }
  SECTION("one token repeated: XᵀX of the first layer singular, damping raised and reported") {
    calib::CalibrationOptions o;
    o.num_samples = 4;
    o.seq_len = 64;  // 256 rows, more than any input's channels, all of layer 0's the same vector
    auto set = calib::calibration_from_tokens(s.model, std::vector<int32_t>(1000, 300), o, "repeated");
    REQUIRE(set.is_ok());
    Model z = s.model;
    auto r = run_named_pass("quantize-int4-gptq", z, {{"damp", "1e-12"}}, &set->samples);
    REQUIRE(r.is_ok());
    bool raised = false;
    for (const auto& w : r->warnings) raised |= w.find("damping raised") != std::string::npos;
    CHECK(raised);
  }
}

namespace {

// One MatMul of a stories260K weight as its own model (x [2, 5, K] -> y), through `pass`, run by
// ONNX Runtime and by ours on the same seeded input: max |ours - ORT| / max |ORT|.
double single_layer_gap(const Model& stories, const std::string& weight, const PassOptions& options,
                        const std::string& label) {
  const Tensor* w = stories.graph.find_initializer(weight);
  REQUIRE(w);
  const int64_t K = w->dims()[0];
  Model m;
  m.set_opset("", 17);
  m.graph.inputs.push_back(tensor_value("x", DType::kF32, {num(2), num(5), num(K)}));
  m.graph.initializers.push_back(*w);
  m.graph.nodes.push_back(node("layer", "MatMul", {"x", weight}, {"y"}));
  m.graph.outputs.push_back(tensor_value("y", DType::kF32, {num(2), num(5), num(w->dims()[1])}));
  REQUIRE(run_named_pass("quantize-int4", m, options).is_ok());
  REQUIRE(m.graph.nodes.size() == 1);
  REQUIRE(m.graph.nodes[0].op_type == "MatMulNBits");
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> x(size_t(2 * 5 * K));
  for (auto& v : x) v = d(rng);
  const std::string dir = scratch_dir(label);
  REQUIRE(write_onnx(m, dir + "/m.onnx").is_ok());
  REQUIRE(write_npy(dir + "/x.npy", Tensor::from_vector("x", DType::kF32, {2, 5, K}, x)).is_ok());
  auto r = run_shell(shell_quote(venv_python()) + " " + shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/ort_run.py") +
                     " " + shell_quote(dir + "/m.onnx") + " --output-dir " + shell_quote(dir + "/out") + " --input x=" +
                     shell_quote(dir + "/x.npy"));
  INFO(r.errors);
  REQUIRE(r.exit_code == 0);
  auto theirs = read_npy(dir + "/out/y.npy", "y");
  REQUIRE(theirs.is_ok());
  auto outs = session_for(m)->run({{"x", float_value(DType::kF32, {2, 5, K}, x)}}, {"y"});
  REQUIRE(outs.is_ok());
  const std::vector<float> ours = floats_of(outs->at(0));
  REQUIRE(int64_t(ours.size()) == theirs->numel());
  return relative_gap(ours.data(), theirs->data_as<float>(), int64_t(ours.size()));
}

struct OrtCase {
  const char* pass;
  PassOptions options;
  const char* label;
};

const std::vector<OrtCase>& ort_cases() {
  static const std::vector<OrtCase> cases = {
      {"quantize-int4", {}, "rtn"},
      {"quantize-int4", {{"symmetric", "true"}, {"lm-head", "4"}}, "rtn_sym"},
      {"quantize-int4", {{"bits", "8"}}, "rtn_8bit"},
      {"quantize-int4", {{"block-size", "128"}}, "rtn_block128"},  // wider than K = 64: one padded block
      {"quantize-int4", {{"block-size", "16"}, {"symmetric", "true"}, {"bits", "8"}}, "rtn_8bit_sym_block16"},
      {"quantize-int4-gptq", {{"act-order", "true"}}, "gptq_act_order"},
      {"awq-scale", {}, "awq"},
  };
  return cases;
}

}  // namespace

// accuracy_level 4 (our default, what ONNX Runtime runs fastest on CPUs): both runtimes quantise
// each activation block to int8, so one layer fed the same input agrees to float rounding; a whole
// model does not to 1e-3, because an activation our float ops (norms, attention) compute a few
// ulps away from ONNX Runtime's can land on the other side of an int8 rounding boundary and the
// flip compounds through the layers (docs/performance.md, "MatMulNBits kernel"). The whole-model
// 1e-3 check is therefore made with the same codes and float products (accuracy_level 0), and
// the int8-activation artifacts are bounded per layer (1e-5) and as a whole model (3e-2).
TEST_CASE("int4 layers of stories260K: ONNX Runtime equals ours within 1e-5, every format, int8 activations",
          "[passes][int4][ort][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 1, 16)) return;
  if (venv_python().empty()) return;
  const std::vector<std::string> weights = {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight",
                                            "lm_head.weight"};  // K 64 and 172 (a padded block), N 64 and 512
  for (const auto& c : ort_cases()) {
    if (std::string(c.pass) != "quantize-int4") continue;
    for (size_t i = 0; i < weights.size(); ++i) {
      INFO(c.label << " " << weights[i]);
      PassOptions o = c.options;
      o["lm-head"] = o.count("bits") ? o.at("bits") : "4";  // the single layer writes a graph output
      const double gap = single_layer_gap(s.model, weights[i], o, std::string("int4_layer_") + c.label + std::to_string(i));
      CHECK(gap < 1e-5);
    }
  }
}

TEST_CASE("int4 artifacts of stories260K run in ONNX Runtime: logits within 1e-3 (float products), 3e-2 (int8 activations)",
          "[passes][int4][ort][llama2c]") {
  StoriesFixture s;
  if (!load_stories(s, 8, 64)) return;
  for (const auto& c : ort_cases()) {
    for (const char* level : {"0", "4"}) {
      INFO(c.label << ", accuracy-level " << level);
      Model m = s.model;
      PassOptions o = c.options;
      const bool awq = std::string(c.pass) == "awq-scale";
      if (!awq) o["accuracy-level"] = level;
      REQUIRE(run_named_pass(c.pass, m, o, &s.calib.samples).is_ok());
      if (awq) REQUIRE(run_named_pass("quantize-int4", m, {{"accuracy-level", level}}).is_ok());
      const double gap = ort_relative_gap(m, std::string("int4_ort_") + c.label + "_" + level);
      if (gap < 0) return;
      std::printf("stories260K %-22s accuracy_level %s: max |ours - ORT| / max |ORT| of the logits %.2e\n", c.label, level, gap);
      CHECK(gap < (std::string(level) == "0" ? 1e-3 : 3e-2));
    }
  }
}
