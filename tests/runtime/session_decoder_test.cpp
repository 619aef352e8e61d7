// Session planning and errors, KV-cache decoding vs full re-runs and vs a float64 llama2.c
// forward, perplexity windows, sampling, sessions on a shared pool and the interleaved bench.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "formats/llama2c_checkpoint.h"
#include "formats/llama2c_import.h"
#include "formats/llama_synth.h"
#include "runtime/bench.h"
#include "runtime/decoder.h"
#include "runtime/eval.h"
#include "tests/support/llama2c_reference.h"
#include "tests/support/pass_fixtures.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::rt;
using namespace llmc::testing;

namespace {
ValueInfo f32_input(const std::string& name) {
  ValueInfo v;
  v.name = name;
  v.type.kind = ValueType::Kind::kTensor;
  v.type.elem = DType::kF32;
  v.type.has_shape = true;
  v.type.dims = {Dim{-1, "n", ""}};
  return v;
}

std::shared_ptr<Session> session_for(Model m, int threads = 2) {
  auto s = Session::create(std::make_shared<const Model>(std::move(m)), {threads});
  REQUIRE(s.is_ok());
  return std::shared_ptr<Session>(std::move(s).value());
}
}  // namespace

TEST_CASE("unsupported ops are refused before running, naming node and op", "[runtime][session]") {
  Model m;
  m.opset_imports = {{"", 17}, {"com.example", 1}};
  m.graph.inputs = {f32_input("x")};
  m.graph.outputs = {f32_input("z")};
  Node relu;
  relu.name = "relu0";
  relu.op_type = "Relu";
  relu.inputs = {"x"};
  relu.outputs = {"y"};
  Node odd;
  odd.name = "frob1";
  odd.op_type = "Frobnicate";
  odd.domain = "com.example";
  odd.inputs = {"y"};
  odd.outputs = {"z"};
  m.graph.nodes = {relu, odd};
  auto s = Session::create(std::make_shared<const Model>(m));
  REQUIRE(!s.is_ok());
  CHECK(s.status().message().find("frob1") != std::string::npos);
  CHECK(s.status().message().find("com.example::Frobnicate") != std::string::npos);
}

TEST_CASE("session checks feeds and releases intermediates", "[runtime][session]") {
  Model m;
  m.opset_imports = {{"", 17}};
  m.graph.inputs = {f32_input("x")};
  m.graph.outputs = {f32_input("z")};
  Node a{"neg", "Neg", "", {"x"}, {"y"}, {}, "", "", {}};
  Node b{"exp", "Exp", "", {"y"}, {"z"}, {}, "", "", {}};
  m.graph.nodes = {a, b};
  auto s = session_for(m);
  Value x = Value::allocate(DType::kF32, {3});
  for (int i = 0; i < 3; ++i) x.mutable_data<float>()[i] = float(i);
  auto out = s->run({{"x", x}});
  REQUIRE(out.is_ok());
  for (int i = 0; i < 3; ++i) CHECK(out.value()[0].data<float>()[i] == Approx(std::exp(-i)));
  auto tap = s->run({{"x", x}}, {"y", "z"});  // an intermediate value as a tap
  REQUIRE(tap.is_ok());
  CHECK(tap.value()[0].data<float>()[2] == -2.f);
  CHECK(!s->run({}).is_ok());                                           // missing input
  CHECK(!s->run({{"x", Value::allocate(DType::kI64, {3})}}).is_ok());   // wrong dtype
  CHECK(!s->run({{"x", Value::allocate(DType::kF32, {3, 1})}}).is_ok()); // wrong rank
  CHECK(!s->run({{"nope", x}}).is_ok());
}

TEST_CASE("a run asking for taps runs only the steps they depend on", "[runtime][session]") {
  // x -> Neg -> y -> Exp -> z, and x -> Abs -> w: asking for y runs Neg alone.
  Model m;
  m.opset_imports = {{"", 17}};
  m.graph.inputs = {f32_input("x")};
  m.graph.outputs = {f32_input("z"), f32_input("w")};
  m.graph.nodes = {Node{"neg", "Neg", "", {"x"}, {"y"}, {}, "", "", {}}, Node{"exp", "Exp", "", {"y"}, {"z"}, {}, "", "", {}},
                   Node{"abs", "Abs", "", {"x"}, {"w"}, {}, "", "", {}}};
  auto s = session_for(m);
  Value x = Value::allocate(DType::kF32, {3});
  for (int i = 0; i < 3; ++i) x.mutable_data<float>()[i] = float(i) - 1;
  s->set_profiling(true);
  auto tap = s->run({{"x", x}}, {"y"});
  REQUIRE(tap.is_ok());
  for (int i = 0; i < 3; ++i) CHECK(tap.value()[0].data<float>()[i] == 1.f - i);
  CHECK(s->profile().count("Neg") == 1);
  CHECK(s->profile().count("Exp") == 0);
  CHECK(s->profile().count("Abs") == 0);
  auto both = s->run({{"x", x}}, {"z", "w"});  // then the rest, each once
  REQUIRE(both.is_ok());
  CHECK(both.value()[0].data<float>()[0] == Approx(std::exp(1.f)));
  CHECK(both.value()[1].data<float>()[0] == 1.f);
  CHECK(s->profile().at("Neg").calls == 2);
  CHECK(s->profile().at("Exp").calls == 1);
  CHECK(s->profile().at("Abs").calls == 1);
}

