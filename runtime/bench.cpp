#include "runtime/bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>

namespace llmc::rt {

size_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<size_t>(ru.ru_maxrss) * 1024;
}

size_t current_rss_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * (v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

double measure_read_bandwidth(ThreadPool& pool, size_t bytes) {
  const int64_t n = static_cast<int64_t>(bytes / sizeof(float));
  std::vector<float> buf(static_cast<size_t>(n), 1.0f);  // touched once: pages are resident
  volatile double sink = 0;  // the sums are stored, so the loops cannot be optimised away
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(pool.size(), 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t b = n / pool.size() * c, e = c + 1 == pool.size() ? n : n / pool.size() * (c + 1);
        float acc[16] = {};
        for (int64_t i = b; i + 16 <= e; i += 16)
          for (int j = 0; j < 16; ++j) acc[j] += buf[i + j];
        double s = 0;
        for (float v : acc) s += v;
        sink = s;
      }
    });
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, bytes / sec);
  }
  return best;
}

Result<BenchResult> bench_decoder(Decoder& model, const BenchOptions& o) {
  LLMC_ASSIGN_OR_RETURN(auto results, bench_decoders({&model}, o));
  return std::move(results.front());
}

Result<std::vector<BenchResult>> bench_decoders(const std::vector<Decoder*>& models, const BenchOptions& o) {
  if (o.prompt_len < 1 || o.decode_tokens < 1 || o.repeats < 1)
    return invalid_input("prompt length, decode tokens and repeats must be positive");
  if (models.empty()) return invalid_input("no model to benchmark");
  int64_t vocab = 0;
  for (const Decoder* m : models) {
    if (m->vocab_size() <= 0) return invalid_input("the model's vocabulary size is unknown (logits dim 2 not fixed)");
    vocab = vocab == 0 ? m->vocab_size() : std::min(vocab, m->vocab_size());
  }
  std::mt19937_64 rng(o.seed);
  std::vector<int32_t> prompt(o.prompt_len);
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % vocab);
  using clock = std::chrono::steady_clock;
  auto ms_since = [](clock::time_point t) {
    return std::chrono::duration<double, std::milli>(clock::now() - t).count();
  };
  const size_t n = models.size();
  std::vector<BenchResult> r(n);
  SamplingOptions greedy;
  // Each round runs the models in a fresh (seeded) order: a model that always ran right after
  // another was measured ~2% faster than the same model in the first slot (A/A runs).
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 order_rng(o.seed + 1);
  auto shuffled = [&]() -> const std::vector<size_t>& {
    std::shuffle(order.begin(), order.end(), order_rng);
    return order;
  };
  // Every model takes the prompt, then token i of each runs before token i + 1 of any.
  auto decode = [&](int64_t steps, bool timed) -> Status {
    std::vector<int32_t> next(n);
    for (size_t m = 0; m < n; ++m) {
      models[m]->reset();
      LLMC_ASSIGN_OR_RETURN(Value logits, models[m]->forward(prompt));
      const int64_t v = models[m]->vocab_size();
      next[m] = sample_token(logits.data<float>() + (o.prompt_len - 1) * v, v, greedy, rng);
    }
    if (timed && o.on_decode_start) o.on_decode_start();
    for (int64_t i = 0; i < steps; ++i) {
      for (size_t m : shuffled()) {
        const auto t0 = clock::now();
        LLMC_ASSIGN_OR_RETURN(Value step, models[m]->forward({next[m]}));
        if (timed) r[m].decode_ms.push_back(ms_since(t0));
        next[m] = sample_token(step.data<float>(), models[m]->vocab_size(), greedy, rng);
      }
    }
    return Status::ok();
  };
  for (int w = 0; w < o.warmup; ++w) LLMC_RETURN_IF_ERROR(decode(std::min<int64_t>(4, o.decode_tokens), false));
  for (int rep = 0; rep < o.repeats; ++rep)
    for (size_t m : shuffled()) {
      models[m]->reset();
      const auto t0 = clock::now();
      LLMC_ASSIGN_OR_RETURN(Value logits, models[m]->forward(prompt));
      r[m].prefill_ms.push_back(ms_since(t0));
    }
  LLMC_RETURN_IF_ERROR(decode(o.decode_tokens, true));
  const size_t peak = peak_rss_bytes();  // of the process: every model's together when n > 1
  for (size_t m = 0; m < n; ++m) {
    BenchResult& x = r[m];
    x.kv_cache_bytes = models[m]->cache_bytes();
    x.prefill_median_ms = percentile(x.prefill_ms, 0.5);
    x.decode_p50_ms = percentile(x.decode_ms, 0.5);
    x.decode_p90_ms = percentile(x.decode_ms, 0.9);
    double total = 0;
    for (double t : x.decode_ms) total += t;
    x.decode_tokens_per_s = total > 0 ? 1000.0 * x.decode_ms.size() / total : 0;
    x.prefill_tokens_per_s = x.prefill_median_ms > 0 ? 1000.0 * o.prompt_len / x.prefill_median_ms : 0;
    x.peak_rss_bytes = peak;
  }
  return r;
}

Speedup paired_speedup(const std::vector<double>& base_ms, const std::vector<double>& ms) {
  std::vector<double> ratios;
  for (size_t i = 0; i < std::min(base_ms.size(), ms.size()); ++i)
    if (ms[i] > 0) ratios.push_back(base_ms[i] / ms[i]);
  if (ratios.empty()) return {};
  return {percentile(ratios, 0.5), percentile(ratios, 0.1), percentile(ratios, 0.9)};
}

}  // namespace llmc::rt
