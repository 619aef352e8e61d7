// Looks passes up by name (the list is passes/registry.def).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "passes/pass.h"

namespace llmc {

std::vector<std::string> pass_names();
// Error names the unknown pass and lists the known ones.
Result<std::unique_ptr<Pass>> make_pass(const std::string& name);

}  // namespace llmc
