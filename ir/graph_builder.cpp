#include "ir/graph_builder.h"

namespace llmc {

ValueInfo tensor_value(const std::string& name, DType elem, std::vector<Dim> dims) {
  ValueInfo v;
  v.name = name;
  v.type.kind = ValueType::Kind::kTensor;
  v.type.elem = elem;
  v.type.has_shape = true;
  v.type.dims = std::move(dims);
  return v;
}

std::vector<std::string> GraphBuilder::add(const std::string& op_type, const std::string& name,
                                           std::vector<std::string> inputs,
                                           std::vector<Attribute> attributes, int num_outputs,
                                           const std::string& domain) {
  Node n;
  n.name = names_.make(name);
  n.op_type = op_type;
  n.domain = domain;
  n.inputs = std::move(inputs);
  n.attributes = std::move(attributes);
  for (int k = 0; k < num_outputs; ++k)
    n.outputs.push_back(names_.make(n.name + "_output_" + std::to_string(k)));
  graph_.nodes.push_back(std::move(n));
  return graph_.nodes.back().outputs;
}

std::string GraphBuilder::initializer(Tensor t) {
  t.set_name(names_.make(t.name()));
  graph_.initializers.push_back(std::move(t));
  return graph_.initializers.back().name();
}

std::string GraphBuilder::const_i64(const std::string& name, std::vector<int64_t> values,
                                    std::vector<int64_t> dims) {
  return initializer(Tensor::from_vector(name, DType::kI64, std::move(dims), values));
}

std::string GraphBuilder::scalar_f32(const std::string& name, float v) {
  return initializer(Tensor::from_vector(name, DType::kF32, {}, std::vector<float>{v}));
}

}  // namespace llmc
