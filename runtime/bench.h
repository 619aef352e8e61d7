// Latency and memory of a causal LM: prefill of a prompt, then per-token decode with the KV
// cache. Warm-up runs are excluded from every statistic.
#pragma once
#include <functional>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/decoder.h"

namespace llmc::rt {

struct BenchOptions {
  int64_t prompt_len = 128;
  int64_t decode_tokens = 32;
  int warmup = 1;
  int repeats = 3;  // prefill repetitions (median reported)
  uint64_t seed = 0;
  // Called just before the first timed decode step (the prompt of that run already processed):
  // lets a caller split per-op profiles into prefill and decode.
  std::function<void()> on_decode_start;
};

struct BenchResult {
  std::vector<double> prefill_ms;  // one per repeat
  std::vector<double> decode_ms;   // one per generated token
  double prefill_median_ms = 0;
  double decode_p50_ms = 0, decode_p90_ms = 0;
  double decode_tokens_per_s = 0;
  double prefill_tokens_per_s = 0;
  size_t peak_rss_bytes = 0;
  size_t kv_cache_bytes = 0;  // at the end of decoding
};

Result<BenchResult> bench_decoder(Decoder& model, const BenchOptions& options);

// Several models measured in one process, interleaved: each prefill repeat runs every model in
// turn, and decode runs token i of every model before token i + 1 of any, in a fresh seeded
// order each round (a fixed order favoured later slots by ~2% in A/A runs). Adjacent
// measurements see the same machine (this VM's memory bandwidth swings by 1.7x within
// seconds), so per-token ratios between models are paired, not taken across phases. The
// models share the prompt (ids below the smallest vocabulary). Sessions should share one
// ThreadPool (SessionOptions::pool), or an idle one's workers spin while another runs.
Result<std::vector<BenchResult>> bench_decoders(const std::vector<Decoder*>& models, const BenchOptions& options);

// How much faster `r` is than `base` from paired measurements: the median and the 10th/90th
// percentiles of base[i] / r[i] over decode tokens (or prefill repeats).
struct Speedup {
  double median = 0, p10 = 0, p90 = 0;
};
Speedup paired_speedup(const std::vector<double>& base_ms, const std::vector<double>& ms);

// Peak resident set of this process so far (getrusage), and the current one (/proc).
size_t peak_rss_bytes();
size_t current_rss_bytes();
double percentile(std::vector<double> values, double q);
// Memory read bandwidth in bytes/s with the pool's threads: best of a few passes summing a
// buffer of `bytes` (well beyond the caches). Decode streams weights, so reads are what count.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t(1) << 30);

}  // namespace llmc::rt
