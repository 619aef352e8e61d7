// Plan-time grouping of MatMulNBits (block-wise int4/int8 weights) that read the same
// activation: a Llama layer's Q, K and V projections, and the MLP's gate and up. They run as
// one step (matmul_nbits_group): in int8 mode the activation is quantised once instead of once
// per product, and decode runs every product's panels in one parallel loop, so the threads meet
// once instead of once per product. Outputs are bit-identical to the ungrouped steps (each row
// and panel is computed by the same code either way). Only products whose weights, scales, zero
// points and bias are initializers no feed can override, with no g_idx, whose N attribute
// matches their weight, and with equal K, bits, block_size and accuracy_level, group; the group
// runs where its first member ran, which every member's inputs already reach.
#include <map>
#include <tuple>

#include "runtime/kernels/register.h"
#include "runtime/session.h"

namespace llmc::rt {

void Session::fold_nbits_groups() {
  auto member = [&](const Step& st) {
    if (st.node->op_type != "MatMulNBits" || st.node->domain != "com.microsoft") return false;
    if (st.inputs.size() < 3 || st.inputs.size() > 6 || st.outputs.size() != 1 || st.outputs[0] < 0) return false;
    if (st.inputs[0] < 0 || st.inputs[1] < 0 || st.inputs[2] < 0) return false;
    if (st.inputs.size() > 4 && st.inputs[4] >= 0) return false;  // g_idx: the node's own error
    for (size_t i = 1; i < st.inputs.size(); ++i)
      if (st.inputs[i] >= 0 && !fixed_constant(st.inputs[i])) return false;
    const Value& w = constants_[st.inputs[1]];
    const Attribute* n = st.node->find_attr("N");
    return w.rank() == 3 && n && n->kind == AttrKind::kInt && w.shape()[0] == n->i;
  };
  // (activation, K, bits, block_size, accuracy_level) -> member steps, in order.
  using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t>;
  std::map<Key, std::vector<size_t>> groups;
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (!member(steps_[i])) continue;
    const Node& n = *steps_[i].node;
    groups[{steps_[i].inputs[0], n.attr_int("K", 0), n.attr_int("bits", 4), n.attr_int("block_size", 0),
            n.attr_int("accuracy_level", 0)}]
        .push_back(i);
  }
  std::vector<bool> drop(steps_.size(), false);
  for (const auto& [key, group] : groups) {
    if (group.size() < 2) continue;
    std::vector<int64_t> N;
    for (size_t m : group) N.push_back(steps_[m].node->attr_int("N", 0));
    std::vector<Attribute> attrs = {Attribute::make_int("K", std::get<1>(key)), Attribute::make_int("bits", std::get<2>(key)),
                                    Attribute::make_int("block_size", std::get<3>(key)),
                                    Attribute::make_int("accuracy_level", std::get<4>(key)),
                                    Attribute::make_ints("N", std::move(N))};
    static const KernelFn kGroup = matmul_nbits_group;  // profiled as MatMulNBits
    merge_product_group(group, "MatMulNBits", "com.microsoft", 5, std::move(attrs), &kGroup, drop);
  }
  remove_folded_steps(drop);
}

}  // namespace llmc::rt
