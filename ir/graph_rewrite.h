// Rebuilds a graph's node list in one ordered sweep: a pass walks the old nodes, keeps each
// one (possibly edited) or emits new nodes in its place, and adds initializers; names are made
// unique against the whole graph. commit() installs the new list and initializers and drops
// initializers nothing reads any more. Every rewriting pass shares this instead of its own
// add-initializer / add-node helpers and clean-up tail.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/graph_utils.h"

namespace llmc {

class GraphRewrite {
 public:
  explicit GraphRewrite(Graph& graph) : graph_(graph), names_(graph) {}

  std::string unique_name(const std::string& base) { return names_.make(base); }
  // A new initializer, renamed when its name is taken; returns the name it got. Visible in the
  // graph after commit() (find_initializer sees only the old ones until then).
  std::string initializer(Tensor t);
  // A new node named `base` (made unique) with outputs "<name>_output_<k>", emitted now.
  std::vector<std::string> add(const std::string& op_type, const std::string& base, std::vector<std::string> inputs,
                               std::vector<Attribute> attributes = {}, int num_outputs = 1,
                               const std::string& domain = "");
  // A new single-output node whose output is named `output_base` (made unique).
  std::string add_named(const std::string& op_type, const std::string& base, std::vector<std::string> inputs,
                        const std::string& output_base, std::vector<Attribute> attributes = {});
  // Emits an existing (possibly edited) node.
  void keep(Node node) { out_.push_back(std::move(node)); }
  // The node emitted last (e.g. to give it the replaced node's output name).
  Node& last() { return out_.back(); }

  // Replaces the graph's nodes by the emitted ones (when any were emitted), appends the new
  // initializers and removes unused ones. Returns how many initializers were removed.
  int commit();

 private:
  Graph& graph_;
  UniqueNames names_;
  std::vector<Node> out_;
  std::vector<Tensor> inits_;
};

}  // namespace llmc
