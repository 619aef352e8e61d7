// quantize-fp16: structure of the converted stories260K (Casts, IO types, float32 leftovers, no
// Cast pairs), clamp counting and initializer duplication on a hand-made graph, and logits of
// the converted model in our runtime and in ONNX Runtime against the float32 model.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <map>

#include "formats/llama2c_import.h"
#include "formats/llama2c_tokenizer.h"
#include "formats/npy.h"
#include "formats/onnx_format.h"
#include "ir/graph_utils.h"
#include "passes/registry.h"
#include "runtime/decoder.h"
#include "runtime/kernels/kernel_util.h"
#include "tests/support/pass_fixtures.h"
#include "tests/support/run_node.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

Result<PassResult> run_fp16(Model& m, const PassOptions& o = {}) { return run_named_pass("quantize-fp16", m, o); }

Model stories() {
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (bin.empty()) return {};
  auto m = import_llama2c(bin);
  REQUIRE(m.is_ok());
  return std::move(m).value();
}

int count_op(const Graph& g, const std::string& op) {
  int c = 0;
  for (const auto& n : g.nodes) c += n.op_type == op;
  return c;
}

// Casts reading the output of another Cast (pain #9).
int cast_pairs(const Graph& g) {
  GraphIndex idx(g);
  int pairs = 0;
  for (const auto& n : g.nodes) {
    if (n.op_type != "Cast") continue;
    const int p = idx.producer(n.inputs[0]);
    pairs += p >= 0 && g.nodes[p].op_type == "Cast";
  }
  return pairs;
}

std::map<std::string, DType> io_types(const Graph& g) {
  std::map<std::string, DType> t;
  for (const auto& v : g.inputs) t["in:" + v.name] = v.type.elem;
  for (const auto& v : g.outputs) t["out:" + v.name] = v.type.elem;
  return t;
}

ValueInfo f32_info(const std::string& name, std::vector<int64_t> dims) { return tensor_info(name, DType::kF32, dims); }

std::vector<int32_t> story_tokens(size_t n) {
  const std::string tok_path = data_path("llama2c/tok512.bin");
  const std::string text_path = data_path("corpora/tinystories_val_prefix.txt");
  if (tok_path.empty() || text_path.empty()) return {};
  auto tok = Llama2cTokenizer::from_file(tok_path);
  REQUIRE(tok.is_ok());
  auto ids = tok->encode(read_text(text_path).substr(0, 4000), true, false);
  REQUIRE(ids.size() >= n);
  ids.resize(n);
  return ids;
}

std::shared_ptr<rt::Session> session_for(const Model& m) {
  auto s = rt::Session::create(std::make_shared<const Model>(m), {2});
  REQUIRE(s.is_ok());
  return std::shared_ptr<rt::Session>(std::move(s).value());
}

// max |a - b| and top-1 agreement of two [T, V] float32 logit tables.
std::pair<double, double> compare_logits(const float* a, const float* b, int64_t T, int64_t V) {
  double worst = 0;
  int agree = 0;
  for (int64_t t = 0; t < T; ++t) {
    const float *ra = a + t * V, *rb = b + t * V;
    for (int64_t v = 0; v < V; ++v) worst = std::max(worst, double(std::fabs(ra[v] - rb[v])));
    agree += std::max_element(ra, ra + V) - ra == std::max_element(rb, rb + V) - rb;
  }
  return {worst, double(agree) / double(T)};
}

}  // namespace

