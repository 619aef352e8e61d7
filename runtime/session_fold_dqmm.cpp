// The dynamic int8 form quantize_dynamic writes,
//   Xq, Xs, Xzp = DynamicQuantizeLinear(X);  Y = Mul(Cast<float>(MatMulInteger(Xq, Wq, Xzp[, Wzp])), Mul(Xs, Ws))
// runs as one com.microsoft::DynamicQuantizeMatMul(X, Wq, Ws[, Wzp]) step: one int8 kernel
// instead of five, no int32 and float intermediates. Only where every intermediate has no
// other reader and the weights are constants.
#include "runtime/kernels/register.h"
#include "runtime/session.h"

namespace llmc::rt {

void Session::fold_dynamic_quant_matmul() {
  Links l = links();  // readers are kept up to date as steps are rewired below
  auto& readers = l.readers;
  const auto& producer = l.producer;
  const auto& graph_outputs = l.graph_outputs;
  // Any initializer (the fused step reads these slots at run time, so a fed one is still right).
  auto is_const = [&](int sl) { return sl >= 0 && !constants_[sl].empty(); };
  auto single_reader_step = [&](int sl, const char* op) { return sole_reader(l, sl, op); };
  std::vector<bool> drop(steps_.size(), false);
  for (size_t m = 0; m < steps_.size(); ++m) {
    const Step& mm = steps_[m];
    // Arity is checked when a kernel runs, not here: a hostile graph's nodes may have any number
    // of inputs and outputs, so every index below is checked first.
    if (drop[m] || mm.node->op_type != "MatMulInteger" || !mm.node->domain.empty() || mm.inputs.size() < 3 ||
        mm.outputs.empty() || mm.outputs[0] < 0)
      continue;
    auto dq = producer.find(mm.inputs[0]);
    if (dq == producer.end() || steps_[dq->second].node->op_type != "DynamicQuantizeLinear") continue;
    const Step& d = steps_[dq->second];
    if (d.outputs.size() != 3 || mm.inputs[2] != d.outputs[2] || !is_const(mm.inputs[1])) continue;
    if (mm.inputs.size() > 3 && mm.inputs[3] >= 0 && !is_const(mm.inputs[3])) continue;
    const long c = single_reader_step(mm.outputs[0], "Cast");
    if (c < 0 || steps_[c].outputs.empty() || steps_[c].outputs[0] < 0 ||
        steps_[c].node->attr_int("to", 0) != static_cast<int64_t>(DType::kF32))
      continue;
    const long f = single_reader_step(steps_[c].outputs[0], "Mul");
    if (f < 0 || steps_[f].inputs.size() != 2) continue;
    const Step& fin = steps_[f];
    const int scale = fin.inputs[0] == steps_[c].outputs[0] ? fin.inputs[1] : fin.inputs[0];
    auto sp = producer.find(scale);
    if (sp == producer.end() || steps_[sp->second].node->op_type != "Mul" || steps_[sp->second].inputs.size() != 2 ||
        steps_[sp->second].inputs[0] < 0 || steps_[sp->second].inputs[1] < 0)
      continue;
    const Step& sm = steps_[sp->second];
    int ws = -1;
    if (sm.inputs[0] == d.outputs[1] && is_const(sm.inputs[1])) ws = sm.inputs[1];
    if (sm.inputs[1] == d.outputs[1] && is_const(sm.inputs[0])) ws = sm.inputs[0];
    if (ws < 0 || constants_[ws].dtype() != DType::kF32) continue;
    // Rewrite the final Mul into the fused op; the MatMulInteger and Cast go away.
    Node fused;
    fused.name = fin.node->name + "_fused_dynamic_quant_matmul";
    fused.op_type = "DynamicQuantizeMatMul";
    fused.domain = "com.microsoft";
    fused.outputs = fin.node->outputs;
    fused.inputs = {d.node->inputs[0], mm.node->inputs[1], ""};  // names for messages only
    std::vector<int> ins{d.inputs[0], mm.inputs[1], ws};
    if (mm.inputs.size() > 3) ins.push_back(mm.inputs[3]);
    for (int in : steps_[f].inputs)
      if (in >= 0) --readers[in];
    for (int in : ins) ++readers[in];
    rewrite_step(f, fused, builtin_kernels().find("com.microsoft", "DynamicQuantizeMatMul"), ins);
    drop[m] = drop[c] = true;
    for (int in : mm.inputs)
      if (in >= 0) --readers[in];
    --readers[mm.outputs[0]];
    if (readers[scale] == 0) drop[sp->second] = true, readers[sm.inputs[0]]--, readers[sm.inputs[1]]--;
  }
  // A DynamicQuantizeLinear whose outputs nobody reads any more goes too.
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& st = steps_[i];
    if (drop[i] || st.node->op_type != "DynamicQuantizeLinear") continue;
    bool used = false;
    for (int o : st.outputs) used = used || (o >= 0 && (readers[o] > 0 || graph_outputs.count(o)));
    if (!used) drop[i] = true;
  }
  remove_folded_steps(drop);
}

}  // namespace llmc::rt
