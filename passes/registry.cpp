#include "passes/registry.h"

#include "passes/quantize_fp16.h"
#include "passes/quantize_int8_dynamic.h"
#include "passes/quantize_int8_static.h"
#include "passes/smooth_quant.h"

namespace llmc {

namespace {
struct Entry {
  const char* name;
  std::unique_ptr<Pass> (*make)();
};
const std::vector<Entry>& entries() {
  static const std::vector<Entry> list = {
#define LLMC_PASS(name, cls, header) {name, [] { return std::unique_ptr<Pass>(new cls()); }},
#include "passes/registry.def"
#undef LLMC_PASS
  };
  return list;
}
}  // namespace

std::vector<std::string> pass_names() {
  std::vector<std::string> names;
  for (const auto& e : entries()) names.push_back(e.name);
  return names;
}

Result<std::unique_ptr<Pass>> make_pass(const std::string& name) {
  std::string known;
  for (const auto& e : entries()) {
    if (name == e.name) return e.make();
    known += (known.empty() ? "" : ", ") + std::string(e.name);
  }
  return invalid_input("unknown pass '", name, "' (known: ", known, ")");
}

size_t initializer_bytes(const Model& model) {
  size_t n = 0;
  for (const auto& t : model.graph.initializers) n += t.nbytes();
  return n;
}

}  // namespace llmc