TEST_CASE("quantize-fp16 converts stories260K with float32 IO and blocked RMSNorm/Softmax", "[passes][fp16][llama2c]") {
  Model m = stories();
  if (m.graph.nodes.empty()) return;
  const auto io_before = io_types(m.graph);
  auto r = run_fp16(m);
  REQUIRE(r.is_ok());
  INFO(r->summary);
  CHECK(r->changed);
  REQUIRE(verify(m.graph).is_ok());
  // keep-io-types: input_ids and logits keep their types; the KV cache (decoder state) is float16.
  auto io_expected = io_before;
  for (auto& [name, type] : io_expected)
    if (name.find("past_key_values.") != std::string::npos || name.find("present.") != std::string::npos) type = DType::kF16;
  CHECK(io_types(m.graph) == io_expected);
  std::map<std::string, std::string> action;
  for (const auto& d : r->decisions) action[d.node] = d.action + ": " + d.reason;
  // Blocked: 11 RMSNorms (Pow, ReduceMean, Add(eps), Sqrt, Reciprocal) and 5 Softmax.
  CHECK(action.at("/model/norm/Pow") == "kept float32: op type in op-block-list");
  CHECK(action.at("/model/layers.0/input_layernorm/Add") == "kept float32: between float32 nodes");
  CHECK(action.at("/model/layers.0/self_attn/Softmax") == "kept float32: op type in op-block-list");
  CHECK(action.at("/lm_head/MatMul") == "converted: float16");
  CHECK(r->decisions.size() - r->rewrites == 11 * 5 + 5);
  // Casts: the logits output, into and out of each RMSNorm and Softmax.
  CHECK(count_op(m.graph, "Cast") == 1 + 2 * 11 + 2 * 5);
  CHECK(cast_pairs(m.graph) == 0);
  // Float32 initializers left: only the RMSNorm constants read by float32 nodes.
  GraphIndex idx(m.graph);
  int f32_inits = 0;
  for (const auto& t : m.graph.initializers) {
    if (t.dtype() != DType::kF32) continue;
    ++f32_inits;
    for (int c : idx.consumers(t.name())) CHECK(action[m.graph.nodes[c].name].rfind("kept float32", 0) == 0);
  }
  CHECK(f32_inits == 2);  // /model/Constant_two (Pow), /model/Constant_eps (Add)
  CHECK(r->bytes_after < 0.52 * r->bytes_before);
  CHECK(r->bytes_after > 0.48 * r->bytes_before);
  // The KV cache: present.* is the float16 Concat output itself, read directly by attention.
  CHECK(m.graph.nodes[idx.producer("present.0.key")].op_type == "Concat");
  CHECK(!idx.consumers("present.0.key").empty());
  // The causal mask constant (float lowest) is the one clamped value.
  REQUIRE(r->warnings.size() == 1);
  CHECK(r->warnings[0].find("/model/causal_mask/min_value") != std::string::npos);
  CHECK(r->summary.find("clamped 1 values above 65504") != std::string::npos);
  // keep-kv-types=1: the cache stays float32 too (Casts on the 10 past inputs and 10 presents).
  {
    Model k = stories();
    auto rk = run_fp16(k, {{"keep-kv-types", "1"}});
    REQUIRE(rk.is_ok());
    CHECK(io_types(k.graph) == io_before);
    CHECK(count_op(k.graph, "Cast") == 10 + 11 + 2 * 11 + 2 * 5);
    GraphIndex kidx(k.graph);
    for (int c : kidx.consumers("present.0.key")) FAIL("internal reader of the float32 output: " << k.graph.nodes[c].name);
  }
  // Idempotent: a second run finds nothing to do.
  const size_t nodes = m.graph.nodes.size();
  auto again = run_fp16(m);
  REQUIRE(again.is_ok());
  CHECK(!again->changed);
  CHECK(m.graph.nodes.size() == nodes);
}

TEST_CASE("quantize-fp16 keep-io-types=0 makes float IO float16, bad options fail", "[passes][fp16][llama2c]") {
  Model base = stories();
  if (base.graph.nodes.empty()) return;
  Model m = base;
  auto r = run_fp16(m, {{"keep-io-types", "0"}});
  REQUIRE(r.is_ok());
  REQUIRE(verify(m.graph).is_ok());
  for (const auto& v : m.graph.inputs) CHECK(v.type.elem == (v.name == "input_ids" ? DType::kI64 : DType::kF16));
  for (const auto& v : m.graph.outputs) CHECK(v.type.elem == DType::kF16);
  CHECK(count_op(m.graph, "Cast") == 2 * 11 + 2 * 5);
  CHECK(cast_pairs(m.graph) == 0);
  // An empty block list: everything float16, no Casts but the IO ones.
  Model all = base;
  auto r2 = run_fp16(all, {{"op-block-list", ""}, {"node-block-list", "/lm_head/MatMul,no_such_node"}});
  REQUIRE(r2.is_ok());
  CHECK(count_op(all.graph, "Cast") == 1);  // lm_head: Cast on its input, writes float32 logits itself
  REQUIRE(r2->warnings.size() == 2);
  CHECK(r2->warnings[0].find("no_such_node") != std::string::npos);
  // After quantize-int8-dynamic: DynamicQuantizeLinear (float32 only in ONNX) stays float32.
  Model q = base;
  PassContext ctx;
  REQUIRE(run_pass("quantize-int8-dynamic", q, {}, ctx).is_ok());
  auto r3 = run_fp16(q);
  REQUIRE(r3.is_ok());
  REQUIRE(verify(q.graph).is_ok());
  CHECK(cast_pairs(q.graph) == 0);
  for (const auto& d : r3->decisions)
    if (d.op == "DynamicQuantizeLinear") CHECK(d.action == "kept float32");
  for (const auto& bad : std::vector<PassOptions>{{{"max-finite-val", "1e6"}}, {{"min-positive-val", "x"}},
                                                  {{"min-positive-val", "-1"}}}) {
    Model b = base;
    CHECK(!run_fp16(b, bad).is_ok());
  }
}