TEST_CASE("KV-cache decoding gives the logits of a full re-run and of float64 llama2.c", "[runtime][decoder][llama2c]") {
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (bin.empty()) return;
  auto ck = read_llama2c_checkpoint(bin);
  REQUIRE(ck.is_ok());
  auto decoder = Decoder::create(session_for(llama2c_to_model(ck.value())));
  REQUIRE(decoder.is_ok());
  Decoder& d = *decoder.value();
  std::vector<int32_t> tokens{1, 403, 407, 261, 378, 300, 281, 400, 290, 330, 350, 270, 411, 262, 299, 500};
  auto full = d.forward_fresh(tokens);
  REQUIRE(full.is_ok());
  const int64_t vocab = full->dim(1);
  REQUIRE(vocab == 512);
  // Prefill 10 tokens, then one at a time.
  std::vector<int32_t> prompt(tokens.begin(), tokens.begin() + 10);
  auto first = d.forward(prompt);
  REQUIRE(first.is_ok());
  double worst_cache = 0, worst_ref = 0;
  for (int64_t p = 0; p < 10; ++p)
    for (int64_t v = 0; v < vocab; ++v)
      worst_cache = std::max(worst_cache, double(std::fabs(first->data<float>()[p * vocab + v] - full->data<float>()[p * vocab + v])));
  for (size_t p = 10; p < tokens.size(); ++p) {
    auto step = d.forward({tokens[p]});
    REQUIRE(step.is_ok());
    for (int64_t v = 0; v < vocab; ++v)
      worst_cache = std::max(worst_cache, double(std::fabs(step->data<float>()[v] - full->data<float>()[p * vocab + v])));
  }
  CHECK(d.cached_positions() == static_cast<int64_t>(tokens.size()));
  INFO("max |cached - full| = " << worst_cache);
  CHECK(worst_cache < 1e-4);
  const auto ref = logits_for_sequence(ck.value(), std::vector<int>(tokens.begin(), tokens.end()));
  for (size_t p = 0; p < tokens.size(); ++p)
    for (int64_t v = 0; v < vocab; ++v)
      worst_ref = std::max(worst_ref, std::fabs(full->data<float>()[p * vocab + v] - ref[p][v]));
  INFO("max |ours - float64| = " << worst_ref);
  CHECK(worst_ref < 1e-3);
  d.reset();
  CHECK(d.cached_positions() == 0);
  CHECK(!d.forward({9999}).is_ok());  // outside the vocabulary
}

TEST_CASE("perplexity windows score each target once, never a window's first token", "[runtime][eval]") {
  auto w = plan_windows(10, {4, 0, 0});
  REQUIRE(w.is_ok());
  // [0,4) scores 1..3; [4,8) scores 5..7; [8,10) scores 9.
  REQUIRE(w->size() == 3);
  CHECK((w.value()[1].begin == 4 && w.value()[1].first_scored == 5 && w.value()[1].end == 8));
  CHECK((w.value()[2].begin == 8 && w.value()[2].first_scored == 9 && w.value()[2].end == 10));
  auto s = plan_windows(10, {4, 2, 0});  // overlapping: later windows score only new targets
  REQUIRE(s.is_ok());
  int64_t scored = 0;
  for (const auto& x : s.value()) scored += x.end - x.first_scored;
  CHECK(scored == 9);  // every target 1..9 exactly once
  auto lim = plan_windows(100, {8, 0, 20});
  REQUIRE(lim.is_ok());
  CHECK(lim->back().end == 20);
  CHECK(!plan_windows(10, {1, 0, 0}).is_ok());
  CHECK(!plan_windows(10, {4, 5, 0}).is_ok());
  CHECK(!plan_windows(1, {4, 0, 0}).is_ok());
}

