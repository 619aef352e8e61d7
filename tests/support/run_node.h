// Runs one node through a kernel registry without a Session: for kernel unit tests.
#pragma once
#include <random>
#include <vector>

#include "ir/graph.h"
#include "runtime/kernel.h"

namespace llmc::testing {

// `inputs[i].empty()` marks an omitted optional input. Uses a 2-thread pool so the
// multi-threaded paths run. Errors come back as the kernel's Status.
Result<std::vector<rt::Value>> run_node(const rt::KernelRegistry& registry, const Node& node,
                                        const std::vector<rt::Value>& inputs, int64_t opset);

// The single output of `node` run through the built-in kernels; REQUIREs success.
rt::Value run1(const Node& node, const std::vector<rt::Value>& inputs, int64_t opset);
// True when the built-in kernel rejects the inputs.
bool fails(const Node& node, const std::vector<rt::Value>& inputs, int64_t opset);
// Row-major linear index of `idx` in `shape`.
int64_t linear(const std::vector<int64_t>& idx, const std::vector<int64_t>& shape);

// A tensor ValueInfo with fixed dims (for graph inputs/outputs of hand-built test models).
inline ValueInfo tensor_info(const std::string& name, DType t, const std::vector<int64_t>& dims) {
  ValueInfo v;
  v.name = name;
  v.type.kind = ValueType::Kind::kTensor;
  v.type.elem = t;
  v.type.has_shape = true;
  for (int64_t d : dims) v.type.dims.push_back(Dim{d, "", ""});
  return v;
}

// Convenience builders.
Node make_node(const std::string& op, size_t num_inputs, size_t num_outputs,
               std::vector<Attribute> attributes = {}, const std::string& domain = "");
// n floats uniform in [lo, hi) from `rng`.
inline std::vector<float> random_floats(int64_t n, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = u(rng);
  return v;
}

template <typename T>
rt::Value make_value(DType dtype, std::vector<int64_t> shape, const std::vector<T>& data) {
  rt::Value v = rt::Value::allocate(dtype, std::move(shape));
  std::copy(data.begin(), data.end(), v.mutable_data<T>());
  return v;
}

}  // namespace llmc::testing
