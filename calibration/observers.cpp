#include "calibration/observers.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace llmc::calib {

namespace {
constexpr const char* kKindNames[] = {"minmax", "percentile", "entropy", "mse"};
constexpr ObserverKind kKinds[] = {ObserverKind::kMinMax, ObserverKind::kPercentile,
                                   ObserverKind::kEntropy, ObserverKind::kMse};

// [-t, t] intersected with what was observed.
QuantRange clip_symmetric(double t, float mn, float mx) {
  const float tf = static_cast<float>(t);
  const float hi = std::min(tf, mx);
  return {std::min(std::max(-tf, mn), hi), hi};
}
}  // namespace

Result<ObserverKind> parse_observer_kind(const std::string& name) {
  for (size_t i = 0; i < std::size(kKinds); ++i)
    if (name == kKindNames[i]) return kKinds[i];
  return invalid_input("unknown calibration method '", name,
                       "' (expected one of: minmax, percentile, entropy, mse)");
}

const char* observer_kind_name(ObserverKind kind) { return kKindNames[static_cast<int>(kind)]; }

Status validate_observer_options(const ObserverOptions& o) {
  if (!(o.percentile > 0 && o.percentile <= 100))
    return invalid_input("percentile must be in (0, 100], got ", o.percentile);
  if (o.num_bins < 8 || o.num_bins % 4 != 0)
    return invalid_input("histogram bins must be a multiple of 4 and at least 8, got ", o.num_bins);
  if (o.num_quantized_bins < 2 || o.num_quantized_bins > o.num_bins)
    return invalid_input("quantized bins must be in [2, ", o.num_bins, "], got ", o.num_quantized_bins);
  if (o.mse_bits < 2 || o.mse_bits > 16)
    return invalid_input("mse bits must be in [2, 16], got ", o.mse_bits);
  return Status::ok();
}

Status Observer::observe(const rt::Value& value) {
  if (value.dtype() != DType::kF32)
    return invalid_input("observers take f32 tensors, got ", dtype_name(value.dtype()), " ",
                         shape_str(value.shape()));
  return observe(value.data<float>(), value.shape());
}

Status Observer::observe(const float* data, const std::vector<int64_t>& shape) {
  const int64_t numel = shape_numel(shape);
  int64_t outer = 1, channels = 1, inner = numel;
  if (options_.axis) {
    const int rank = static_cast<int>(shape.size());
    const int axis = *options_.axis < 0 ? *options_.axis + rank : *options_.axis;
    if (axis < 0 || axis >= rank)
      return invalid_input("channel axis ", *options_.axis, " is out of range for shape ", shape_str(shape));
    channels = shape[axis];
    outer = shape_numel(std::vector<int64_t>(shape.begin(), shape.begin() + axis));
    inner = shape_numel(std::vector<int64_t>(shape.begin() + axis + 1, shape.end()));
    if (!mins_.empty() && channels != this->channels())
      return invalid_input("tensor ", shape_str(shape), " has ", channels, " channels along axis ",
                           *options_.axis, ", earlier tensors had ", this->channels());
  }
  if (numel == 0) return Status::ok();
  // Pass 1: this batch's extremes per channel, refusing NaN/Inf before anything changes.
  std::vector<float> bmin(channels, std::numeric_limits<float>::infinity());
  std::vector<float> bmax(channels, -std::numeric_limits<float>::infinity());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < channels; ++c) {
      const float* p = data + (o * channels + c) * inner;
      float lo = bmin[c], hi = bmax[c], poison = 0.f;  // NaN iff some value is NaN or Inf
      for (int64_t i = 0; i < inner; ++i) {
        lo = std::min(lo, p[i]);
        hi = std::max(hi, p[i]);
        poison += p[i] * 0.f;
      }
      if (poison != 0.f || !std::isfinite(lo) || !std::isfinite(hi)) {
        for (int64_t i = 0; i < inner; ++i)
          if (!std::isfinite(p[i]))
            return invalid_input("non-finite value ", p[i], " at element ", (o * channels + c) * inner + i,
                                 " of a tensor ", shape_str(shape));
      }
      bmin[c] = lo;
      bmax[c] = hi;
    }
  }
  if (mins_.empty()) {
    mins_ = bmin;
    maxs_ = bmax;
  } else {
    for (int64_t c = 0; c < channels; ++c) {
      mins_[c] = std::min(mins_[c], bmin[c]);
      maxs_[c] = std::max(maxs_[c], bmax[c]);
    }
  }
  count_ += numel;
  std::vector<float> absmax(channels);
  for (int64_t c = 0; c < channels; ++c) absmax[c] = std::max(std::fabs(bmin[c]), std::fabs(bmax[c]));
  accumulate(data, outer, inner, absmax);
  return Status::ok();
}