TEST_CASE("quantize-fp16 clamps and counts out-of-range constants, duplicates shared weights", "[passes][fp16]") {
  // y = x * W + b (float16), z = x - W (node-block-list: float32, reads a float32 copy of W).
  Model m;
  m.opset_imports = {{"", 17}};
  m.graph.inputs = {f32_info("x", {1, 4})};
  m.graph.outputs = {f32_info("y", {2, 4}), f32_info("z", {2, 4})};
  const std::vector<float> w{1e6f, -1e6f, 1e-9f, -1e-9f, 0.f, NAN, INFINITY, 70000.f};
  m.graph.initializers = {Tensor::from_vector("W", DType::kF32, {2, 4}, w),
                          Tensor::from_vector("b", DType::kF32, {4}, std::vector<float>{0.5f, 2e-8f, 1.f, 2.f})};
  m.graph.nodes = {Node{"mul", "Mul", "", {"x", "W"}, {"m"}, {}, "", "", {}},
                   Node{"add", "Add", "", {"m", "b"}, {"y"}, {}, "", "", {}},
                   Node{"keep_me", "Sub", "", {"x", "W"}, {"z"}, {}, "", "", {}}};
  const Model original = m;
  auto r = run_fp16(m, {{"node-block-list", "keep_me"}});
  REQUIRE(r.is_ok());
  REQUIRE(verify(m.graph).is_ok());
  INFO(r->summary);
  const Tensor* w16 = m.graph.find_initializer("W");
  REQUIRE(w16);
  REQUIRE(w16->dtype() == DType::kF16);
  auto h = [&](int i) { return rt::half_to_float(w16->data_as<uint16_t>()[i]); };
  CHECK(h(0) == 65504.f);
  CHECK(h(1) == -65504.f);
  CHECK(h(2) > 0.f);  // raised to the smallest subnormal, not flushed to 0
  CHECK(h(3) < 0.f);
  CHECK(h(4) == 0.f);
  CHECK(std::isnan(h(5)));
  CHECK(std::isinf(h(6)));
  CHECK(h(7) == 65504.f);
  CHECK(r->summary.find("clamped 3 values above 65504 and 3 below") != std::string::npos);
  REQUIRE(r->warnings.size() == 2);
  CHECK(r->warnings[0].find("'W' (3)") != std::string::npos);
  CHECK(r->warnings[1].find("'W' (2), 'b' (1)") != std::string::npos);
  // keep_me reads an untouched float32 copy of W and the float32 graph input directly.
  const Node& keep = m.graph.nodes.back();
  REQUIRE(keep.name == "keep_me");
  CHECK(keep.inputs[0] == "x");
  const Tensor* w32 = m.graph.find_initializer(keep.inputs[1]);
  REQUIRE(w32);
  CHECK(w32->dtype() == DType::kF32);
  CHECK(std::memcmp(w32->data(), original.graph.initializers[0].data(), w.size() * 4) == 0);
  CHECK(count_op(m.graph, "Cast") == 2);  // x -> float16, float16 y -> float32 y
  CHECK(cast_pairs(m.graph) == 0);
  // Running it: z is computed in float32 exactly as before.
  rt::Value x = rt::Value::allocate(DType::kF32, {1, 4});
  for (int i = 0; i < 4; ++i) x.mutable_data<float>()[i] = 0.25f * float(i + 1);
  auto out16 = session_for(m)->run({{"x", x}});
  auto out32 = session_for(original)->run({{"x", x}});
  REQUIRE(out16.is_ok());
  REQUIRE(out32.is_ok());
  CHECK(out16.value()[0].dtype() == DType::kF32);
  CHECK(out16.value()[0].data<float>()[0] == Approx(0.25f * 65504.f + 0.5f).epsilon(1e-3));
  CHECK(std::memcmp(out16.value()[1].raw(), out32.value()[1].raw(), 8 * 4) == 0);
  // onnxconverter-common's bounds.
  Model m2 = original;
  auto r2 = run_fp16(m2, {{"max-finite-val", "1e4"}, {"min-positive-val", "1e-7"}});
  REQUIRE(r2.is_ok());
  CHECK(r2->summary.find("clamped 3 values above 10000 and 3 below") != std::string::npos);
}

