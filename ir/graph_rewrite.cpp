#include "ir/graph_rewrite.h"

namespace llmc {

std::string GraphRewrite::initializer(Tensor t) {
  t.set_name(names_.make(t.name()));
  inits_.push_back(std::move(t));
  return inits_.back().name();
}

std::vector<std::string> GraphRewrite::add(const std::string& op_type, const std::string& base,
                                           std::vector<std::string> inputs, std::vector<Attribute> attributes,
                                           int num_outputs, const std::string& domain) {
  Node n;
  n.name = names_.make(base);
  n.op_type = op_type;
  n.domain = domain;
  n.inputs = std::move(inputs);
  for (int k = 0; k < num_outputs; ++k) n.outputs.push_back(names_.make(n.name + "_output_" + std::to_string(k)));
  n.attributes = std::move(attributes);
  out_.push_back(std::move(n));
  return out_.back().outputs;
}

std::string GraphRewrite::add_named(const std::string& op_type, const std::string& base, std::vector<std::string> inputs,
                                    const std::string& output_base, std::vector<Attribute> attributes) {
  Node n;
  n.name = names_.make(base);
  n.op_type = op_type;
  n.inputs = std::move(inputs);
  n.outputs.push_back(names_.make(output_base));
  n.attributes = std::move(attributes);
  out_.push_back(std::move(n));
  return out_.back().outputs[0];
}

int GraphRewrite::commit() {
  if (!out_.empty()) graph_.nodes = std::move(out_);
  out_.clear();
  for (auto& t : inits_) graph_.initializers.push_back(std::move(t));
  inits_.clear();
  return remove_unused_initializers(graph_);
}

}  // namespace llmc
