#include "calibration/activation_statistics.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "calibration/activation_collector.h"
#include "calibration/gram.h"
#include "calibration/histogram.h"
#include "runtime/session.h"
#include "runtime/thread_pool.h"

namespace llmc::calib {

namespace {

constexpr unsigned kAllKinds = kAbsMax | kMeanAbs | kL2Norm | kHistogram | kGram | kRange;

bool same_observer(const ObserverOptions& a, const ObserverOptions& b) {
  return a.kind == b.kind && a.axis == b.axis && a.percentile == b.percentile && a.symmetric == b.symmetric &&
         a.num_bins == b.num_bins && a.num_quantized_bins == b.num_quantized_bins && a.mse_bits == b.mse_bits;
}

void mix(size_t& h, size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); }

// What a rewrite changes: nodes (op, inputs, outputs), graph inputs, and initializers (name,
// type, and where their bytes are: a copy-on-write edit moves them).
size_t graph_fingerprint(const Graph& g) {
  const std::hash<std::string> hs;
  size_t h = g.nodes.size();
  for (const Node& n : g.nodes) {
    mix(h, hs(n.domain + "::" + n.op_type));
    for (const auto& in : n.inputs) mix(h, hs(in));
    mix(h, n.inputs.size());
    for (const auto& out : n.outputs) mix(h, hs(out));
    mix(h, n.attributes.size());
  }
  for (const auto& in : g.inputs) mix(h, hs(in.name));
  for (const Tensor& t : g.initializers) {
    mix(h, hs(t.name()));
    mix(h, static_cast<size_t>(t.dtype()));
    for (int64_t d : t.dims()) mix(h, static_cast<size_t>(d));
    mix(h, reinterpret_cast<uintptr_t>(t.data()));
  }
  return h;
}

// One value being measured in a stream: what to measure and the running state.
struct Pending {
  std::string name;
  unsigned kinds = 0;  // to measure
  int histogram_bins = 0;
  ObserverOptions observer_options;
  int64_t channels = -1, rows = 0;
  std::vector<double> absmax, sum_abs, sum_sq, gram;  // per channel; gram [channels^2], upper triangle
  std::unique_ptr<Histogram> histogram;
  std::unique_ptr<Observer> observer;
};

// Adds one sample's value. Per channel, sums run over the rows in order (deterministic).
Status add_sample(Pending& p, const rt::Value& v, std::vector<double>& scratch, rt::ThreadPool* pool) {
  if (v.dtype() != DType::kF32)
    return unsupported("activation statistics take f32 values, this one is ", dtype_name(v.dtype()));
  const int64_t channels = v.rank() == 0 ? 1 : v.dim(-1);
  const int64_t rows = channels == 0 ? 0 : v.numel() / channels;
  if (p.channels < 0) {
    p.channels = channels;
    const size_t c = static_cast<size_t>(channels);
    p.absmax.assign(c, 0.0);
    p.sum_abs.assign(c, 0.0);
    if (p.kinds & kL2Norm) p.sum_sq.assign(c, 0.0);
    if (p.kinds & kGram) p.gram.assign(c * c, 0.0);
  } else if (channels != p.channels) {
    return invalid_input("has ", channels, " channels on its last axis, an earlier sample ", p.channels);
  }
  const float* x = v.data<float>();
  // abs-max and sum |x| always: the sums also catch a NaN or Inf (which every statistic would
  // silently carry), and the histogram needs the maximum.
  double* amax = p.absmax.data();
  double* sabs = p.sum_abs.data();
  double* ssq = p.sum_sq.empty() ? nullptr : p.sum_sq.data();
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      const double a = std::fabs(static_cast<double>(row[c]));
      amax[c] = std::max(amax[c], a);
      sabs[c] += a;
    }
    if (ssq)
      for (int64_t c = 0; c < channels; ++c) ssq[c] += static_cast<double>(row[c]) * row[c];
  }
  for (int64_t c = 0; c < channels; ++c)
    if (!std::isfinite(sabs[c])) return invalid_input("holds a NaN or Inf (channel ", c, " of ", channels, ")");
  if (p.histogram) {
    p.histogram->extend(channels ? *std::max_element(p.absmax.begin(), p.absmax.end()) : 0.0);
    p.histogram->add(x, rows * channels);
  }
  if (p.observer) LLMC_RETURN_IF_ERROR(p.observer->observe(v));
  if (p.kinds & kGram) accumulate_gram(p.gram.data(), channels, x, rows, scratch, pool);
  p.rows += rows;
  return Status::ok();
}

