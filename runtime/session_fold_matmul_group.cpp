// Plan-time grouping of float MatMuls that read the same activation with constant 2-D weights:
// a Llama layer's Q, K and V projections of the attention norm's output, and the MLP's gate and
// up projections (matmul_group). Decode runs all their packed panels in one parallel loop, so
// the threads meet once instead of once per product (85 weight products a token become 49 on
// a 12-layer model), as the int8 products are grouped (session_fold_dqmm_group.cpp). Outputs
// are bit-identical to the ungrouped steps. Only weights no feed can override, at least as wide
// as a packed panel, group; the group runs where its first member ran.
#include <map>
#include <tuple>

#include "runtime/kernels/register.h"
#include "runtime/session.h"

namespace llmc::rt {

void Session::fold_matmul_groups() {
  auto member = [&](const Step& st) {
    if (st.node->op_type != "MatMul" || !st.node->domain.empty() || st.node->find_attr(kMatMulTransB)) return false;
    if (st.inputs.size() != 2 || st.outputs.size() != 1 || st.outputs[0] < 0 || st.inputs[0] < 0) return false;
    if (!fixed_constant(st.inputs[1])) return false;
    const Value& w = constants_[st.inputs[1]];
    return w.rank() == 2 && (w.dtype() == DType::kF32 || w.dtype() == DType::kF16) && w.dim(1) >= kMinPackedColumns;
  };
  // Activation slot (and weight dtype and K: products of one group multiply alike) -> steps.
  std::map<std::tuple<int, DType, int64_t>, std::vector<size_t>> groups;
  for (size_t i = 0; i < steps_.size(); ++i)
    if (member(steps_[i])) {
      const Value& w = constants_[steps_[i].inputs[1]];
      groups[{steps_[i].inputs[0], w.dtype(), w.dim(0)}].push_back(i);
    }
  std::vector<bool> drop(steps_.size(), false);
  for (const auto& [key, group] : groups) {
    if (group.size() < 2) continue;
    // Profiled as MatMul; its own domain keeps padded inputs away (Session::run densifies).
    static const KernelFn kGroup = matmul_group;
    merge_product_group(group, "MatMul", "llmc.group", 1, {}, &kGroup, drop);
  }
  remove_folded_steps(drop);
}

}  // namespace llmc::rt
