#include "runtime/kernel.h"

#include "ir/checked_math.h"

namespace llmc::rt {

Status KernelContext::require_inputs(size_t n) const {
  for (size_t i = 0; i < n; ++i)
    if (!input(i)) return invalid_input("input ", i, " is required");
  return Status::ok();
}

Status KernelContext::check_output(DType dtype, const std::vector<int64_t>& shape) const {
  const auto bytes = checked_shape_bytes(dtype, shape);
  if (!bytes)
    return invalid_input("output shape ", shape_str(shape), " of ", dtype_name(dtype),
                         " is too large (its size overflows 64 bits)");
  // The hint names the CLI's knobs: the library never reads the environment, but its errors
  // reach users of the CLI, who need to know what to raise.
  if (*bytes > limits_.max_tensor_bytes)
    return invalid_input("output shape ", shape_str(shape), " of ", dtype_name(dtype), " is too large: ", *bytes,
                         " bytes, over the limit of ", limits_.max_tensor_bytes,
                         " bytes per tensor (raise it with LLMC_MAX_TENSOR_BYTES)");
  const uint64_t live = buffers_ ? buffers_->bytes_in_use() : 0;
  if (*bytes > limits_.max_total_bytes || live > limits_.max_total_bytes - *bytes)
    return invalid_input("output shape ", shape_str(shape), " of ", dtype_name(dtype), " needs ", *bytes,
                         " bytes with ", live, " in use, over the total limit of ", limits_.max_total_bytes,
                         " bytes (raise it with LLMC_MAX_TOTAL_BYTES)");
  return Status::ok();
}

Value& KernelContext::output(size_t i, DType dtype, std::vector<int64_t> shape) {
  // A node may declare fewer outputs than its op always fills (a hostile model: Shape with no
  // outputs); what lands past the declared ones is computed and dropped, never out of bounds.
  if (i >= outputs_.size()) outputs_.resize(i + 1);
  outputs_[i] = Value::allocate(dtype, std::move(shape), buffers_);
  return outputs_[i];
}

std::string KernelContext::attr_string(const std::string& name, const std::string& fallback) const {
  const Attribute* a = node_.find_attr(name);
  return a && a->kind == AttrKind::kString ? a->s : fallback;
}

const std::vector<int64_t>* KernelContext::attr_ints(const std::string& name) const {
  const Attribute* a = node_.find_attr(name);
  return a && a->kind == AttrKind::kInts ? &a->ints : nullptr;
}

const std::vector<float>* KernelContext::attr_floats(const std::string& name) const {
  const Attribute* a = node_.find_attr(name);
  return a && a->kind == AttrKind::kFloats ? &a->floats : nullptr;
}

const Tensor* KernelContext::attr_tensor(const std::string& name) const {
  const Attribute* a = node_.find_attr(name);
  return a && a->kind == AttrKind::kTensor && !a->tensors.empty() ? &a->tensors[0] : nullptr;
}

void KernelRegistry::add(const std::string& domain, const std::string& op_type, KernelFn fn) {
  kernels_[{domain, op_type}] = std::move(fn);
}

const KernelFn* KernelRegistry::find(const std::string& domain, const std::string& op_type) const {
  const std::string d = domain == "ai.onnx" ? "" : domain;
  auto it = kernels_.find({d, op_type});
  return it == kernels_.end() ? nullptr : &it->second;
}

std::vector<std::pair<std::string, std::string>> KernelRegistry::ops() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [k, v] : kernels_) out.push_back(k);
  return out;
}

}  // namespace llmc::rt
