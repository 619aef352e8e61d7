// The passes of passes/registry.def, by name: what the CLI, recipes and --passes read.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "passes/pass.h"

namespace llmc {

struct PassInfo {
  std::string name;
  std::string summary;
  std::vector<OptionSpec> options;
  bool needs_calibration = false;
};

std::vector<std::string> pass_names();
// Every registered pass with its declared options, in registry order.
std::vector<PassInfo> pass_catalog();
// Error names the unknown pass, the nearest known name and the list.
Result<std::unique_ptr<Pass>> make_pass(const std::string& name);
// Checks `given` against the pass's declared options; canonical options with defaults filled.
Result<PassOptions> resolve_pass_options(const std::string& name, const PassOptions& given);
// Resolves `given` and runs the pass once (no verify, no records: PassManager adds those).
Result<PassResult> run_pass(const std::string& name, Model& model, const PassOptions& given, PassContext& context);

}  // namespace llmc
