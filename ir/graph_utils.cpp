#include "ir/graph_utils.h"

#include <functional>
#include <queue>

namespace llmc {

namespace {
// Calls fn(name) for every value a node reads, explicit or from its subgraphs.
template <typename Fn>
void for_each_read(const Node& n, Fn&& fn) {
  for (const auto& in : n.inputs)
    if (!in.empty()) fn(in);
  for (const auto& in : n.implicit_inputs) fn(in);
}

std::string describe(const Node& n) {
  return str_cat("node '", n.name, "' (", n.domain.empty() ? "" : n.domain + "::", n.op_type,
                 ")");
}
}  // namespace

GraphIndex::GraphIndex(const Graph& graph) {
  for (int i = 0; i < static_cast<int>(graph.nodes.size()); ++i) {
    const Node& n = graph.nodes[i];
    for (const auto& out : n.outputs)
      if (!out.empty()) producer_.emplace(out, i);
    for_each_read(n, [&](const std::string& v) {
      auto& c = consumers_[v];
      if (c.empty() || c.back() != i) c.push_back(i);
    });
  }
  for (const auto& o : graph.outputs) graph_outputs_.insert(o.name);
}

int GraphIndex::producer(const std::string& value) const {
  auto it = producer_.find(value);
  return it == producer_.end() ? -1 : it->second;
}

const std::vector<int>& GraphIndex::consumers(const std::string& value) const {
  auto it = consumers_.find(value);
  return it == consumers_.end() ? none_ : it->second;
}

std::unordered_set<std::string> graph_level_names(const Graph& graph) {
  std::unordered_set<std::string> names;
  for (const auto& v : graph.inputs) names.insert(v.name);
  for (const auto& t : graph.initializers) names.insert(t.name());
  for (const auto& s : graph.sparse_initializer_names) names.insert(s);
  return names;
}

Status topological_sort(Graph& graph) {
  const int n = static_cast<int>(graph.nodes.size());
  const auto defined = graph_level_names(graph);
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < n; ++i) {
    for (const auto& out : graph.nodes[i].outputs) {
      if (out.empty()) continue;
      if (defined.count(out) || !producer.emplace(out, i).second)
        return invalid_input("value '", out, "' is defined more than once (again by ",
                             describe(graph.nodes[i]), ")");
    }
  }
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> users(n);
  for (int i = 0; i < n; ++i) {
    Status st;
    for_each_read(graph.nodes[i], [&](const std::string& v) {
      if (!st.is_ok() || defined.count(v)) return;
      auto it = producer.find(v);
      if (it == producer.end()) {
        st = invalid_input(describe(graph.nodes[i]), " reads '", v,
                           "', which is not a graph input, an initializer or a node output");
        return;
      }
      users[it->second].push_back(i);
      ++pending[i];
    });
    LLMC_RETURN_IF_ERROR(st);
  }
  // Kahn's algorithm, always taking the lowest stored index first: a valid order stays as is.
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push(i);
  std::vector<int> order;
  order.reserve(n);
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int u : users[i])
      if (--pending[u] == 0) ready.push(u);
  }
  if (static_cast<int>(order.size()) != n) {
    // Nodes still pending lie on a cycle or downstream of one. Walk back through pending
    // producers: the first node seen twice is on the cycle, and that is the one to name.
    int at = 0;
    while (pending[at] == 0) ++at;
    std::vector<bool> seen(n, false);
    while (!seen[at]) {
      seen[at] = true;
      int prev = -1;
      for_each_read(graph.nodes[at], [&](const std::string& v) {
        auto it = producer.find(v);
        if (prev < 0 && it != producer.end() && pending[it->second] > 0) prev = it->second;
      });
      at = prev;
    }
    return invalid_input("graph has a cycle through ", describe(graph.nodes[at]));
  }
  bool already_sorted = true;
  for (int i = 0; i < n; ++i) already_sorted &= order[i] == i;
  if (already_sorted) return Status::ok();
  std::vector<Node> sorted;
  sorted.reserve(n);
  for (int i : order) sorted.push_back(std::move(graph.nodes[i]));
  graph.nodes = std::move(sorted);
  return Status::ok();
}

Status verify(const Graph& graph) {
  auto defined = graph_level_names(graph);
  for (const auto& t : graph.initializers) {
    if (t.dtype() != DType::kString && t.nbytes() != t.expected_nbytes())
      return invalid_input("initializer '", t.name(), "' has ", t.nbytes(), " bytes but shape ",
                           shape_str(t.dims()), " of ", dtype_name(t.dtype()), " needs ",
                           t.expected_nbytes());
  }
  for (const auto& n : graph.nodes) {
    Status st;
    for_each_read(n, [&](const std::string& v) {
      if (st.is_ok() && !defined.count(v))
        st = invalid_input(describe(n), " reads '", v, "' before anything defines it");
    });
    LLMC_RETURN_IF_ERROR(st);
    for (const auto& out : n.outputs) {
      if (out.empty()) continue;
      if (!defined.insert(out).second)
        return invalid_input("value '", out, "' is defined more than once (again by ",
                             describe(n), ")");
    }
  }
  for (const auto& o : graph.outputs)
    if (!defined.count(o.name))
      return invalid_input("graph output '", o.name, "' is not produced by any node");
  return Status::ok();
}

int remove_dead_nodes(Graph& graph) {
  std::unordered_set<std::string> live;
  for (const auto& o : graph.outputs) live.insert(o.name);
  std::vector<bool> keep(graph.nodes.size(), false);
  for (int i = static_cast<int>(graph.nodes.size()) - 1; i >= 0; --i) {
    const Node& n = graph.nodes[i];
    for (const auto& out : n.outputs) keep[i] = keep[i] || (!out.empty() && live.count(out));
    if (keep[i]) for_each_read(n, [&](const std::string& v) { live.insert(v); });
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    if (keep[i]) kept.push_back(std::move(graph.nodes[i]));
  const int removed = static_cast<int>(graph.nodes.size() - kept.size());
  graph.nodes = std::move(kept);
  return removed;
}

int remove_unused_initializers(Graph& graph) {
  std::unordered_set<std::string> used;
  for (const auto& n : graph.nodes) for_each_read(n, [&](const std::string& v) { used.insert(v); });
  for (const auto& o : graph.outputs) used.insert(o.name);
  const size_t before = graph.initializers.size();
  std::vector<Tensor> kept;
  for (auto& t : graph.initializers)
    if (used.count(t.name())) kept.push_back(std::move(t));
  graph.initializers = std::move(kept);
  return static_cast<int>(before - graph.initializers.size());
}

UniqueNames::UniqueNames(const Graph& graph) : used_(graph_level_names(graph)) {
  for (const auto& n : graph.nodes) {
    used_.insert(n.name);
    for (const auto& o : n.outputs) used_.insert(o);
  }
  for (const auto& v : graph.value_info) used_.insert(v.name);
}

std::string UniqueNames::make(const std::string& base) {
  std::string name = base;
  for (int k = 1; used_.count(name); ++k) name = base + "_" + std::to_string(k);
  used_.insert(name);
  return name;
}

}  // namespace llmc
