// Graph utilities: producer/consumer lookup, topological sort, reference checks, dead-code
// removal and unique names. All return Status rather than asserting: they run on user input.
#pragma once
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"

namespace llmc {

// Lookup tables over a graph; rebuild after the graph changes.
class GraphIndex {
 public:
  explicit GraphIndex(const Graph& graph);
  // Index of the node producing `value`, or -1 (graph input, initializer, or unknown).
  int producer(const std::string& value) const;
  // Indices of nodes reading `value` (explicitly or from a subgraph), in node order.
  const std::vector<int>& consumers(const std::string& value) const;
  bool is_graph_output(const std::string& value) const { return graph_outputs_.count(value) > 0; }

 private:
  std::unordered_map<std::string, int> producer_;
  std::unordered_map<std::string, std::vector<int>> consumers_;
  std::unordered_set<std::string> graph_outputs_;
  std::vector<int> none_;
};

// Names defined before any node runs: graph inputs, initializers, sparse initializers.
std::unordered_set<std::string> graph_level_names(const Graph& graph);

// Sorts nodes topologically, keeping the stored order wherever it is already valid.
// Fails naming a node on a cycle, or on an input nothing defines.
Status topological_sort(Graph& graph);

// Checks the graph is well formed: every input defined (before use, in node order), each value
// defined once, graph outputs defined, initializer byte sizes match their shapes.
Status verify(const Graph& graph);

// Removes nodes none of whose outputs reach a graph output. Returns how many were removed.
int remove_dead_nodes(Graph& graph);
// Removes initializers no node reads and no graph output names. Returns how many were removed.
int remove_unused_initializers(Graph& graph);

// Hands out names not yet used in the graph: "<base>", "<base>_1", "<base>_2", ...
class UniqueNames {
 public:
  explicit UniqueNames(const Graph& graph);
  std::string make(const std::string& base);

 private:
  std::unordered_set<std::string> used_;
};

}  // namespace llmc