TEST_CASE("synthetic Llama models are seeded and run", "[runtime][synth]") {
  auto c = synth_preset("llama-tiny");
  REQUIRE(c.is_ok());
  auto a = synth_llama(c.value(), 42), b = synth_llama(c.value(), 42), other = synth_llama(c.value(), 43);
  REQUIRE((a.is_ok() && b.is_ok() && other.is_ok()));
  const std::string emb = "model.embed_tokens.weight";
  CHECK(a->graph.find_initializer(emb)->identical_to(*b->graph.find_initializer(emb)));
  CHECK(!a->graph.find_initializer(emb)->identical_to(*other->graph.find_initializer(emb)));
  auto d = Decoder::create(session_for(std::move(a).value()));
  REQUIRE(d.is_ok());
  auto logits = d.value()->forward({1, 2, 3});
  REQUIRE(logits.is_ok());
  CHECK(logits->shape() == std::vector<int64_t>{3, c->vocab_size});
  CHECK(!synth_preset("llama-9000b").is_ok());
}

TEST_CASE("sampling: greedy is argmax, top-k never leaves the k best", "[runtime][decoder]") {
  std::vector<float> logits{0.1f, 2.0f, -1.f, 1.9f, 0.5f};
  std::mt19937_64 rng(1);
  CHECK(sample_token(logits.data(), 5, {}, rng) == 1);
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_k = 2;
  for (int i = 0; i < 200; ++i) {
    const int32_t t = sample_token(logits.data(), 5, o, rng);
    CHECK((t == 1 || t == 3));
  }
}

// The KV cache grows in place (kKvAppend): with every head of its own (no GQA Expand reading
// the cache), present.* comes back padded, the next step appends into the same bytes, a second
// step from the same past (a branch) gets new bytes, and decoding step by step still gives the
// logits of a full re-run, across several regrowths of the padded storage.
TEST_CASE("KV cache grows in place across decode steps, branches safely, matches a full re-run", "[runtime][decoder]") {
  auto c = synth_preset("llama-tiny");
  REQUIRE(c.is_ok());
  c->n_kv_heads = c->n_heads;
  auto m = synth_llama(c.value(), 7);
  REQUIRE(m.is_ok());
  auto session = session_for(std::move(m).value());

  // Structure, on the Session directly: one layer's cache.
  auto feeds_for = [&](std::vector<int64_t> ids, const std::vector<Value>& past) {
    std::map<std::string, Value> f;
    Value v = Value::allocate(DType::kI64, {1, int64_t(ids.size())});
    std::copy(ids.begin(), ids.end(), v.mutable_data<int64_t>());
    f["input_ids"] = v;
    int i = 0;
    for (const auto& in : session->inputs())
      if (in.name.rfind("past_key_values.", 0) == 0) f[in.name] = past[i++];
    return f;
  };
  std::vector<std::string> presents;
  std::vector<Value> empty;
  for (const auto& in : session->inputs())
    if (in.name.rfind("past_key_values.", 0) == 0) {
      presents.push_back("present." + in.name.substr(16));
      empty.push_back(Value::allocate(DType::kF32, {1, c->n_kv_heads, 0, c->dim / c->n_heads}));
    }
  auto step1 = session->run(feeds_for({1, 5, 9}, empty), presents, true);
  REQUIRE(step1.is_ok());
  const Value& p1 = step1.value()[0];
  CHECK(!p1.dense());  // padded: room to grow
  CHECK(p1.dim(2) == 3);
  auto step2 = session->run(feeds_for({11}, step1.value()), presents, true);
  REQUIRE(step2.is_ok());
  CHECK(step2.value()[0].raw() == p1.raw());  // appended in place
  CHECK(step2.value()[0].dim(2) == 4);
  auto branch = session->run(feeds_for({12}, step1.value()), presents, true);  // from the same past again
  REQUIRE(branch.is_ok());
  CHECK(branch.value()[0].raw() != p1.raw());  // slot 3 is taken: new storage
  // The branch saw the past as it was (not step 2's appended row): same as from a dense copy.
  std::vector<Value> dense_past;
  for (const auto& v : step1.value()) dense_past.push_back(v.densified());
  auto from_dense = session->run(feeds_for({12}, dense_past), {"logits"});
  auto from_branch = session->run(feeds_for({12}, step1.value()), {"logits"});
  REQUIRE((from_dense.is_ok() && from_branch.is_ok()));
  for (int64_t i = 0; i < from_dense.value()[0].numel(); ++i)
    REQUIRE(from_branch.value()[0].data<float>()[i] == from_dense.value()[0].data<float>()[i]);
  // Without keep_padded, callers get dense values.
  auto plain = session->run(feeds_for({1, 5, 9}, empty), presents);
  REQUIRE(plain.is_ok());
  CHECK(plain.value()[0].dense());

  // Decoding: 100 steps regrow the storage (extent = length + max(64, length / 2)) twice; in
  // float32, and in float16 (the fp16 artifact keeps its cache float16).
  Model half = session->model();
  REQUIRE(run_named_pass("quantize-fp16", half, {}).is_ok());
  for (auto s : {session, session_for(half)}) {
    const bool fp16 = s != session;
    INFO("float16: " << fp16);
    auto decoder = Decoder::create(s);
    REQUIRE(decoder.is_ok());
    Decoder& d = *decoder.value();
    std::vector<int32_t> tokens;
    for (int i = 0; i < 110; ++i) tokens.push_back((i * 37 + 11) % c->vocab_size);
    auto full = d.forward_fresh(tokens);
    REQUIRE(full.is_ok());
    const int64_t vocab = full->dim(1);
    std::vector<int32_t> prompt(tokens.begin(), tokens.begin() + 10);
    REQUIRE(d.forward(prompt).is_ok());
    double worst = 0;
    for (size_t p = 10; p < tokens.size(); ++p) {
      auto step = d.forward({tokens[p]});
      REQUIRE(step.is_ok());
      for (int64_t v = 0; v < vocab; ++v)
        worst = std::max(worst, double(std::fabs(step->data<float>()[v] - full->data<float>()[p * vocab + v])));
    }
    INFO("max |step by step - full re-run| = " << worst);
    CHECK(worst < (fp16 ? 2e-2 : 1e-4));
  }
}

