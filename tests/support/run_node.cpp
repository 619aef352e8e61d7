#include "tests/support/run_node.h"

namespace llmc::testing {

Result<std::vector<rt::Value>> run_node(const rt::KernelRegistry& registry, const Node& node,
                                        const std::vector<rt::Value>& inputs, int64_t opset) {
  static rt::ThreadPool pool(2);
  const rt::KernelFn* fn = registry.find(node.domain, node.op_type);
  if (!fn) return unsupported("no kernel for ", node.op_type);
  std::vector<const rt::Value*> ptrs;
  for (const auto& v : inputs) ptrs.push_back(v.empty() ? nullptr : &v);
  rt::KernelContext ctx(node, opset, ptrs, pool, nullptr);
  LLMC_RETURN_IF_ERROR((*fn)(ctx));
  return std::move(ctx.outputs());
}

Node make_node(const std::string& op, size_t num_inputs, size_t num_outputs,
               std::vector<Attribute> attributes, const std::string& domain) {
  Node n;
  n.name = op + "_test";
  n.op_type = op;
  n.domain = domain;
  for (size_t i = 0; i < num_inputs; ++i) n.inputs.push_back("in" + std::to_string(i));
  for (size_t i = 0; i < num_outputs; ++i) n.outputs.push_back("out" + std::to_string(i));
  n.attributes = std::move(attributes);
  return n;
}

}  // namespace llmc::testing
