#include "tests/support/run_node.h"

#include <catch2/catch.hpp>

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

rt::Value run1(const Node& node, const std::vector<rt::Value>& inputs, int64_t opset) {
  auto r = run_node(rt::builtin_kernels(), node, inputs, opset);
  INFO(r.status().message());
  REQUIRE(r.is_ok());
  return (*r)[0];
}

bool fails(const Node& node, const std::vector<rt::Value>& inputs, int64_t opset) {
  return !run_node(rt::builtin_kernels(), node, inputs, opset).is_ok();
}

int64_t linear(const std::vector<int64_t>& idx, const std::vector<int64_t>& shape) {
  int64_t l = 0;
  for (size_t d = 0; d < shape.size(); ++d) l = l * shape[d] + idx[d];
  return l;
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
