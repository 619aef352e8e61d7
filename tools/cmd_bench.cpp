// llmcompress bench MODEL [MODEL...] [--prompt-len N --tokens N --threads N --json]
// With several models they run in one process on one thread pool, interleaved token by token,
// and each is compared with the first by paired per-token ratios.
#include <algorithm>
#include <cstdio>
#include <map>

#include "runtime/bench.h"
#include "runtime/session.h"
#include "tools/recipe.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/model_session.h"

namespace llmc::cli {

namespace {
struct BenchArgs {
  std::vector<std::string> models;
  rt::BenchOptions options;
  int threads = 0;
  bool json = false;
  bool profile = false;
  bool bandwidth = false;
};

// Per-op-type times, largest first; `per` divides times and calls (e.g. per decoded token).
void print_profile(const char* title, const std::map<std::string, rt::Session::OpTime>& profile, double per) {
  std::vector<std::pair<std::string, rt::Session::OpTime>> ops(profile.begin(), profile.end());
  std::sort(ops.begin(), ops.end(), [](const auto& x, const auto& y) { return x.second.ms > y.second.ms; });
  double total = 0;
  for (const auto& [op, t] : ops) total += t.ms;
  std::printf("%s %.3f ms\n", title, total / per);
  for (const auto& [op, t] : ops)
    std::printf("  %-28s %9.3f ms %6.1f%% %9.1f calls\n", op.c_str(), t.ms / per, 100 * t.ms / total, t.calls / per);
}

// One model's latencies and KV cache, the same JSON fields for one model and for several.
Json& timing_fields(Json& j, const rt::BenchResult& r) {
  return j.field("prefill_ms", r.prefill_median_ms).field("prefill_tokens_per_s", r.prefill_tokens_per_s)
      .field("decode_ms_p50", r.decode_p50_ms).field("decode_ms_p90", r.decode_p90_ms)
      .field("decode_tokens_per_s", r.decode_tokens_per_s).field("kv_cache_bytes", r.kv_cache_bytes);
}

// The decode profile (the timed run only: `after` minus `before`), per token, then the rest.
void print_profiles(const rt::Session& session, const std::map<std::string, rt::Session::OpTime>& before,
                    size_t tokens) {
  std::map<std::string, rt::Session::OpTime> decode;
  for (const auto& [op, t] : session.profile()) {
    auto d = t;
    if (auto it = before.find(op); it != before.end()) {
      d.ms -= it->second.ms;
      d.calls -= it->second.calls;
    }
    if (d.calls > 0) decode[op] = d;
  }
  // Decode and prefill have different bottlenecks (memory-bound vs compute-bound).
  print_profile("profile of the timed decode, per token:", decode, static_cast<double>(tokens));
  print_profile("profile of warm-up and prefill runs:", before, 1.0);
}

Status run_one(const BenchArgs& a) {
  const std::string& path = a.models.front();
  LLMC_ASSIGN_OR_RETURN(auto m, open_model(path, a.threads));
  LLMC_ASSIGN_OR_RETURN(auto decoder, open_decoder(m));
  m.session->set_profiling(a.profile);
  rt::BenchOptions options = a.options;
  std::map<std::string, rt::Session::OpTime> before_decode;  // profile up to the timed decode
  if (a.profile) options.on_decode_start = [&] { before_decode = m.session->profile(); };
  LLMC_ASSIGN_OR_RETURN(auto r, rt::bench_decoder(*decoder, options));
  const size_t wbytes = weight_bytes(*m.model);
  if (a.json) {
    Json j;
    j.begin_object().field("model", path).field("threads", m.session->threads())
        .field("prompt_len", a.options.prompt_len).field("decode_tokens", a.options.decode_tokens)
        .field("peak_rss_bytes", r.peak_rss_bytes).field("model_bytes", wbytes);
    timing_fields(j, r).end_object();
    std::printf("%s\n", j.str().c_str());
    return Status::ok();
  }
  std::printf("model        %s (%.1f MB of weights)\n", path.c_str(), wbytes / 1e6);
  std::printf("threads      %d\n", m.session->threads());
  std::printf("prefill      %.2f ms for %lld tokens (%.1f tok/s), median of %d\n", r.prefill_median_ms,
              (long long)a.options.prompt_len, r.prefill_tokens_per_s, a.options.repeats);
  std::printf("decode       p50 %.3f ms/token, p90 %.3f ms/token, %.1f tok/s over %lld tokens\n", r.decode_p50_ms,
              r.decode_p90_ms, r.decode_tokens_per_s, (long long)a.options.decode_tokens);
  std::printf("memory       peak RSS %.1f MB, KV cache %.2f MB\n", r.peak_rss_bytes / 1e6, r.kv_cache_bytes / 1e6);
  if (a.profile) print_profiles(*m.session, before_decode, r.decode_ms.size());
  return Status::ok();
}

// Several models interleaved on one pool; speed-ups against the first from paired runs.
Status run_interleaved(const BenchArgs& a) {
  auto pool = std::make_shared<rt::ThreadPool>(a.threads);
  std::vector<LoadedModel> loaded;
  std::vector<std::unique_ptr<rt::Decoder>> decoders;
  std::vector<rt::Decoder*> ptrs;
  for (const auto& path : a.models) {
    LLMC_ASSIGN_OR_RETURN(auto m, open_model(path, a.threads, pool));
    LLMC_ASSIGN_OR_RETURN(auto d, open_decoder(m));
    m.session->set_profiling(a.profile);
    loaded.push_back(std::move(m));
    ptrs.push_back(d.get());
    decoders.push_back(std::move(d));
  }
  rt::BenchOptions options = a.options;
  std::vector<std::map<std::string, rt::Session::OpTime>> before(loaded.size());
  if (a.profile)
    options.on_decode_start = [&] {
      for (size_t i = 0; i < loaded.size(); ++i) before[i] = loaded[i].session->profile();
    };
  LLMC_ASSIGN_OR_RETURN(auto rs, rt::bench_decoders(ptrs, options));
  const auto& base = rs.front();
  if (a.json) {
    Json j;
    j.begin_object().field("interleaved", true).field("threads", pool->size())
        .field("prompt_len", a.options.prompt_len).field("decode_tokens", a.options.decode_tokens)
        .field("peak_rss_bytes", base.peak_rss_bytes).key("models").begin_array();
    for (size_t i = 0; i < rs.size(); ++i) {
      const auto& r = rs[i];
      const auto d = rt::paired_speedup(base.decode_ms, r.decode_ms), p = rt::paired_speedup(base.prefill_ms, r.prefill_ms);
      j.begin_object().field("model", a.models[i]).field("model_bytes", weight_bytes(*loaded[i].model));
      timing_fields(j, r).field("decode_speedup_vs_first", d.median).field("decode_speedup_p10", d.p10)
          .field("decode_speedup_p90", d.p90).field("prefill_speedup_vs_first", p.median).key("decode_ms").begin_array();
      for (double ms : r.decode_ms) j.value(ms);  // per token, paired across models by index
      j.end_array().end_object();
    }
    j.end_array().end_object();
    std::printf("%s\n", j.str().c_str());
    return Status::ok();
  }
  std::printf("%zu models interleaved token by token on %d threads: prompt %lld tokens (median of %d), %lld decoded\n",
              rs.size(), pool->size(), (long long)a.options.prompt_len, a.options.repeats,
              (long long)a.options.decode_tokens);
  std::printf("speed-up vs the first: median of paired per-token (per-prefill) ratios, decode p10-p90 in brackets\n");
  std::printf("%-36s %10s %10s %10s %9s %8s %15s %8s\n", "model", "weights MB", "prefill ms", "decode p50", "p90",
              "speed-up", "(p10-p90)", "prefill");
  for (size_t i = 0; i < rs.size(); ++i) {
    const auto& r = rs[i];
    const auto d = rt::paired_speedup(base.decode_ms, r.decode_ms), p = rt::paired_speedup(base.prefill_ms, r.prefill_ms);
    char range[48];
    std::snprintf(range, sizeof range, "(%.2f-%.2f)", d.p10, d.p90);
    std::printf("%-36s %10.1f %10.2f %10.3f %9.3f %7.2fx %15s %7.2fx\n", a.models[i].c_str(),
                weight_bytes(*loaded[i].model) / 1e6, r.prefill_median_ms, r.decode_p50_ms, r.decode_p90_ms, d.median,
                range, p.median);
  }
  std::printf("peak RSS of the process (all models) %.1f MB\n", base.peak_rss_bytes / 1e6);
  if (a.profile)
    for (size_t i = 0; i < rs.size(); ++i) {
      std::printf("\n%s\n", a.models[i].c_str());
      print_profiles(*loaded[i].session, before[i], rs[i].decode_ms.size());
    }
  return Status::ok();
}

Status run_bench(const BenchArgs& a) {
  if (a.bandwidth) {
    rt::ThreadPool pool(a.threads);
    const double bw = rt::measure_read_bandwidth(pool);
    if (a.json) std::printf("{\"read_bandwidth_bytes_per_s\":%.6g,\"threads\":%d}\n", bw, pool.size());
    else std::printf("memory read bandwidth %.2f GB/s with %d threads\n", bw / 1e9, pool.size());
    return Status::ok();
  }
  if (a.models.empty()) return invalid_input("give a MODEL (or --memory-bandwidth)");
  return a.models.size() == 1 ? run_one(a) : run_interleaved(a);
}
}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Prefill and decode latency, tokens/s, peak memory");
  cmd->footer(memory_limits_help());
  cmd->add_option("models", a->models,
                 "ONNX model, llama2.c checkpoint or GGUF file; several are run interleaved and compared with the first");
  cmd->add_flag("--memory-bandwidth", a->bandwidth, "measure the machine's memory read bandwidth instead");
  cmd->add_option("--prompt-len", a->options.prompt_len, "prompt tokens for prefill")->capture_default_str()->check(CLI::Range(int64_t{1}, kMaxSequence));
  cmd->add_option("--tokens", a->options.decode_tokens, "tokens to decode")->capture_default_str()->check(CLI::Range(int64_t{0}, kMaxSequence));
  cmd->add_option("--repeats", a->options.repeats, "prefill repetitions (median)")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--warmup", a->options.warmup, "warm-up runs, excluded")->capture_default_str()->check(CLI::Range(0, 100000));
  cmd->add_option("--seed", a->options.seed, "seed of the random prompt")->capture_default_str();
  cmd->add_option("--threads", a->threads, "threads (0 = all cores)")->capture_default_str()->check(CLI::Range(0, rt::kMaxThreads));
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->add_flag("--profile", a->profile, "print time per op type");
  cmd->callback([a, &exit_code] { exit_code = report("bench", run_bench(*a)); });
}

}  // namespace llmc::cli