// The conversion runs vectorised (F16C) in pieces across threads, releasing the pages of a
// weight mapped from the file as it goes: every value must still come out as the scalar
// clamp + float_to_half gives it, NaN payloads and ties included, and a float32 copy made
// after the release must still hold the file's bytes.
TEST_CASE("quantize-fp16 converts a mapped weight's every bit pattern as float_to_half does", "[passes][fp16]") {
  const int64_t n = 600000;  // > 2 MB of float32: several pieces, released as converted
  std::vector<uint32_t> bits(n);
  uint64_t state = 88172645463325252ull;
  for (int64_t i = 0; i < n; ++i) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    uint32_t b = static_cast<uint32_t>(state >> 11);
    if (i % 7 == 1) b = (b & 0xffffe000u) | 0x1000u;  // exactly halfway between two float16s
    if (i < n / 2 && (b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu)) b &= 0xff7fffffu;  // no NaN: vector path
    bits[i] = b;
  }
  bits[n / 2 + 3] = 0x7fc00001u;  // NaN payloads the hardware conversion would keep
  bits[n / 2 + 4] = 0xffa5a5a5u;
  std::vector<float> w(n);
  std::memcpy(w.data(), bits.data(), n * 4);
  Model m;
  m.opset_imports = {{"", 17}};
  m.graph.inputs = {f32_info("x", {n})};
  m.graph.outputs = {f32_info("y", {n}), f32_info("z", {n})};
  // The first initializer of a file is never padded to alignment: a small one goes first.
  m.graph.initializers = {Tensor::from_vector("first", DType::kF32, {1}, std::vector<float>{1.f}),
                          Tensor::from_vector("W", DType::kF32, {n}, w)};
  m.graph.nodes = {Node{"mul", "Mul", "", {"x", "W"}, {"y"}, {}, "", "", {}},
                   Node{"keep_me", "Sub", "", {"x", "W"}, {"z"}, {}, "", "", {}}};
  const std::string path = scratch_dir("fp16_bits") + "/m.onnx";
  REQUIRE(write_onnx(m, path).is_ok());
  auto mapped = read_onnx(path);
  REQUIRE(mapped.is_ok());
  REQUIRE(mapped->graph.initializers[1].is_view());
  auto r = run_fp16(mapped.value(), {{"node-block-list", "keep_me"}});
  REQUIRE(r.is_ok());
  const Tensor* w16 = mapped->graph.find_initializer("W");
  REQUIRE(w16);
  const uint16_t* h = w16->data_as<uint16_t>();
  int64_t wrong = 0, large = 0, small = 0;
  for (int64_t i = 0; i < n; ++i) {
    float x = w[i];
    const float a = std::fabs(x);
    if (std::isfinite(x) && a > 65504.f) x = std::copysign(65504.f, x), ++large;
    else if (a > 0 && a < 5.96e-8f) x = std::copysign(5.96e-8f, x), ++small;
    wrong += h[i] != rt::float_to_half(x);
  }
  CHECK(wrong == 0);
  CHECK(r->summary.find(str_cat("clamped ", large, " values above 65504 and ", small, " below")) != std::string::npos);
  const Tensor* w32 = mapped->graph.find_initializer(mapped->graph.nodes.back().inputs[1]);
  REQUIRE(w32);
  REQUIRE(w32->dtype() == DType::kF32);
  CHECK(std::memcmp(w32->data(), w.data(), n * 4) == 0);
}

