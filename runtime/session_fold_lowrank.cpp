// Plan-time fold of low-rank pairs: T = MatMul(X, A), Y = MatMul(T, B) with constant 2-D
// float32 A and B and T read by nothing else (what the factorize-* passes write for one layer)
// become one step, and the pairs of one X (a layer's Q, K and V, or gate and up) one step
// together (lowrank_matmul.cpp). Decode then meets the threads twice per group instead of
// twice per pair, and T never becomes a tensor of the plan (on 12 layers of the 110M model:
// 132 weight steps a token become 48, as many as the dense model's). Outputs are bit-identical
// to the unfused steps. Runs before the float MatMul group fold, which would take the A
// products of one X first.
#include <algorithm>
#include <map>
#include <set>

#include "runtime/kernels/register.h"
#include "runtime/session.h"

namespace llmc::rt {

void Session::fold_lowrank_pairs() {
  const Links l = links();
  auto constant_f32_2d = [&](int slot) {
    if (!fixed_constant(slot)) return false;
    const Value& w = constants_[slot];
    return w.rank() == 2 && w.dtype() == DType::kF32;
  };
  auto plain_matmul = [&](const Step& st) {
    return st.node->op_type == "MatMul" && st.node->domain.empty() && !st.node->find_attr(kMatMulTransB) &&
           st.inputs.size() == 2 && st.outputs.size() == 1 && st.outputs[0] >= 0 && st.inputs[0] >= 0 &&
           constant_f32_2d(st.inputs[1]);
  };
  // X slot -> (A step, B step) pairs, in plan order.
  std::map<int, std::vector<std::pair<size_t, size_t>>> groups;
  std::set<size_t> paired;  // a chain of three products pairs its first two only
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (paired.count(i) || !plain_matmul(steps_[i])) continue;
    const long b = sole_reader(l, steps_[i].outputs[0], "MatMul");
    if (b < 0 || !plain_matmul(steps_[b]) || steps_[b].inputs[0] != steps_[i].outputs[0]) continue;
    if (constants_[steps_[b].inputs[1]].dim(0) != constants_[steps_[i].inputs[1]].dim(1)) continue;
    groups[steps_[i].inputs[0]].push_back({i, size_t(b)});
    paired.insert(i);
    paired.insert(size_t(b));
  }
  std::vector<bool> drop(steps_.size(), false);
  for (const auto& [x, pairs] : groups) {
    Node fused;
    fused.name = steps_[pairs[0].first].node->name + "_pair";
    fused.op_type = "MatMul";  // profiled as MatMul; its own domain keeps padded inputs away
    fused.domain = "llmc.lowrank";
    fused.inputs = {steps_[pairs[0].first].node->inputs[0]};
    std::vector<int> ins{x}, outs;
    std::vector<size_t> members;
    for (const auto& [a, b] : pairs) {
      ins.push_back(steps_[a].inputs[1]);
      ins.push_back(steps_[b].inputs[1]);
      fused.inputs.push_back(steps_[a].node->inputs[1]);
      fused.inputs.push_back(steps_[b].node->inputs[1]);
      outs.push_back(steps_[b].outputs[0]);
      fused.outputs.push_back(steps_[b].node->outputs[0]);
      members.push_back(a);
      members.push_back(b);
    }
    // The intermediates are read by nothing else now: never produced.
    for (const auto& [a, b] : pairs) folded_.insert(steps_[a].outputs[0]);
    std::sort(members.begin(), members.end());  // the group runs where its first A ran
    static const KernelFn kGroup = lowrank_matmul_group;
    merge_steps(members, std::move(fused), &kGroup, std::move(ins), std::move(outs), drop);
  }
  remove_folded_steps(drop);
}

}  // namespace llmc::rt
