// remove-unused: dead-code elimination.
//
// Before:  nodes none of whose outputs reach a graph output (left behind by importers and by
//          passes that rewire their consumers), initializers no node reads, value_info entries
//          naming values that no longer exist.
// After:   all three removed; graph inputs and outputs are never touched (they are the model's
//          interface, even when unused).
// Preconditions: none. Running it twice changes nothing the second time.
#pragma once
#include "passes/pass.h"

namespace llmc {

class RemoveUnused : public Pass {
 public:
  std::vector<OptionSpec> options() const override { return {}; }
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

}  // namespace llmc
