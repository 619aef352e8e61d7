// A streaming histogram with bounded memory, and the clipping-threshold searches that run on it
// (percentile, TensorRT-style entropy / KL divergence, quantisation MSE).
//
// Bins: `num_bins` equal-width bins over [0, R] (of |x|, Mode::kAbs) or [-R, R] (of x,
// Mode::kSigned). R is always a power of two: the first non-zero value sets it to the next power
// of two >= |x|, and a larger |x| later doubles it, merging neighbouring bin pairs (exact: every
// old bin lies inside one new bin). So memory is `num_bins` counts however many values arrive,
// and the final histogram is the same whether the data came in one chunk or a hundred.
// Values must be finite (observers check that before adding).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

namespace llmc::calib {

class Histogram {
 public:
  enum class Mode { kAbs, kSigned };

  // `num_bins` must be a multiple of 4 and >= 8 (validated by ObserverOptions; checked here).
  Histogram(int num_bins, Mode mode);

  // Grows R (by doubling) until it covers `absmax`.
  void extend(double absmax);
  // Adds `n` values `stride` apart. Call extend() with their max |x| first; values beyond R
  // would be counted in the last (or first) bin.
  void add(const float* x, int64_t n, int64_t stride = 1) {
    for (int64_t i = 0; i < n; ++i) add_one(x[i * stride]);
  }
  void add_one(float v) {
    const double x = mode_ == Mode::kAbs ? std::fabs(static_cast<double>(v)) : static_cast<double>(v) + range_;
    int64_t k = range_ > 0 ? static_cast<int64_t>(x * inv_width_) : (mode_ == Mode::kAbs ? 0 : num_bins() / 2);
    if (k >= num_bins()) k = num_bins() - 1;
    if (k < 0) k = 0;
    ++counts_[k];
    ++total_;
  }

  Mode mode() const { return mode_; }
  int num_bins() const { return static_cast<int>(counts_.size()); }
  // R: the histogram covers [0, R] or [-R, R]. 0 until a non-zero value was added.
  double range() const { return range_; }
  double bin_width() const { return range_ > 0 ? (mode_ == Mode::kAbs ? range_ : 2 * range_) / num_bins() : 0; }
  double lower_edge(int k) const { return (mode_ == Mode::kAbs ? 0 : -range_) + k * bin_width(); }
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t total() const { return total_; }

 private:
  Mode mode_;
  double range_ = 0;
  double inv_width_ = 0;
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
};

// The value below which `fraction` (in [0, 1]) of the histogram's mass lies, interpolated
// linearly inside the bin where the cumulative count crosses it (so it is within one bin of the
// exact sorted quantile). 0 for an empty histogram.
double histogram_quantile(const Histogram& h, double fraction);

// TensorRT's entropy calibration on a histogram of |x| (Mode::kAbs): for every candidate
// threshold i bins wide (i from `num_quantized_bins` to the last non-empty bin), the reference
// distribution P is the first i bins with the outliers beyond added to bin i-1; the candidate Q
// merges those i bins into `num_quantized_bins` groups and spreads each group's count evenly
// over its non-empty bins. Returns the upper edge of the i minimising KL(P || Q) (the largest
// such i on ties). Histograms narrower than `num_quantized_bins` bins return their full range.
double entropy_threshold(const Histogram& abs_hist, int num_quantized_bins);

// The clipping threshold t (a bin edge of a Mode::kAbs histogram) minimising the expected squared
// error of symmetric `bits`-bit quantisation with step t / (2^(bits-1) - 1) (ORT's symmetric
// int8 scale for range [-t, t]): values inside [0, t] pay their rounding error, values beyond
// pay (|x| - t)^2, each bin's values taken as uniformly spread over the bin.
double mse_threshold(const Histogram& abs_hist, int bits);

// Expected squared error of that quantiser at threshold `t` over the histogram (the quantity
// mse_threshold minimises), per value.
double histogram_quantization_mse(const Histogram& abs_hist, double t, int bits);

}  // namespace llmc::calib
