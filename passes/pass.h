// The pass interface. A pass rewrites a Model in place and reports what it did: counts, bytes,
// and one decision per node it considered ("quantized", "skipped: <reason>"), so users can see
// which layer was left alone and why. "Pattern does not apply" is changed = false, not an error.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "passes/pass_options.h"
#include "runtime/value.h"

namespace llmc {

struct NodeDecision {
  std::string node;    // node name
  std::string op;      // op type
  std::string action;  // e.g. "quantized", "skipped"
  std::string reason;  // why (for skips), or detail (bits, scheme)
};

struct PassResult {
  bool changed = false;
  int64_t rewrites = 0;
  size_t bytes_before = 0;  // initializer bytes of the model before / after the pass
  size_t bytes_after = 0;
  std::vector<NodeDecision> decisions;
  std::vector<std::string> warnings;
  std::string summary;  // one line; goes into the artifact's manifest, so deterministic (no times)
  std::vector<std::string> notes;  // report-only lines (where the time went): never in the manifest
};

// One calibration sample: graph input name -> value.
using Feeds = std::map<std::string, rt::Value>;

namespace calib {
class ActivationStatistics;
}

// What a pass may need beyond the model: its path (for messages), calibration samples and the
// activation-statistics service over them (passes that need activation data), threads. Without
// `statistics`, those passes measure through a service of their own over `calibration`
// (passes/pass_statistics.h).
struct PassContext {
  std::string model_path;
  const std::vector<Feeds>* calibration = nullptr;
  calib::ActivationStatistics* statistics = nullptr;
  int threads = 0;
  // Called by the PassManager after a step changed the graph (drops cached statistics).
  std::function<void()> on_graph_changed;
};

// A pass's name and one-line summary live in passes/registry.def; the class declares its
// options and rewrites the model. run() receives options already resolved against options()
// (every declared default present, values checked): call it through run_pass() or the
// PassManager, never with raw user input.
class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::vector<OptionSpec> options() const = 0;
  // Checks that span several options (e.g. sparsity and pattern not both), after each option was
  // checked on its own; run before any step of a pipeline runs.
  virtual Status check(const PassOptions& resolved) const { return Status::ok(); }
  // True when run() needs calibration samples (checked before a pipeline starts).
  virtual bool needs_calibration() const { return false; }
  // True when run() with these options reads calibration samples if there are any (a pass may
  // use them without needing them: factorize-svd ranks layers by output error when it can).
  virtual bool uses_calibration(const PassOptions& resolved) const { return needs_calibration(); }
  // True when run() computes for seconds beyond streaming the weights once (sweeps,
  // decompositions): the pipeline then gives it every core from the start.
  virtual bool compute_bound() const { return needs_calibration(); }
  virtual Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) = 0;
};

// Initializer bytes of a model (for bytes_before / bytes_after).
size_t initializer_bytes(const Model& model);
// The tail every rewriting pass shares: bytes_after measured, changed = rewrites > 0. The graph
// is verified by whoever runs the pass (PassManager, run_pass), not by each pass.
void finish_result(const Model& model, PassResult& result);

}  // namespace llmc
