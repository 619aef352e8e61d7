// llmcompress bench MODEL [--prompt-len N --tokens N --threads N --json]
#include <algorithm>
#include <cstdio>
#include <map>

#include "runtime/bench.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/model_session.h"

namespace llmc::cli {

namespace {
struct BenchArgs {
  std::string model;
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

Status run_bench(const BenchArgs& a) {
  if (a.bandwidth) {
    rt::ThreadPool pool(a.threads);
    const double bw = rt::measure_read_bandwidth(pool);
    if (a.json) std::printf("{\"read_bandwidth_bytes_per_s\":%.6g,\"threads\":%d}\n", bw, pool.size());
    else std::printf("memory read bandwidth %.2f GB/s with %d threads\n", bw / 1e9, pool.size());
    return Status::ok();
  }
  if (a.model.empty()) return invalid_input("give a MODEL (or --memory-bandwidth)");
  LLMC_ASSIGN_OR_RETURN(auto m, open_model(a.model, a.threads));
  LLMC_ASSIGN_OR_RETURN(auto decoder, open_decoder(m));
  m.session->set_profiling(a.profile);
  rt::BenchOptions options = a.options;
  std::map<std::string, rt::Session::OpTime> before_decode;  // profile up to the timed decode
  if (a.profile) options.on_decode_start = [&] { before_decode = m.session->profile(); };
  LLMC_ASSIGN_OR_RETURN(auto r, rt::bench_decoder(*decoder, options));
  const size_t wbytes = weight_bytes(*m.model);
  if (a.json) {
    Json j;
    j.begin_object().field("model", a.model).field("threads", m.session->threads())
        .field("prompt_len", a.options.prompt_len).field("decode_tokens", a.options.decode_tokens)
        .field("prefill_ms", r.prefill_median_ms).field("prefill_tokens_per_s", r.prefill_tokens_per_s)
        .field("decode_ms_p50", r.decode_p50_ms).field("decode_ms_p90", r.decode_p90_ms)
        .field("decode_tokens_per_s", r.decode_tokens_per_s).field("peak_rss_bytes", r.peak_rss_bytes)
        .field("model_bytes", wbytes).field("kv_cache_bytes", r.kv_cache_bytes).end_object();
    std::printf("%s\n", j.str().c_str());
    return Status::ok();
  }
  std::printf("model        %s (%.1f MB of weights)\n", a.model.c_str(), wbytes / 1e6);
  std::printf("threads      %d\n", m.session->threads());
  std::printf("prefill      %.2f ms for %lld tokens (%.1f tok/s), median of %d\n", r.prefill_median_ms,
              (long long)a.options.prompt_len, r.prefill_tokens_per_s, a.options.repeats);
  std::printf("decode       p50 %.3f ms/token, p90 %.3f ms/token, %.1f tok/s over %lld tokens\n", r.decode_p50_ms,
              r.decode_p90_ms, r.decode_tokens_per_s, (long long)a.options.decode_tokens);
  std::printf("memory       peak RSS %.1f MB, KV cache %.2f MB\n", r.peak_rss_bytes / 1e6, r.kv_cache_bytes / 1e6);
  if (a.profile) {
    // Decode per token (the timed decode run only), then everything before it: warm-up and
    // prefill runs, whose per-op shares differ (prefill is compute-bound, decode memory-bound).
    std::map<std::string, rt::Session::OpTime> decode;
    for (const auto& [op, t] : m.session->profile()) {
      auto d = t;
      if (auto it = before_decode.find(op); it != before_decode.end()) {
        d.ms -= it->second.ms;
        d.calls -= it->second.calls;
      }
      if (d.calls > 0) decode[op] = d;
    }
    print_profile("profile of the timed decode, per token:", decode, static_cast<double>(r.decode_ms.size()));
    print_profile("profile of warm-up and prefill runs:", before_decode, 1.0);
  }
  return Status::ok();
}
}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Prefill and decode latency, tokens/s, peak memory");
  cmd->add_option("model", a->model, "ONNX model or llama2.c checkpoint");
  cmd->add_flag("--memory-bandwidth", a->bandwidth, "measure the machine's memory read bandwidth instead");
  cmd->add_option("--prompt-len", a->options.prompt_len, "prompt tokens for prefill")->capture_default_str();
  cmd->add_option("--tokens", a->options.decode_tokens, "tokens to decode")->capture_default_str();
  cmd->add_option("--repeats", a->options.repeats, "prefill repetitions (median)")->capture_default_str();
  cmd->add_option("--warmup", a->options.warmup, "warm-up runs, excluded")->capture_default_str();
  cmd->add_option("--seed", a->options.seed, "seed of the random prompt")->capture_default_str();
  cmd->add_option("--threads", a->threads, "threads (0 = all cores)")->capture_default_str();
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->add_flag("--profile", a->profile, "print time per op type");
  cmd->callback([a, &exit_code] { exit_code = report("bench", run_bench(*a)); });
}

}  // namespace llmc::cli
