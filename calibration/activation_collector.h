// Runs a calibration set through a Session with the tensors to observe as taps, feeding one
// observer per tensor, and returns their ranges. Memory stays bounded (pain point #6): only the
// requested taps are returned by the session (never the model's logits or KV cache), one
// sample's taps are alive at a time, and observers keep fixed-size state. `taps_per_run` bounds
// it further by running each sample once per group of that many taps.
//
// Values the runtime does not materialise (a Transpose folded into the MatMul reading it) are
// rebuilt from the Transpose's input, so any value name in the graph can be observed: graph
// inputs, initializers (weights) and node outputs.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "calibration/calibration_data.h"
#include "calibration/observers.h"
#include "runtime/session.h"

namespace llmc::calib {

// One value of one calibration sample, as stream_activations hands it over: the sample's index
// and the value's index in the name list.
using TapConsumer = std::function<Status(size_t sample, size_t tap, const rt::Value& value)>;

// The streaming under both the collector and the statistics service (activation_statistics.h):
// runs every sample of `set` through `session` with `names` (distinct; each must name a value
// of the model) as taps and hands each tapped value to `consume`, in sample order and then name
// order. One sample's taps are alive at a time (one group of `taps_per_run`, when non-zero, per
// run). A consumer's error comes back naming the tensor and the sample.
Status stream_activations(rt::Session& session, const CalibrationSet& set, const std::vector<std::string>& names,
                          const TapConsumer& consume, size_t taps_per_run = 0,
                          const std::function<void(size_t, size_t)>& progress = nullptr);

// Makes the observer for one tensor name (e.g. per-channel for weights, per-tensor otherwise).
using ObserverFactory = std::function<Result<std::unique_ptr<Observer>>(const std::string& tensor_name)>;

struct CollectorOptions {
  ObserverOptions observer;     // for the default factory: make_observer(observer) for every name
  bool channel_absmax = false;  // also max |x| per channel of the last axis (SmoothQuant)
  size_t taps_per_run = 0;      // 0: every tap in one run per sample
  // Called after each sample with (samples done, total); optional.
  std::function<void(size_t, size_t)> progress;
};

struct ActivationStats {
  std::map<std::string, QuantRange> ranges;                       // per tensor (envelope when per-channel)
  std::map<std::string, std::vector<QuantRange>> channel_ranges;  // per-channel observers only
  std::map<std::string, std::vector<float>> channel_absmax;       // last axis, when asked
  size_t samples = 0;
};

Result<ActivationStats> collect_activation_stats(rt::Session& session, const CalibrationSet& set,
                                                 const std::vector<std::string>& names,
                                                 const ObserverFactory& factory, const CollectorOptions& options = {});
// With make_observer(options.observer) for every name.
Result<ActivationStats> collect_activation_stats(rt::Session& session, const CalibrationSet& set,
                                                 const std::vector<std::string>& names,
                                                 const CollectorOptions& options = {});

// The inputs of every node of `op_type` (default domain), in graph order without duplicates;
// initializers (weights) only when `include_initializers`.
std::vector<std::string> node_input_names(const Graph& graph, const std::string& op_type, bool include_initializers);

}  // namespace llmc::calib
