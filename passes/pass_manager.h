// Runs an ordered list of passes on a Model: resolves every step's options before the first
// one runs (a typo in step 5 fails before step 1 spends minutes), verifies the graph after
// each step, and records per step what a report needs (time, parameters and bytes before and
// after, the pass's decisions and warnings). Recipes and --passes one-liners are two
// spellings of the same list of PassSteps.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "passes/pass.h"

namespace llmc {

struct PassStep {
  std::string pass;
  PassOptions options;  // as given; resolve_steps() makes them canonical
  std::string where;    // for messages: "recipe.yaml:12" or "--passes step 2"
};

struct StepRecord {
  std::string pass;
  PassOptions options;  // resolved
  double seconds = 0;
  int64_t params_before = 0, params_after = 0;  // initializer elements
  PassResult result;
};

// "smooth-quant{alpha=0.5},quantize-int8-static{method=entropy,op-types=MatMul,Gemm,per-tensor}".
// Inside braces a piece without '=' continues the previous value when that option is a list or
// text (declared by the pass), else it names a boolean switched on. Values cannot hold '}'.
Result<std::vector<PassStep>> parse_pass_list(const std::string& text);
// The canonical one-line spelling of steps (sorted option keys), for messages and logs.
std::string format_pass_list(const std::vector<PassStep>& steps);

// Checks every pass name and option; replaces each step's options by the resolved ones.
// Errors are prefixed with the step's `where`.
Status resolve_steps(std::vector<PassStep>& steps);

int64_t parameter_count(const Model& model);

class PassManager {
 public:
  // Called after each step with its index, record and the model as it now is (for
  // --keep-intermediate); an error stops the run.
  using AfterStep = std::function<Status(size_t index, const StepRecord& record, const Model& model)>;
  // Steps must be resolved. Calls context.on_graph_changed after a step that changed the graph
  // (the pipeline drops its cached activation statistics there).
  Result<std::vector<StepRecord>> run(Model& model, const std::vector<PassStep>& steps, PassContext& context,
                                      const AfterStep& after = {}) const;
};

}  // namespace llmc
