// The pass interface. A pass rewrites a Model in place and reports what it did: counts, bytes,
// and one decision per node it considered ("quantized", "skipped: <reason>"), so users can see
// which layer was left alone and why. "Pattern does not apply" is changed = false, not an error.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
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
  std::string summary;  // one line
};

// Options as parsed strings ("--exclude" -> "lm_head|.*down_proj"); each pass validates its own.
using PassOptions = std::map<std::string, std::string>;

// One calibration sample: graph input name -> value.
using Feeds = std::map<std::string, rt::Value>;

// What a pass may need beyond the model: its path (for messages) and calibration samples for
// passes that need activation statistics (static INT8, SmoothQuant).
struct PassContext {
  std::string model_path;
  const std::vector<Feeds>* calibration = nullptr;
  int threads = 0;
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual const char* name() const = 0;         // kebab-case, verb first
  virtual const char* description() const = 0;  // one line for --help
  virtual Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) = 0;
};

// Initializer bytes of a model (for bytes_before / bytes_after).
size_t initializer_bytes(const Model& model);

}  // namespace llmc
