// Plan-time grouping of NMSparseMatMuls (packed n:4 weights, pack-nm-sparse) that read the same
// activation: a Llama layer's Q, K and V projections, and the MLP's gate and up. They run as
// one step (nm_sparse_matmul_group): int8 activations are quantised once, and decode runs every
// product's panels in one parallel loop, as the dense groups do (session_fold_matmul_group.cpp,
// session_fold_dqmm_group.cpp). Outputs are bit-identical to the ungrouped steps. Only products
// whose weights (and scales) are initializers no feed can override, with one value type and
// one n, group; the group runs where its first member ran.
#include <map>
#include <tuple>

#include "ir/nm_sparse.h"
#include "runtime/kernels/register.h"
#include "runtime/session.h"

namespace llmc::rt {

void Session::fold_nm_sparse_groups() {
  auto member = [&](const Step& st) {
    if (st.node->op_type != kNMSparseMatMul || st.node->domain != kLlmcDomain) return false;
    if (st.inputs.size() < 3 || st.inputs.size() > 4 || st.outputs.size() != 1 || st.outputs[0] < 0) return false;
    for (size_t i = 1; i < st.inputs.size(); ++i)
      if (st.inputs[i] < 0 || !fixed_constant(st.inputs[i])) return false;
    return st.inputs[0] >= 0 && constants_[st.inputs[1]].rank() == 2;
  };
  // (activation slot, value type, n) -> member steps, in order.
  std::map<std::tuple<int, DType, int64_t>, std::vector<size_t>> groups;
  for (size_t i = 0; i < steps_.size(); ++i)
    if (member(steps_[i]))
      groups[{steps_[i].inputs[0], constants_[steps_[i].inputs[1]].dtype(), steps_[i].node->attr_int("n", 0)}]
          .push_back(i);
  std::vector<bool> drop(steps_.size(), false);
  for (const auto& [key, group] : groups) {
    if (group.size() < 2) continue;
    static const KernelFn kGroup = nm_sparse_matmul_group;  // profiled as NMSparseMatMul
    merge_product_group(group, kNMSparseMatMul, "llmc.group", 3, {Attribute::make_int("n", std::get<2>(key))}, &kGroup,
                        drop);
  }
  remove_folded_steps(drop);
}

}  // namespace llmc::rt
