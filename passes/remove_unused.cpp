#include "passes/remove_unused.h"

#include <algorithm>
#include <unordered_set>

#include "ir/graph_utils.h"

namespace llmc {

std::unique_ptr<Pass> make_remove_unused() { return std::make_unique<RemoveUnused>(); }

Result<PassResult> RemoveUnused::run(Model& model, const PassOptions&, PassContext&) {
  Graph& g = model.graph;
  PassResult result;
  result.bytes_before = initializer_bytes(model);
  // Every value is defined once (verify), so a node is known by its outputs.
  auto key = [](const Node& n) {
    std::string k;
    for (const auto& o : n.outputs) k += o + "\n";
    return k;
  };
  const std::vector<Node> before = g.nodes;
  if (remove_dead_nodes(g) > 0) {
    std::unordered_set<std::string> kept;
    for (const auto& n : g.nodes) kept.insert(key(n));
    for (const auto& n : before)
      if (!kept.count(key(n))) result.decisions.push_back({n.name, n.op_type, "removed", "no output reaches a graph output"});
  }
  const int inits = remove_unused_initializers(g);
  // value_info of values nothing defines any more (stale shape annotations confuse readers).
  std::unordered_set<std::string> defined;
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs) defined.insert(o);
  const size_t vi_before = g.value_info.size();
  g.value_info.erase(std::remove_if(g.value_info.begin(), g.value_info.end(),
                                    [&](const ValueInfo& v) { return !defined.count(v.name); }),
                     g.value_info.end());
  const size_t vi_removed = vi_before - g.value_info.size();
  result.rewrites = static_cast<int64_t>(result.decisions.size()) + inits + static_cast<int64_t>(vi_removed);
  result.changed = result.rewrites > 0;
  result.bytes_after = initializer_bytes(model);
  result.summary = str_cat(result.decisions.size(), " dead nodes, ", inits, " unused initializers and ", vi_removed,
                           " stale value_info entries removed; weights ", result.bytes_before, " -> ",
                           result.bytes_after, " bytes");
  return result;
}

}  // namespace llmc