TEST_CASE("quantize-fp16 Constant, ConstantOfShape and Cast nodes: converted, copied, never chained", "[passes][fp16]") {
  // a = x + Constant c; s = Softmax(c); f = Cast<float>(ids); sf = Softmax(f); za = ConstantOfShape + x * f.
  Model m;
  m.opset_imports = {{"", 17}};
  ValueInfo ids = f32_info("ids", {4});
  ids.type.elem = DType::kI64;
  m.graph.inputs = {f32_info("x", {4}), ids};
  m.graph.outputs = {f32_info("a", {4}), f32_info("s", {4}), f32_info("sf", {4}), f32_info("za", {4})};
  m.graph.initializers = {Tensor::from_vector("shape", DType::kI64, {1}, std::vector<int64_t>{4})};
  auto node = [](std::string name, std::string op, std::vector<std::string> in, std::string out,
                 std::vector<Attribute> attrs = {}) { return Node{name, op, "", in, {out}, attrs, "", "", {}}; };
  m.graph.nodes = {node("const", "Constant", {}, "c", {Attribute::make_floats("value_floats", {0.5f, 2.f, 3.f, 1000.f})}),
                   node("add", "Add", {"x", "c"}, "a"),
                   node("softmax_c", "Softmax", {"c"}, "s"),
                   node("cast_ids", "Cast", {"ids"}, "f", {Attribute::make_int("to", 1)}),
                   node("softmax_f", "Softmax", {"f"}, "sf"),
                   node("mul", "Mul", {"x", "f"}, "mf"),
                   node("zeros", "ConstantOfShape", {"shape"}, "z"),
                   node("add_z", "Add", {"z", "mf"}, "za")};
  const Model original = m;
  auto r = run_fp16(m);
  REQUIRE(r.is_ok());
  REQUIRE(verify(m.graph).is_ok());
  INFO(r->summary);
  CHECK(cast_pairs(m.graph) == 0);
  std::map<std::string, const Node*> by_name;
  for (const auto& n : m.graph.nodes) by_name[n.name] = &n;
  REQUIRE(by_name.count("const_fp32"));  // the float32 copy Softmax reads
  CHECK(by_name.at("const_fp32")->find_attr("value")->tensors[0].dtype() == DType::kF32);
  CHECK(by_name.at("softmax_c")->inputs[0] == by_name.at("const_fp32")->outputs[0]);
  CHECK(by_name.at("const")->find_attr("value")->tensors[0].dtype() == DType::kF16);
  CHECK(by_name.at("cast_ids")->attr_int("to", 0) == static_cast<int64_t>(DType::kF16));
  CHECK(by_name.at("zeros")->find_attr("value")->tensors[0].dtype() == DType::kF16);
  // softmax_f reads a Cast of the int64 ids straight to float32, not a Cast of the float16 Cast.
  const std::string& sf_in = by_name.at("softmax_f")->inputs[0];
  for (const auto& n : m.graph.nodes)
    if (!n.outputs.empty() && n.outputs[0] == sf_in) CHECK(n.inputs[0] == "ids");
  CHECK(count_op(m.graph, "Cast") == 5);  // cast_ids, x, ids, and the two float16 outputs a and za
  rt::Value x = rt::Value::allocate(DType::kF32, {4}), idv = rt::Value::allocate(DType::kI64, {4});
  for (int i = 0; i < 4; ++i) x.mutable_data<float>()[i] = 0.1f * float(i) - 0.13f, idv.mutable_data<int64_t>()[i] = 3 * i;
  auto got = session_for(m)->run({{"x", x}, {"ids", idv}});
  auto want = session_for(original)->run({{"x", x}, {"ids", idv}});
  REQUIRE(got.is_ok());
  REQUIRE(want.is_ok());
  for (size_t o = 0; o < 4; ++o) {
    REQUIRE(got.value()[o].dtype() == DType::kF32);
    for (int i = 0; i < 4; ++i) {
      const float g = got.value()[o].data<float>()[i], w = want.value()[o].data<float>()[i];
      if (o == 1 || o == 2) CHECK(g == w);  // blocked Softmax on exact float32 inputs
      else CHECK(g == Approx(w).epsilon(2e-3).margin(1e-3));
    }
  }
}