// Two sessions on one shared pool (what `bench A B` does) give each model's logits exactly as a
// session with its own pool does; the interleaved benchmark times every decoded token of each.
TEST_CASE("sessions share one thread pool - bench_decoders interleaves models", "[runtime][decoder][bench]") {
  auto c = synth_preset("llama-tiny");
  REQUIRE(c.is_ok());
  auto m1 = synth_llama(c.value(), 11), m2 = synth_llama(c.value(), 12);
  REQUIRE((m1.is_ok() && m2.is_ok()));
  auto shared = std::make_shared<ThreadPool>(2);
  auto make = [&](const Model& m, std::shared_ptr<ThreadPool> pool) {
    SessionOptions o(2);
    o.pool = std::move(pool);
    auto s = Session::create(std::make_shared<const Model>(m), o);
    REQUIRE(s.is_ok());
    auto d = Decoder::create(std::shared_ptr<Session>(std::move(s).value()));
    REQUIRE(d.is_ok());
    return std::move(d).value();
  };
  auto a = make(m1.value(), shared), b = make(m2.value(), shared);
  auto a_own = make(m1.value(), nullptr), b_own = make(m2.value(), nullptr);
  const std::vector<int32_t> tokens{1, 5, 9, 2};
  for (auto [x, y] : {std::pair{a.get(), a_own.get()}, std::pair{b.get(), b_own.get()}}) {
    auto lx = x->forward(tokens), ly = y->forward(tokens);
    REQUIRE((lx.is_ok() && ly.is_ok()));
    REQUIRE(lx->nbytes() == ly->nbytes());
    CHECK(std::memcmp(lx->raw(), ly->raw(), lx->nbytes()) == 0);
  }
  BenchOptions o;
  o.prompt_len = 8;
  o.decode_tokens = 5;
  o.repeats = 2;
  auto r = bench_decoders({a.get(), b.get()}, o);
  REQUIRE(r.is_ok());
  REQUIRE(r->size() == 2);
  for (const auto& x : r.value()) {
    CHECK(x.decode_ms.size() == 5);
    CHECK(x.prefill_ms.size() == 2);
    CHECK(x.decode_p50_ms > 0);
  }
  CHECK(!bench_decoders({}, o).is_ok());
}

TEST_CASE("paired speed-ups are medians of per-pair ratios", "[runtime][bench]") {
  // Pairs measured in a fast and a slow phase: ratios 2, 2, 2, 4, 1 whatever the phase.
  const std::vector<double> base{2, 20, 4, 8, 3}, fast{1, 10, 2, 2, 3};
  const Speedup s = paired_speedup(base, fast);
  CHECK(s.median == Approx(2.0));
  CHECK(s.p10 == Approx(1.4));  // between the lowest two ratios (1 and 2), 40% of the way
  CHECK(s.p90 == Approx(3.2));
  CHECK(paired_speedup({}, {}).median == 0);
}
