#include "calibration/activation_collector.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

namespace llmc::calib {

namespace {

struct Tap {
  std::string name;
  std::unique_ptr<Observer> observer;
  std::unique_ptr<Observer> absmax;  // per channel of the last axis, when asked
};

// `v` transposed by `perm` (empty: reversed axes), for byte-sized element types.
Result<rt::Value> transpose(const rt::Value& v, std::vector<int64_t> perm) {
  const int rank = v.rank();
  if (perm.empty())
    for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
  if (static_cast<int>(perm.size()) != rank) return invalid_input("Transpose perm does not match rank ", rank);
  const int bits = dtype_bits(v.dtype());
  if (bits % 8 != 0 || bits == 0) return unsupported("cannot transpose ", dtype_name(v.dtype()));
  const size_t elem = bits / 8;
  std::vector<int64_t> shape(rank), in_stride(rank, 1);
  for (int d = rank - 2; d >= 0; --d) in_stride[d] = in_stride[d + 1] * v.dim(d + 1);
  for (int d = 0; d < rank; ++d) {
    if (perm[d] < 0 || perm[d] >= rank) return invalid_input("Transpose perm entry ", perm[d], " is out of range");
    shape[d] = v.dim(static_cast<int>(perm[d]));
  }
  rt::Value out = rt::Value::allocate(v.dtype(), shape);
  const auto* src = static_cast<const uint8_t*>(v.raw());
  auto* dst = static_cast<uint8_t*>(out.mutable_raw());
  std::vector<int64_t> idx(rank, 0);
  for (int64_t i = 0, n = out.numel(); i < n; ++i) {
    int64_t off = 0;
    for (int d = 0; d < rank; ++d) off += idx[d] * in_stride[perm[d]];
    std::memcpy(dst + i * elem, src + off * elem, elem);
    for (int d = rank - 1; d >= 0 && ++idx[d] == shape[d]; --d) idx[d] = 0;
  }
  return out;
}

Status observe_into(Tap& tap, const rt::Value& v) {
  LLMC_RETURN_IF_ERROR(tap.observer->observe(v));
  if (tap.absmax) LLMC_RETURN_IF_ERROR(tap.absmax->observe(v).with_context("per-channel abs-max over the last axis"));
  return Status::ok();
}

}  // namespace

Status stream_activations(rt::Session& session, const CalibrationSet& set, const std::vector<std::string>& names,
                          const TapConsumer& consume, size_t taps_per_run,
                          const std::function<void(size_t, size_t)>& progress) {
  if (set.empty()) return invalid_input("the calibration set is empty");
  if (names.empty()) return invalid_input("no tensors to observe");
  const Graph& g = session.model().graph;
  std::map<std::string, const Node*> producer;
  for (const Node& n : g.nodes)
    for (const auto& out : n.outputs)
      if (!out.empty()) producer[out] = &n;
  // Per name: the Transpose producing it, when the runtime may fold that Transpose away.
  std::vector<const Node*> transposes;
  std::set<std::string> seen;
  for (const auto& name : names) {
    if (!seen.insert(name).second) return internal_error("tensor '", name, "' is asked for twice");
    auto p = producer.find(name);
    if (p == producer.end() && !g.find_initializer(name) && !g.is_graph_input(name))
      return invalid_input("no value named '", name, "' in the model");
    const bool folded = p != producer.end() && p->second->op_type == "Transpose" && p->second->domain.empty() &&
                        !p->second->inputs.empty();
    transposes.push_back(folded ? p->second : nullptr);
  }
  const size_t group = taps_per_run == 0 ? names.size() : taps_per_run;
  for (size_t s = 0; s < set.size(); ++s) {
    const std::string where = str_cat("calibration sample ", s, " of ", set.size());
    for (size_t first = 0; first < names.size(); first += group) {
      const size_t last = std::min(names.size(), first + group);
      // What to ask for: each tap, or for a tap a Transpose produces, that Transpose's input
      // (the runtime may fold the Transpose into its reader and never materialise the tap).
      std::vector<std::string> request;
      std::map<std::string, size_t> index;
      auto want = [&](const std::string& n) {
        if (index.emplace(n, request.size()).second) request.push_back(n);
      };
      for (size_t t = first; t < last; ++t) want(transposes[t] ? transposes[t]->inputs[0] : names[t]);
      auto values = session.run(set.samples[s], request);
      if (!values.is_ok()) return values.status().with_context(where);
      for (size_t t = first; t < last; ++t) {
        const Node* tr = transposes[t];
        rt::Value v = tr ? rt::Value() : (*values)[index.at(names[t])];
        if (tr) {
          const rt::Value& src = (*values)[index.at(tr->inputs[0])];
          if (!src.empty()) {
            const Attribute* perm = tr->find_attr("perm");
            auto tv = transpose(src, perm ? perm->ints : std::vector<int64_t>{});
            if (!tv.is_ok()) return tv.status().with_context("tensor '" + names[t] + "'");
            v = std::move(tv).value();
          }
        }
        if (v.empty()) return internal_error("the runtime did not produce tensor '", names[t], "' (", where, ")");
        Status st = consume(s, t, v);
        if (!st.is_ok()) return st.with_context("tensor '" + names[t] + "' in " + where);
      }
    }
    if (progress) progress(s + 1, set.size());
  }
  return Status::ok();
}

Result<ActivationStats> collect_activation_stats(rt::Session& session, const CalibrationSet& set,
                                                 const std::vector<std::string>& names,
                                                 const ObserverFactory& factory, const CollectorOptions& options) {
  if (set.empty()) return invalid_input("the calibration set is empty");
  if (names.empty()) return invalid_input("no tensors to observe");
  std::vector<Tap> taps;
  std::vector<std::string> distinct;
  std::set<std::string> seen;
  for (const auto& name : names) {
    if (!seen.insert(name).second) continue;
    Tap tap;
    tap.name = name;
    auto obs = factory(name);
    if (!obs.is_ok()) return obs.status().with_context("tensor '" + name + "'");
    tap.observer = std::move(obs).value();
    if (options.channel_absmax) {
      ObserverOptions o;
      o.axis = -1;
      tap.absmax = std::make_unique<MinMaxObserver>(o);
    }
    taps.push_back(std::move(tap));
    distinct.push_back(name);
  }
  LLMC_RETURN_IF_ERROR(stream_activations(
      session, set, distinct, [&](size_t, size_t t, const rt::Value& v) { return observe_into(taps[t], v); },
      options.taps_per_run, options.progress));
  ActivationStats stats;
  stats.samples = set.size();
  for (Tap& tap : taps) {
    auto fail = [&](const Status& st) { return st.with_context("tensor '" + tap.name + "'"); };
    auto r = tap.observer->range();
    if (!r.is_ok()) return fail(r.status());
    stats.ranges[tap.name] = *r;
    if (tap.observer->per_channel()) {
      auto cr = tap.observer->channel_ranges();
      if (!cr.is_ok()) return fail(cr.status());
      stats.channel_ranges[tap.name] = std::move(cr).value();
    }
    if (tap.absmax) {
      if (tap.absmax->channels() == 0) return fail(invalid_input("no values to take the per-channel abs-max of"));
      std::vector<float>& a = stats.channel_absmax[tap.name];
      for (int64_t c = 0; c < tap.absmax->channels(); ++c)
        a.push_back(std::max(std::fabs(tap.absmax->mins()[c]), std::fabs(tap.absmax->maxs()[c])));
    }
  }
  return stats;
}

Result<ActivationStats> collect_activation_stats(rt::Session& session, const CalibrationSet& set,
                                                 const std::vector<std::string>& names,
                                                 const CollectorOptions& options) {
  LLMC_RETURN_IF_ERROR(validate_observer_options(options.observer));
  const ObserverOptions o = options.observer;
  return collect_activation_stats(
      session, set, names, [o](const std::string&) { return make_observer(o); }, options);
}

std::vector<std::string> node_input_names(const Graph& graph, const std::string& op_type, bool include_initializers) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const Node& n : graph.nodes) {
    if (n.op_type != op_type || !n.domain.empty()) continue;
    for (const auto& in : n.inputs) {
      if (in.empty() || (!include_initializers && graph.find_initializer(in))) continue;
      if (seen.insert(in).second) out.push_back(in);
    }
  }
  return out;
}

}  // namespace llmc::calib