TEST_CASE("quantize-fp16 stories260K logits in our runtime and ONNX Runtime stay near float32", "[passes][fp16][llama2c][ort]") {
  Model m32 = stories();
  const auto tokens = story_tokens(64);
  if (m32.graph.nodes.empty() || tokens.empty()) return;
  Model m16 = m32;
  REQUIRE(run_fp16(m16).is_ok());
  auto d32 = rt::Decoder::create(session_for(m32));
  REQUIRE(d32.is_ok());
  auto ref = d32.value()->forward_fresh(tokens);
  REQUIRE(ref.is_ok());
  const int64_t T = static_cast<int64_t>(tokens.size()), V = ref->dim(-1);

  // ONNX Runtime on the written float16 model: empty float32 past, as a user would feed it.
  const std::string py = venv_python();
  Tensor ort_logits;
  if (!py.empty()) {
    const std::string dir = scratch_dir("fp16_ort");
    REQUIRE(write_onnx(m16, dir + "/stories260K_fp16.onnx").is_ok());
    std::vector<int64_t> ids(tokens.begin(), tokens.end());
    REQUIRE(write_npy(dir + "/ids.npy", Tensor::from_vector("ids", DType::kI64, {1, T}, ids)).is_ok());
    REQUIRE(write_npy(dir + "/past.npy", Tensor::zeros("p", DType::kF16, {1, 4, 0, 8})).is_ok());
    std::string cmd = shell_quote(py) + " " + shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/ort_run.py") + " " +
                      shell_quote(dir + "/stories260K_fp16.onnx") + " --output-dir " + shell_quote(dir + "/out") +
                      " --input input_ids=" + shell_quote(dir + "/ids.npy");
    for (const auto& in : m16.graph.inputs)
      if (in.name != "input_ids") cmd += " --input " + shell_quote(in.name + "=" + dir + "/past.npy");
    auto res = run_shell(cmd);
    INFO(res.errors);
    REQUIRE(res.exit_code == 0);
    auto ort = read_npy(dir + "/out/logits.npy", "logits");
    REQUIRE(ort.is_ok());
    REQUIRE(ort->dtype() == DType::kF32);
    REQUIRE(ort->dims() == std::vector<int64_t>{1, T, V});
    const auto [diff, top1] = compare_logits(ort->data_as<float>(), ref->data<float>(), T, V);
    INFO("ORT float16 vs our float32: max |diff| " << diff << ", top-1 agreement " << top1);
    CHECK(diff < 0.05);
    CHECK(top1 > 0.98);
    ort_logits = ort.value();
  }

  auto d16 = rt::Decoder::create(session_for(m16));
  REQUIRE(d16.is_ok());
  auto got = d16.value()->forward_fresh(tokens);
  // The runtime has float16 MatMul: a failure here is a failure, never a warning and a pass.
  INFO(got.status().message());
  REQUIRE(got.is_ok());
  REQUIRE(got->dtype() == DType::kF32);
  // Our kernels round every op's output to float16 (ORT's CPU EP runs many float16 nodes in
  // float32 behind inserted Casts, hence its 0.028): measured 0.044 on this window, 0.04-0.07
  // on other 64-token windows. A wrong Cast or clamp shows up as an error of 1 or more.
  const auto [diff, top1] = compare_logits(got->data<float>(), ref->data<float>(), T, V);
  INFO("our float16 vs our float32: max |diff| " << diff << ", top-1 agreement " << top1);
  CHECK(diff < 0.08);
  CHECK(top1 > 0.98);
  if (ort_logits.numel() > 0) {
    const auto [d_ort, top1_ort] = compare_logits(got->data<float>(), ort_logits.data_as<float>(), T, V);
    INFO("our float16 vs ORT float16: max |diff| " << d_ort << ", top-1 agreement " << top1_ort);
    CHECK(d_ort < 0.08);
    CHECK(top1_ort > 0.98);
  }
  // The KV cache path: the same logits one token at a time (float32 cache fed back).
  auto& dec = *d16.value();
  for (int64_t t = 0; t < 8; ++t) {
    auto step = dec.forward({tokens[t]});
    REQUIRE(step.is_ok());
    for (int64_t v = 0; v < V; ++v) CHECK(std::fabs(step->data<float>()[v] - got->data<float>()[t * V + v]) < 0.02);
  }
}
