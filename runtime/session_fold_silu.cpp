// Plan-time fold of SiLU written as ONNX ops (a Llama MLP's gate, as the llama2c import and
// Hugging Face exports write it):
//
//   y = Mul(x, Sigmoid(x))      (operands in either order)
// becomes one step (reported as Swish) with the bits of the two kernels (silu_chain). The
// Sigmoid's output must be read by that Mul alone and not be a graph output.
#include "runtime/kernels/register.h"
#include "runtime/session.h"

namespace llmc::rt {

void Session::fold_silu() {
  const Links l = links();
  std::vector<bool> drop(steps_.size(), false);
  for (size_t p = 0; p < steps_.size(); ++p) {
    const Step& sg = steps_[p];
    if (sg.node->op_type != "Sigmoid" || !sg.node->domain.empty() || sg.inputs.size() != 1 || sg.outputs.size() != 1)
      continue;
    const int x = sg.inputs[0], s = sg.outputs[0];
    const long m = sole_reader(l, s, "Mul");
    if (x < 0 || m < 0 || steps_[m].inputs.size() != 2) continue;
    const Step& mul = steps_[m];
    if (!((mul.inputs[0] == x && mul.inputs[1] == s) || (mul.inputs[0] == s && mul.inputs[1] == x))) continue;
    Node fused;  // reported as Swish (alpha 1); computed as the two kernels round it
    fused.name = mul.node->name + "_fused_silu";
    fused.op_type = "Swish";
    fused.inputs = {sg.node->inputs[0]};
    fused.outputs = mul.node->outputs;
    static const KernelFn kChain = silu_chain;
    rewrite_step(m, fused, &kChain, {x});
    drop[p] = true;
  }
  remove_folded_steps(drop);
}

}  // namespace llmc::rt
