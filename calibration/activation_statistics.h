// The activation-statistics service: what calibration-driven passes (static INT8, SmoothQuant,
// and GPTQ / SparseGPT / Wanda / AWQ / activation-aware SVD) know about the inputs of the
// nodes they rewrite. A pass names values and kinds; the service streams the calibration set
// through the current model once for everything not measured yet, caches the result, and the
// pass manager drops the cache (invalidate()) when a pass changes the graph.
//
// Per value, with the last axis as channels and every leading index of every sample as a row:
//   kAbsMax     max |x| per channel
//   kMeanAbs    sum |x| / rows per channel
//   kL2Norm     sqrt(sum x^2) per channel
//   kHistogram  counts of |x| over all channels, `histogram_bins` bins over [0, hist_max]
//   kGram       sum over rows of x xᵀ in float64 (calibration/gram.h)
//   kRange      the quantisation range of `observer` (calibration/observers.h) over the samples
// Memory: one sample's taps are alive at a time (stream_activations), and the state kept per
// value has a fixed size (channels; channels^2 for a Gram; bins; the observer's own), so peak
// memory does not grow with the number of samples. Sums run in a fixed order (sample, then
// row), so results are the same bits whatever the thread count. A value that holds a NaN or
// Inf, or is not float32, is an error naming it and the sample.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "calibration/calibration_data.h"
#include "calibration/observers.h"
#include "ir/graph.h"
#include "ir/status.h"
#include "runtime/kernel.h"

namespace llmc::calib {

enum StatKind : unsigned { kAbsMax = 1, kMeanAbs = 2, kL2Norm = 4, kHistogram = 8, kGram = 16, kRange = 32 };

struct ChannelStatistics {
  int64_t channels = 0;  // size of the value's last axis
  int64_t rows = 0;      // vectors seen: product of the leading dims over all samples
  std::vector<double> absmax, mean_abs, l2_norm;  // [channels], filled when asked; l2_norm = sqrt(sum x^2) over rows
  std::vector<double> gram;       // [channels * channels] row-major float64 sum over rows of x xᵀ (full symmetric matrix)
  std::vector<double> histogram;  // counts of |x| over [0, hist_max] in histogram_bins bins (when asked)
  double hist_max = 0;            // a power of two >= max |x| (calibration/histogram.h), 0 when every x is 0
  QuantRange range;                        // kRange: the observer's range (per-channel: the envelope)
  std::vector<QuantRange> channel_ranges;  // kRange with observer.axis set: one per channel along it
  ObserverOptions observer;                // kRange: the observer that measured `range`
  unsigned kinds = 0;                      // what was computed
};

struct StatisticsRequest {
  std::vector<std::string> values;  // value names (node inputs: activations) to measure
  unsigned kinds = kAbsMax;
  int histogram_bins = 2048;  // kHistogram: a multiple of 4, >= 8
  ObserverOptions observer;   // kRange
};

class ActivationStatistics {
 public:
  ActivationStatistics(const CalibrationSet* set, int threads);  // set may be null/empty -> get() fails with a clear message
  // Streams the calibration set through `model` once for every (value, kind) not cached yet;
  // returns pointers valid until invalidate(). A histogram with another bin count, or a range
  // from other observer options, than the cached one is measured again and replaces it in
  // place. Values must be float32. When the graph's structure (nodes, initializers) differs
  // from the one last measured, the cache is dropped first, as invalidate() does (a safety
  // net: weight bytes changed in place are not seen, so the pass manager still invalidates).
  Result<std::map<std::string, const ChannelStatistics*>> get(const Model& model, const StatisticsRequest& request);
  void invalidate();  // the pass manager calls this after a pass changes the graph
  size_t samples() const;
  // Completed passes over the calibration set (each get() that had something to measure is one).
  size_t streams() const { return streams_; }
  // progress callback (samples done, total), optional
  std::function<void(size_t, size_t)> progress;
  // Bounds what the calibration session's kernels may allocate (commands: the LLMC_MAX_* env).
  rt::MemoryLimits limits;

 private:
  const CalibrationSet* set_;
  int threads_;
  std::map<std::string, std::unique_ptr<ChannelStatistics>> cache_;
  size_t fingerprint_ = 0;  // of the graph the cache was measured on
  size_t streams_ = 0;
};

}  // namespace llmc::calib
