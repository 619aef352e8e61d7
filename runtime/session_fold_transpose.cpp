// Transpose(perm swapping the last two axes) read only by a MatMul's B: the MatMul reads the
// untransposed bytes instead (attention's K^T), saving a copy of the whole KV cache per layer
// and step. The folded Transpose's output is never materialised.
#include "runtime/session.h"

namespace llmc::rt {

void Session::fold_transposes_into_matmul() {
  const Links l = links();
  const auto& readers = l.readers;
  const auto& producer = l.producer;
  const auto& graph_outputs = l.graph_outputs;
  std::vector<bool> drop(steps_.size(), false);
  for (Step& st : steps_) {
    if (st.node->op_type != "MatMul" || !st.node->domain.empty() || st.inputs.size() < 2) continue;
    const int b = st.inputs[1];
    auto it = producer.find(b);
    if (b < 0 || it == producer.end() || readers[b] != 1 || graph_outputs.count(b)) continue;
    const Step& tr = steps_[it->second];
    if (tr.node->op_type != "Transpose" || !tr.node->domain.empty() || tr.inputs.empty()) continue;
    const Attribute* perm = tr.node->find_attr("perm");
    if (!perm || perm->ints.size() < 2) continue;
    const size_t r = perm->ints.size();
    bool swap_last = perm->ints[r - 1] == int64_t(r - 2) && perm->ints[r - 2] == int64_t(r - 1);
    for (size_t d = 0; d + 2 < r; ++d) swap_last = swap_last && perm->ints[d] == int64_t(d);
    if (!swap_last) continue;
    folded_.insert(tr.outputs[0]);
    rewritten_.push_back(*st.node);
    rewritten_.back().attributes.push_back(Attribute::make_int(kMatMulTransB, 1));
    st.node = &rewritten_.back();
    st.inputs[1] = tr.inputs[0];
    drop[it->second] = true;
  }
  std::vector<Step> kept;
  for (size_t i = 0; i < steps_.size(); ++i)
    if (!drop[i]) kept.push_back(std::move(steps_[i]));
  steps_ = std::move(kept);
}


}  // namespace llmc::rt
