// Plan-time fold of the grouped-query repeat in front of an attention product (Hugging Face
// Llama/Qwen2 `repeat_kv`, as torch.onnx exports it):
//
//   U = Unsqueeze(X, axes [2]);  E = Expand(U, shape_e);  R = Reshape(E, shape_r);  Y = MatMul(A, R)
// (R possibly through a Transpose of its last two axes, already folded into the MatMul) becomes
// one MatMul step on (A, X, shape_e, shape_r) carrying kMatMulKvGroups: the repeated cache is
// never written (grouped_kv_matmul.cpp checks the shapes every run and computes the chain as
// written when they are not a repeat). U and E must each be read by the next alone, R by the
// MatMul and otherwise only by Shape steps (which then compute R's shape from the chain's
// inputs), and none be a graph output; the Unsqueeze axes must be the constant [2] and the
// Reshape not allowzero. Readers of X other than the chain then see X itself, so a KV cache
// read only by such MatMuls can grow in place. The repeated value stays available as a tap
// (calibration observes every MatMul input): a run asked for it computes it from X and the
// two shapes (repeat_kv).
#include <optional>

#include "runtime/kernels/register.h"
#include "runtime/session.h"

namespace llmc::rt {

void Session::fold_grouped_kv() {
  const Links l = links();
  auto sole_producer = [&](int slot, const char* op) -> long {
    auto it = l.producer.find(slot);
    if (slot < 0 || it == l.producer.end() || l.readers[slot] != 1 || l.graph_outputs.count(slot)) return -1;
    const Step& st = steps_[it->second];
    return st.node->op_type == op && st.node->domain.empty() && !st.outputs.empty() ? long(it->second) : -1;
  };
  auto unsqueezes_axis_2 = [&](const Step& u) {
    std::vector<int64_t> axes;
    if (u.opset >= 13) {
      if (u.inputs.size() != 2 || !fixed_constant(u.inputs[1])) return false;
      const Value& a = constants_[u.inputs[1]];
      if (a.dtype() != DType::kI64) return false;
      axes.assign(a.data<int64_t>(), a.data<int64_t>() + a.numel());
    } else if (const Attribute* at = u.node->find_attr("axes")) {
      axes = at->ints;
    }
    return axes == std::vector<int64_t>{2} && !u.inputs.empty() && u.inputs[0] >= 0;
  };
  // The Shape steps reading a slot, if every reader but `except` is one; else nullopt.
  auto shape_readers = [&](int slot, size_t except) {
    std::vector<size_t> shapes;
    for (size_t i = 0; i < steps_.size(); ++i) {
      if (i == except) continue;
      for (int in : steps_[i].inputs)
        if (in == slot) {
          const Node& n = *steps_[i].node;
          if (n.op_type != "Shape" || !n.domain.empty()) return std::optional<std::vector<size_t>>();
          shapes.push_back(i);
          break;
        }
    }
    return std::optional<std::vector<size_t>>(shapes);
  };
  std::vector<bool> drop(steps_.size(), false);
  for (size_t at = 0; at < steps_.size(); ++at) {
    Step& mm = steps_[at];
    if (mm.node->op_type != "MatMul" || !mm.node->domain.empty() || mm.inputs.size() != 2) continue;
    // The Reshape's output may also be read by Shape steps (the causal mask is sliced to the
    // keys' length): they then compute the shape from the chain's inputs (repeated_kv_shape).
    const int b = mm.inputs[1];
    auto it = l.producer.find(b);
    if (b < 0 || it == l.producer.end() || l.graph_outputs.count(b) || mm.inputs[0] == b) continue;
    const auto shapes = shape_readers(b, at);
    if (!shapes) continue;
    const long r = steps_[it->second].node->op_type == "Reshape" && steps_[it->second].node->domain.empty()
                       ? long(it->second) : -1;
    if (r < 0 || steps_[r].inputs.size() != 2 || steps_[r].inputs[1] < 0) continue;
    const Attribute* allowzero = steps_[r].node->find_attr("allowzero");
    if (allowzero && allowzero->i != 0) continue;  // a 0 in the shape would then mean 0
    const long e = sole_producer(steps_[r].inputs[0], "Expand");
    if (e < 0 || steps_[e].inputs.size() != 2 || steps_[e].inputs[1] < 0) continue;
    const long u = sole_producer(steps_[e].inputs[0], "Unsqueeze");
    if (u < 0 || !unsqueezes_axis_2(steps_[u]) || drop[r] || drop[e] || drop[u]) continue;
    Node fused = *mm.node;
    fused.attributes.push_back(Attribute::make_int(kMatMulKvGroups, 1));
    fused.inputs = {mm.node->inputs[0], steps_[u].node->inputs[0], steps_[e].node->inputs[1], steps_[r].node->inputs[1]};
    rewritten_.push_back(std::move(fused));
    mm.node = &rewritten_.back();
    mm.inputs = {mm.inputs[0], steps_[u].inputs[0], steps_[e].inputs[1], steps_[r].inputs[1]};
    drop[r] = drop[e] = drop[u] = true;
    if (!steps_[r].outputs.empty() && steps_[r].outputs[0] >= 0)
      repeated_kv_[steps_[r].outputs[0]] = {steps_[u].inputs[0], steps_[e].inputs[1], steps_[r].inputs[1]};
    for (size_t sh : *shapes) {
      Node shape = *steps_[sh].node;
      shape.op_type = "RepeatedKvShape";
      shape.domain = kRuntimeDomain;
      shape.inputs = {steps_[u].node->inputs[0], steps_[e].node->inputs[1], steps_[r].node->inputs[1]};
      static const KernelFn kShape = repeated_kv_shape;
      rewritten_.push_back(std::move(shape));
      steps_[sh].node = &rewritten_.back();
      steps_[sh].kernel = &kShape;
      steps_[sh].inputs = {steps_[u].inputs[0], steps_[e].inputs[1], steps_[r].inputs[1]};
    }
  }
  remove_folded_steps(drop);
  for (const auto& [slot, chain] : repeated_kv_) folded_.erase(slot);  // a tap computes it (Session::run)
}

}  // namespace llmc::rt