Result<std::vector<QuantRange>> Observer::channel_ranges() const {
  if (mins_.empty()) return invalid_input("the ", observer_kind_name(options_.kind), " observer saw no data");
  std::vector<QuantRange> out(mins_.size());
  for (size_t c = 0; c < mins_.size(); ++c) out[c] = compute(static_cast<int64_t>(c));
  return out;
}

Result<QuantRange> Observer::range() const {
  LLMC_ASSIGN_OR_RETURN(auto ranges, channel_ranges());
  QuantRange r = ranges[0];
  for (const auto& x : ranges) {
    r.min = std::min(r.min, x.min);
    r.max = std::max(r.max, x.max);
  }
  return r;
}

QuantRange MinMaxObserver::compute(int64_t channel) const {
  return {mins()[channel], maxs()[channel]};
}

HistogramObserver::HistogramObserver(ObserverOptions options)
    : Observer(std::move(options)),
      mode_(this->options().kind == ObserverKind::kPercentile && !this->options().symmetric
                ? Histogram::Mode::kSigned
                : Histogram::Mode::kAbs) {}

void HistogramObserver::accumulate(const float* data, int64_t outer, int64_t inner,
                                   const std::vector<float>& batch_absmax) {
  const int64_t channels = static_cast<int64_t>(batch_absmax.size());
  if (hists_.empty()) hists_.assign(channels, Histogram(options().num_bins, mode_));
  for (int64_t c = 0; c < channels; ++c) hists_[c].extend(batch_absmax[c]);
  if (channels == 1) {
    hists_[0].add(data, outer * inner);
    return;
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c) hists_[c].add(data + (o * channels + c) * inner, inner);
}

QuantRange HistogramObserver::compute(int64_t channel) const {
  const Histogram& h = hists_[channel];
  const float mn = mins()[channel], mx = maxs()[channel];
  const ObserverOptions& o = options();
  switch (o.kind) {
    case ObserverKind::kPercentile: {
      if (o.symmetric) return clip_symmetric(histogram_quantile(h, o.percentile / 100), mn, mx);
      const double cut = (100 - o.percentile) / 200;  // from each tail, as ORT
      const float lo = static_cast<float>(histogram_quantile(h, cut));
      const float hi = static_cast<float>(histogram_quantile(h, 1 - cut));
      return {std::clamp(lo, mn, mx), std::clamp(hi, mn, mx)};
    }
    case ObserverKind::kEntropy:
      return clip_symmetric(entropy_threshold(h, o.num_quantized_bins), mn, mx);
    case ObserverKind::kMse:
      return clip_symmetric(mse_threshold(h, o.mse_bits), mn, mx);
    case ObserverKind::kMinMax:
      break;
  }
  return {mn, mx};
}

Result<std::unique_ptr<Observer>> make_observer(const ObserverOptions& options) {
  LLMC_RETURN_IF_ERROR(validate_observer_options(options));
  if (options.kind == ObserverKind::kMinMax) return std::unique_ptr<Observer>(new MinMaxObserver(options));
  return std::unique_ptr<Observer>(new HistogramObserver(options));
}

}  // namespace llmc::calib
