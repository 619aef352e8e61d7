// Streaming observers: fed one float32 activation tensor at a time, they keep bounded state
// (a min/max, or a fixed-size Histogram, per channel) however many samples arrive, and turn it
// into a QuantRange at the end.
//   minmax      running min and max (ORT MinMax calibration).
//   percentile  clip the tails: the range holding `percentile`% of the values. Of x, cutting
//               (100 - p)/2 % from each tail; with `symmetric`, of |x|, range [-t, t].
//   entropy     TensorRT's KL-divergence threshold t over a histogram of |x| (num_bins bins,
//               num_quantized_bins quantized bins), range [-t, t].
//   mse         the threshold t minimising the expected error of symmetric `mse_bits`-bit
//               quantisation over a histogram of |x|, range [-t, t].
// The clipped ranges are then intersected with the observed [min, max] (as ORT does), so a
// tensor that is never negative keeps min >= 0.
// Per-channel (`axis` set): one state per index along that axis; the channel count is fixed by
// the first tensor. Histograms cost num_bins * 8 bytes per channel, and the entropy / mse
// searches O(num_bins^2) per channel.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "calibration/histogram.h"
#include "calibration/quant_params.h"
#include "ir/status.h"
#include "runtime/value.h"

namespace llmc::calib {

enum class ObserverKind { kMinMax, kPercentile, kEntropy, kMse };

// "minmax", "percentile", "entropy", "mse"; an unknown name is an error listing them.
Result<ObserverKind> parse_observer_kind(const std::string& name);
const char* observer_kind_name(ObserverKind kind);

struct ObserverOptions {
  ObserverKind kind = ObserverKind::kMinMax;
  std::optional<int> axis;       // per-channel along this axis (negative: from the end)
  double percentile = 99.99;     // percentile: in (0, 100]
  bool symmetric = false;        // percentile: histogram of |x| instead of x
  int num_bins = 2048;           // histogram observers: a multiple of 4, >= 8
  int num_quantized_bins = 128;  // entropy: >= 2, <= num_bins
  int mse_bits = 8;              // mse: 2..16
};
// Checks the numbers above, naming the bad option.
Status validate_observer_options(const ObserverOptions& options);

class Observer {
 public:
  virtual ~Observer() = default;
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

  // Adds one float32 tensor. Fails (leaving the state unchanged) on another dtype, a NaN/Inf,
  // an axis beyond the tensor's rank, or a channel count differing from the first tensor's.
  Status observe(const rt::Value& value);
  Status observe(const float* data, const std::vector<int64_t>& shape);

  // One range per channel (a single one when per-tensor). Fails when nothing was observed.
  Result<std::vector<QuantRange>> channel_ranges() const;
  // The per-tensor range; a per-channel observer gives the envelope of its channels.
  Result<QuantRange> range() const;

  const ObserverOptions& options() const { return options_; }
  bool per_channel() const { return options_.axis.has_value(); }
  int64_t channels() const { return static_cast<int64_t>(mins_.size()); }
  // Values observed so far (over all channels).
  int64_t count() const { return count_; }
  // Observed extremes per channel (empty before the first tensor).
  const std::vector<float>& mins() const { return mins_; }
  const std::vector<float>& maxs() const { return maxs_; }

 protected:
  explicit Observer(ObserverOptions options) : options_(std::move(options)) {}
  // Called with a finite batch laid out [outer, channels, inner] after mins/maxs were updated;
  // `batch_absmax[c]` is channel c's largest |x| in this batch.
  virtual void accumulate(const float* data, int64_t outer, int64_t inner,
                          const std::vector<float>& batch_absmax) {}
  virtual QuantRange compute(int64_t channel) const = 0;

 private:
  ObserverOptions options_;
  std::vector<float> mins_, maxs_;
  int64_t count_ = 0;
};

class MinMaxObserver : public Observer {
 public:
  explicit MinMaxObserver(ObserverOptions options) : Observer(std::move(options)) {}

 protected:
  QuantRange compute(int64_t channel) const override;
};

// Percentile, entropy and mse: one Histogram per channel, of |x| or of x.
class HistogramObserver : public Observer {
 public:
  explicit HistogramObserver(ObserverOptions options);
  const Histogram& histogram(int64_t channel) const { return hists_[channel]; }

 protected:
  void accumulate(const float* data, int64_t outer, int64_t inner,
                  const std::vector<float>& batch_absmax) override;
  QuantRange compute(int64_t channel) const override;

 private:
  Histogram::Mode mode_;
  std::vector<Histogram> hists_;
};

// The observer `options.kind` names (options validated first).
Result<std::unique_ptr<Observer>> make_observer(const ObserverOptions& options);

}  // namespace llmc::calib
