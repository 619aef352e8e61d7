#include "passes/registry.h"

#include "ir/graph_utils.h"

namespace llmc {

// Each factory is defined in its pass's .cpp; this declares them from the registry lines.
#define LLMC_PASS(name, factory, summary) std::unique_ptr<Pass> factory();
#include "passes/registry.def"
#undef LLMC_PASS

namespace {
struct Entry {
  const char* name;
  std::unique_ptr<Pass> (*make)();
  const char* summary;
};
const std::vector<Entry>& entries() {
  static const std::vector<Entry> list = {
#define LLMC_PASS(name, factory, summary) {name, &factory, summary},
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

std::vector<PassInfo> pass_catalog() {
  std::vector<PassInfo> out;
  for (const auto& e : entries()) {
    auto pass = e.make();
    out.push_back({e.name, e.summary, pass->options(), pass->needs_calibration()});
  }
  return out;
}

Result<std::unique_ptr<Pass>> make_pass(const std::string& name) {
  std::string known;
  for (const auto& e : entries()) {
    if (name == e.name) return e.make();
    known += (known.empty() ? "" : ", ") + std::string(e.name);
  }
  const std::string near = nearest_name(name, pass_names());
  return invalid_input("unknown pass '", name, "'", near.empty() ? "" : " (did you mean '" + near + "'?)",
                       "; known: ", known);
}

Result<PassOptions> resolve_pass_options(const std::string& name, const PassOptions& given) {
  LLMC_ASSIGN_OR_RETURN(auto pass, make_pass(name));
  LLMC_ASSIGN_OR_RETURN(PassOptions options, resolve_options(name, pass->options(), given));
  LLMC_RETURN_IF_ERROR(pass->check(options).with_context("pass '" + name + "'"));
  return options;
}

Result<PassResult> run_pass(const std::string& name, Model& model, const PassOptions& given, PassContext& context) {
  LLMC_ASSIGN_OR_RETURN(auto pass, make_pass(name));
  LLMC_ASSIGN_OR_RETURN(PassOptions options, resolve_pass_options(name, given));
  LLMC_ASSIGN_OR_RETURN(PassResult result, pass->run(model, options, context));
  if (Status v = verify(model.graph); !v.is_ok())
    return internal_error(name, " left an invalid graph: ", v.message(), " (a bug in the pass; please report it)");
  return result;
}

void finish_result(const Model& model, PassResult& result) {
  result.bytes_after = initializer_bytes(model);
  result.changed = result.rewrites > 0;
}

size_t initializer_bytes(const Model& model) {
  size_t n = 0;
  for (const auto& t : model.graph.initializers) n += t.nbytes();
  return n;
}

}  // namespace llmc
