#include "runtime/bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
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
  if (o.prompt_len < 1 || o.decode_tokens < 1 || o.repeats < 1)
    return invalid_input("prompt length, decode tokens and repeats must be positive");
  const int64_t vocab = model.vocab_size();
  if (vocab <= 0) return invalid_input("the model's vocabulary size is unknown (logits dim 2 not fixed)");
  std::mt19937_64 rng(o.seed);
  std::vector<int32_t> prompt(o.prompt_len);
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % vocab);
  using clock = std::chrono::steady_clock;
  auto ms_since = [](clock::time_point t) {
    return std::chrono::duration<double, std::milli>(clock::now() - t).count();
  };
  BenchResult r;
  SamplingOptions greedy;
  auto decode = [&](int64_t steps, std::vector<double>* times) -> Status {
    model.reset();
    LLMC_ASSIGN_OR_RETURN(Value logits, model.forward(prompt));
    int32_t next = sample_token(logits.data<float>() + (o.prompt_len - 1) * vocab, vocab, greedy, rng);
    if (times && o.on_decode_start) o.on_decode_start();
    for (int64_t i = 0; i < steps; ++i) {
      const auto t0 = clock::now();
      LLMC_ASSIGN_OR_RETURN(Value step, model.forward({next}));
      if (times) times->push_back(ms_since(t0));
      next = sample_token(step.data<float>(), vocab, greedy, rng);
    }
    return Status::ok();
  };
  for (int w = 0; w < o.warmup; ++w) LLMC_RETURN_IF_ERROR(decode(std::min<int64_t>(4, o.decode_tokens), nullptr));
  for (int rep = 0; rep < o.repeats; ++rep) {
    model.reset();
    const auto t0 = clock::now();
    LLMC_ASSIGN_OR_RETURN(Value logits, model.forward(prompt));
    r.prefill_ms.push_back(ms_since(t0));
  }
  LLMC_RETURN_IF_ERROR(decode(o.decode_tokens, &r.decode_ms));
  r.kv_cache_bytes = model.cache_bytes();
  r.prefill_median_ms = percentile(r.prefill_ms, 0.5);
  r.decode_p50_ms = percentile(r.decode_ms, 0.5);
  r.decode_p90_ms = percentile(r.decode_ms, 0.9);
  double total = 0;
  for (double t : r.decode_ms) total += t;
  r.decode_tokens_per_s = total > 0 ? 1000.0 * r.decode_ms.size() / total : 0;
  r.prefill_tokens_per_s = r.prefill_median_ms > 0 ? 1000.0 * o.prompt_len / r.prefill_median_ms : 0;
  r.peak_rss_bytes = peak_rss_bytes();
  return r;
}

}  // namespace llmc::rt