// Moves a finished stream's results into the cached statistics.
Status commit(Pending& p, ChannelStatistics& s) {
  if (s.kinds != 0 && (s.channels != p.channels || s.rows != p.rows))
    return internal_error("statistics of '", p.name, "' changed shape between streams: ", s.channels, " channels x ",
                          s.rows, " rows, now ", p.channels, " x ", p.rows);
  if (p.kinds & kRange) {  // first: the only step that can fail
    auto range = p.observer->range();
    if (!range.is_ok()) return range.status().with_context("tensor '" + p.name + "'");
    std::vector<QuantRange> channel_ranges;
    if (p.observer->per_channel()) {
      auto cr = p.observer->channel_ranges();
      if (!cr.is_ok()) return cr.status().with_context("tensor '" + p.name + "'");
      channel_ranges = std::move(cr).value();
    }
    s.range = *range;
    s.channel_ranges = std::move(channel_ranges);
    s.observer = p.observer_options;
  }
  s.channels = p.channels;
  s.rows = p.rows;
  const double rows = static_cast<double>(std::max<int64_t>(p.rows, 1));
  if (p.kinds & kMeanAbs) {
    s.mean_abs = p.sum_abs;
    for (double& m : s.mean_abs) m /= rows;
  }
  if (p.kinds & kL2Norm) {
    s.l2_norm = std::move(p.sum_sq);
    for (double& n : s.l2_norm) n = std::sqrt(n);
  }
  if (p.kinds & kAbsMax) s.absmax = std::move(p.absmax);
  if (p.kinds & kGram) {
    symmetrize_gram(p.gram.data(), p.channels);
    s.gram = std::move(p.gram);
  }
  if (p.kinds & kHistogram) {
    const auto& counts = p.histogram->counts();
    s.histogram.assign(counts.begin(), counts.end());
    s.hist_max = p.histogram->range();
  }
  s.kinds |= p.kinds;
  return Status::ok();
}

// What `request` asks of a value that `stats` does not hold yet.
unsigned missing_kinds(const ChannelStatistics& stats, const StatisticsRequest& request) {
  unsigned missing = request.kinds & ~stats.kinds;
  if ((request.kinds & kHistogram) && static_cast<int>(stats.histogram.size()) != request.histogram_bins)
    missing |= kHistogram;
  if ((request.kinds & kRange) && !same_observer(stats.observer, request.observer)) missing |= kRange;
  return missing;
}

// Streams the calibration set through `model` once, measuring every pending value.
Status measure(const Model& model, const CalibrationSet& set, int threads, const rt::MemoryLimits& limits,
               const std::function<void(size_t, size_t)>& progress, std::vector<Pending>& pending) {
  std::vector<std::string> names;
  for (Pending& p : pending) {
    names.push_back(p.name);
    if (p.kinds & kHistogram) p.histogram = std::make_unique<Histogram>(p.histogram_bins, Histogram::Mode::kAbs);
    if (p.kinds & kRange) {
      auto observer = make_observer(p.observer_options);
      if (!observer.is_ok()) return observer.status().with_context("tensor '" + p.name + "'");
      p.observer = std::move(observer).value();
    }
  }
  // One pool for the session and the Gram updates: they take turns, never run at once.
  auto pool = std::make_shared<rt::ThreadPool>(threads);
  rt::SessionOptions options;
  options.pool = pool;
  options.limits = limits;
  auto session = rt::Session::create(std::make_shared<const Model>(model), options);  // the copy shares weight bytes
  if (!session.is_ok()) return session.status().with_context("calibration session");
  std::vector<double> scratch;
  return stream_activations(
      **session, set, names,
      [&](size_t, size_t t, const rt::Value& v) { return add_sample(pending[t], v, scratch, pool.get()); }, 0,
      progress);
}

}  // namespace

ActivationStatistics::ActivationStatistics(const CalibrationSet* set, int threads) : set_(set), threads_(threads) {}

size_t ActivationStatistics::samples() const { return set_ ? set_->size() : 0; }

void ActivationStatistics::invalidate() {
  cache_.clear();
  fingerprint_ = 0;
}

Result<std::map<std::string, const ChannelStatistics*>> ActivationStatistics::get(const Model& model,
                                                                                  const StatisticsRequest& request) {
  if (!set_ || set_->empty())
    return invalid_input("activation statistics need calibration samples, and ",
                         set_ ? "the calibration set is empty" : "none were given");
  if (request.kinds == 0) return invalid_input("activation statistics: no kind of statistic asked for");
  if (request.kinds & ~kAllKinds) return invalid_input("activation statistics: unknown kinds 0x", request.kinds & ~kAllKinds);
  if ((request.kinds & kHistogram) && (request.histogram_bins < 8 || request.histogram_bins % 4 != 0))
    return invalid_input("histogram_bins must be a multiple of 4 and at least 8, got ", request.histogram_bins);
  if (request.kinds & kRange) LLMC_RETURN_IF_ERROR(validate_observer_options(request.observer));
  const size_t fingerprint = graph_fingerprint(model.graph);
  if (fingerprint != fingerprint_) invalidate();
  fingerprint_ = fingerprint;

  std::vector<Pending> pending;
  std::set<std::string> seen;
  for (const auto& name : request.values) {
    if (!seen.insert(name).second) continue;
    auto it = cache_.find(name);
    const unsigned missing = it == cache_.end() ? request.kinds : missing_kinds(*it->second, request);
    if (missing == 0) continue;
    Pending p;
    p.name = name;
    p.kinds = missing;
    p.histogram_bins = request.histogram_bins;
    p.observer_options = request.observer;
    pending.push_back(std::move(p));
  }
  if (!pending.empty()) {
    LLMC_RETURN_IF_ERROR(measure(model, *set_, threads_, limits, progress, pending));
    ++streams_;
    for (Pending& p : pending) {
      std::unique_ptr<ChannelStatistics>& slot = cache_[p.name];
      if (!slot) slot = std::make_unique<ChannelStatistics>();
      Status st = commit(p, *slot);
      if (!st.is_ok()) {
        if (slot->kinds == 0) cache_.erase(p.name);
        return st;
      }
    }
  }
  std::map<std::string, const ChannelStatistics*> out;
  for (const auto& name : request.values) out[name] = cache_.at(name).get();
  return out;
}

}  // namespace llmc::calib
