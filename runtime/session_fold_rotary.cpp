// Plan-time fold of a rotary embedding written as ONNX ops (the llama2c import's interleaved
// pairs, applied to Q and K in every layer):
//
//   e, o = Split(x, split=[k, k], axis=-1)
//   y = Concat(Sub(Mul(e, cos), Mul(o, sin)), Add(Mul(e, sin), Mul(o, cos)), axis=-1)
// becomes
//   one step (reported as RotaryEmbedding) computing exactly what the chain computes
//   (rotary_pairs_chain: same products, same roundings, broadcasting included).
//
// Eight kernel launches become one: a 12-layer model decodes 24 of these chains a token, and
// at one row each the launches cost more than the arithmetic. Mul and Add operands may come in
// either order (both are commutative, bit for bit); Sub's may not. Every intermediate must be
// read by its next step alone and not be a graph output, and cos/sin must be the same two
// values in both halves.
#include "runtime/kernels/register.h"
#include "runtime/session.h"

namespace llmc::rt {

void Session::fold_rotary() {
  const Links l = links();
  auto is_op = [&](size_t i, const char* op) {
    return steps_[i].node->op_type == op && steps_[i].node->domain.empty() && steps_[i].inputs.size() == 2 &&
           !steps_[i].outputs.empty() && steps_[i].outputs[0] >= 0;  // a hostile Mul may have no output
  };
  // The two steps reading `slot` (not a graph output), both default-domain Muls; else false.
  auto two_muls = [&](int slot, long out[2]) {
    if (slot < 0 || l.readers[slot] != 2 || l.graph_outputs.count(slot)) return false;
    int found = 0;
    for (size_t i = 0; i < steps_.size() && found < 2; ++i)
      for (int in : steps_[i].inputs)
        if (in == slot) {
          if (!is_op(i, "Mul") || steps_[i].inputs[0] == steps_[i].inputs[1]) return false;
          out[found++] = long(i);
          break;
        }
    return found == 2;
  };
  auto other = [](const Step& st, int sl) { return st.inputs[0] == sl ? st.inputs[1] : st.inputs[0]; };
  // Equal halves [k, k] given as a constant input (opset >= 13) or an attribute (before 13).
  auto half_split = [&](const Step& sp, int64_t& k) {
    std::vector<int64_t> sizes;
    if (sp.opset < 13) {
      if (const auto* a = sp.node->find_attr("split")) sizes = a->ints;
    } else if (sp.inputs.size() == 2 && fixed_constant(sp.inputs[1]) && constants_[sp.inputs[1]].dtype() == DType::kI64) {
      const Value& v = constants_[sp.inputs[1]];
      sizes.assign(v.data<int64_t>(), v.data<int64_t>() + v.numel());
    }
    if (sizes.size() != 2 || sizes[0] != sizes[1] || sizes[0] <= 0) return false;
    k = sizes[0];
    return true;
  };
  std::vector<bool> drop(steps_.size(), false);
  for (size_t p = 0; p < steps_.size(); ++p) {
    const Step& sp = steps_[p];
    int64_t k = 0;
    if (drop[p] || sp.node->op_type != "Split" || !sp.node->domain.empty() || sp.outputs.size() != 2 ||
        sp.inputs.empty() || sp.inputs[0] < 0)
      continue;
    if (sp.node->attr_int("axis", 0) != -1 || !half_split(sp, k)) continue;
    const int e = sp.outputs[0], o = sp.outputs[1];
    long em[2], om[2];
    if (!two_muls(e, em) || !two_muls(o, om)) continue;
    // Each product goes on to a Sub or an Add, alone.
    auto consumer = [&](long m, long& at) {
      const int out = steps_[m].outputs[0];
      at = sole_reader(l, out, "Sub");
      if (at < 0) at = sole_reader(l, out, "Add");
      return at >= 0 && is_op(size_t(at), steps_[at].node->op_type.c_str());
    };
    long ec[2], oc[2];
    if (!consumer(em[0], ec[0]) || !consumer(em[1], ec[1]) || !consumer(om[0], oc[0]) || !consumer(om[1], oc[1])) continue;
    // Pair them: Sub(e * cos, o * sin) and Add(e * sin, o * cos), in either Mul order.
    long sub = -1, add = -1, e_cos = -1, e_sin = -1, o_cos = -1, o_sin = -1;
    for (int i = 0; i < 2; ++i) {
      const bool e_sub = steps_[ec[i]].node->op_type == "Sub";
      (e_sub ? e_cos : e_sin) = em[i];
      (e_sub ? sub : add) = ec[i];
      const bool o_sub = steps_[oc[i]].node->op_type == "Sub";
      (o_sub ? o_sin : o_cos) = om[i];
    }
    if (sub < 0 || add < 0 || e_cos < 0 || e_sin < 0 || o_cos < 0 || o_sin < 0) continue;
    const Step& sb = steps_[sub];
    const Step& ad = steps_[add];
    if (sb.inputs[0] != steps_[e_cos].outputs[0] || sb.inputs[1] != steps_[o_sin].outputs[0]) continue;
    if (ad.inputs.size() != 2 || other(ad, steps_[e_sin].outputs[0]) != steps_[o_cos].outputs[0]) continue;
    const int cos = other(steps_[e_cos], e), sin = other(steps_[o_sin], o);
    if (other(steps_[o_cos], o) != cos || other(steps_[e_sin], e) != sin || cos == e || cos == o || sin == e || sin == o)
      continue;
    const long cat = sole_reader(l, sb.outputs[0], "Concat");
    if (cat < 0 || sole_reader(l, ad.outputs[0], "Concat") != cat) continue;
    const Step& ct = steps_[cat];
    if (ct.inputs.size() != 2 || ct.inputs[0] != sb.outputs[0] || ct.inputs[1] != ad.outputs[0] ||
        ct.node->attr_int("axis", 0) != -1)
      continue;
    Node fused;  // reported as RotaryEmbedding; computed as the chain rounds it
    fused.name = ct.node->name + "_fused_rotary";
    fused.op_type = "RotaryEmbedding";
    fused.domain = "com.microsoft";
    fused.inputs = {sp.node->inputs[0], steps_[e_cos].node->inputs[steps_[e_cos].inputs[0] == e ? 1 : 0],
                    steps_[o_sin].node->inputs[steps_[o_sin].inputs[0] == o ? 1 : 0]};  // names for messages
    fused.outputs = ct.node->outputs;
    fused.attributes = {Attribute::make_int("half", k)};
    static const KernelFn kChain = rotary_pairs_chain;
    rewrite_step(cat, fused, &kChain, {sp.inputs[0], cos, sin});
    for (long i : {long(p), em[0], em[1], om[0], om[1], sub, add}) drop[i] = true;
  }
  remove_folded_steps(drop);
}

}  // namespace llmc::rt
