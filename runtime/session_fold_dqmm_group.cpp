// Plan-time grouping of DynamicQuantizeMatMuls that read the same activation: a Llama layer's
// Q, K and V projections of the attention norm's output, and the MLP's gate and up projections
// of the second norm's output. They run as one step (dynamic_quantize_matmul_group): the
// activation is quantized once instead of once per product, and decode runs all their integer
// products in one parallel loop, so the threads meet once instead of once per product (85
// products a token become 49 on a 12-layer model). Outputs are bit-identical to the ungrouped
// steps. Only products whose weight, scale, zero point and bias are initializers no feed can
// override, with a 2-D weight, group; the group runs where its first member ran, which every
// member's inputs already reach.
#include <map>

#include "runtime/kernels/register.h"
#include "runtime/session.h"

namespace llmc::rt {

void Session::fold_dynamic_quant_matmul_groups() {
  auto member = [&](const Step& st) {
    if (st.node->op_type != "DynamicQuantizeMatMul" || st.node->domain != "com.microsoft") return false;
    if (st.inputs.size() < 3 || st.inputs.size() > 5 || st.outputs.size() != 1 || st.outputs[0] < 0) return false;
    for (size_t i = 1; i < st.inputs.size(); ++i)
      if (st.inputs[i] >= 0 && !fixed_constant(st.inputs[i])) return false;
    const Value& w = constants_[st.inputs[1]];
    return st.inputs[0] >= 0 && w.rank() == 2 && (w.dtype() == DType::kI8 || w.dtype() == DType::kU8);
  };
  std::map<int, std::vector<size_t>> by_input;  // activation slot -> member steps, in order
  for (size_t i = 0; i < steps_.size(); ++i)
    if (member(steps_[i])) by_input[steps_[i].inputs[0]].push_back(i);
  std::vector<bool> drop(steps_.size(), false);
  for (const auto& [a, group] : by_input) {
    if (group.size() < 2) continue;
    static const KernelFn kGroup = dynamic_quantize_matmul_group;  // profiled as DynamicQuantizeMatMul
    merge_product_group(group, "DynamicQuantizeMatMul", "com.microsoft", 4, {}, &kGroup, drop);
  }
  remove_folded_steps(drop);
}

}  // namespace llmc::rt
