// Plan-time fold of RMSNorm written as ONNX ops (the llama2c import, Hugging Face exports):
//
//   y = weight * (x * Reciprocal(Sqrt(Add(ReduceMean(Pow(x, 2), axes=[-1], keepdims=1), eps))))
// becomes
//   one step (reported as com.microsoft::SimplifiedLayerNormalization) computing exactly what
//   the chain computes, float32 rounding included (rms_norm_onnx_chain: the double-precision
//   SimplifiedLayerNormalization kernel differs by an ulp, which an int8 model's dynamic
//   quantisation right after the norm turned into a 0.1% perplexity change on stories260K)
//
// seven kernel launches and six passes over the activation become one (decode runs 25 of these
// a token on a 12-layer model). Only float32 chains (eps is a float32 scalar, so Add, and with
// it everything before, is float32), every intermediate read by its next step alone and not a
// graph output, and a constant 1-D weight.
//
// A float16 model whose statistics stay float32 (quantize --mode fp16 blocks ReduceMean) has
//   y = w16 * (x16 * Cast<float16>(Reciprocal(Sqrt(Add(ReduceMean(Pow(Cast<float>(x16), 2)), eps)))))
// and folds the same way, the two Casts included (nine launches become one).
#include "runtime/kernels/register.h"
#include "runtime/session.h"

namespace llmc::rt {

void Session::fold_rmsnorm() {
  const Links l = links();
  auto constant = [&](int sl) { return fixed_constant(sl); };
  auto f32_scalar = [&](int sl, float& v) {
    if (!constant(sl) || constants_[sl].dtype() != DType::kF32 || constants_[sl].numel() != 1) return false;
    v = constants_[sl].data<float>()[0];
    return true;
  };
  // The one step reading `sl` (an intermediate of the chain), if it is `op`; else -1.
  auto next = [&](int sl, const char* op) { return sole_reader(l, sl, op); };
  auto other = [](const Step& st, int sl) { return st.inputs[0] == sl ? st.inputs[1] : st.inputs[0]; };
  std::vector<bool> drop(steps_.size(), false);
  for (size_t p = 0; p < steps_.size(); ++p) {
    const Step& pow = steps_[p];
    float two = 0, eps = 0;
    if (drop[p] || pow.node->op_type != "Pow" || !pow.node->domain.empty() || pow.inputs.size() != 2 ||
        pow.outputs.empty())
      continue;
    if (!f32_scalar(pow.inputs[1], two) || two != 2.0f) continue;
    const int x = pow.inputs[0];
    const long rm = next(pow.outputs[0], "ReduceMean");
    if (rm < 0) continue;
    const Node& rn = *steps_[rm].node;
    // axes = [-1] as an attribute (before opset 18) or a constant input; keepdims 1 (default).
    std::vector<int64_t> axes;
    if (const auto* a = rn.find_attr("axes")) axes = a->ints;
    else if (steps_[rm].inputs.size() > 1 && constant(steps_[rm].inputs[1]) &&
             constants_[steps_[rm].inputs[1]].dtype() == DType::kI64)
      for (int64_t i = 0; i < constants_[steps_[rm].inputs[1]].numel(); ++i)
        axes.push_back(constants_[steps_[rm].inputs[1]].data<int64_t>()[i]);
    if (axes != std::vector<int64_t>{-1} || rn.attr_int("keepdims", 1) != 1) continue;
    const long add = next(steps_[rm].outputs[0], "Add");
    if (add < 0 || !f32_scalar(other(steps_[add], steps_[rm].outputs[0]), eps)) continue;
    const long sq = next(steps_[add].outputs[0], "Sqrt");
    if (sq < 0) continue;
    const long rc = next(steps_[sq].outputs[0], "Reciprocal");
    if (rc < 0) continue;
    // The float16 form: x = Cast<float>(x16) read by Pow alone, and Cast<float16>(1/rms) * x16.
    long widen = -1, narrow = -1;
    int x_mul = x;
    if (auto pr = l.producer.find(x); pr != l.producer.end() && steps_[pr->second].node->op_type == "Cast" &&
                                      !steps_[pr->second].inputs.empty() &&
                                      steps_[pr->second].node->domain.empty() &&
                                      steps_[pr->second].node->attr_int("to", 0) == static_cast<int64_t>(DType::kF32) &&
                                      sole_reader(l, x, "Pow") == long(p)) {
      narrow = next(steps_[rc].outputs[0], "Cast");
      if (narrow >= 0 && steps_[narrow].node->attr_int("to", 0) == static_cast<int64_t>(DType::kF16)) {
        widen = pr->second;
        x_mul = steps_[widen].inputs[0];
      } else {
        narrow = -1;
      }
    }
    const DType wt = widen >= 0 ? DType::kF16 : DType::kF32;
    const int inv = steps_[narrow >= 0 ? narrow : rc].outputs[0];
    const long m1 = next(inv, "Mul");
    if (m1 < 0 || other(steps_[m1], inv) != x_mul) continue;
    const long m2 = next(steps_[m1].outputs[0], "Mul");
    if (m2 < 0) continue;
    const int w = other(steps_[m2], steps_[m1].outputs[0]);
    if (!constant(w) || constants_[w].dtype() != wt || constants_[w].rank() != 1 || constants_[w].numel() < 2)
      continue;
    Node fused;  // reported as SimplifiedLayerNormalization; computed as the chain rounds it
    fused.name = steps_[m2].node->name + "_fused_rmsnorm";
    fused.op_type = "SimplifiedLayerNormalization";
    fused.domain = "com.microsoft";
    fused.inputs = {widen >= 0 ? steps_[widen].node->inputs[0] : pow.node->inputs[0],
                    steps_[m2].node->inputs[0] == steps_[m1].node->outputs[0]
                                             ? steps_[m2].node->inputs[1]
                                             : steps_[m2].node->inputs[0]};  // names for messages only
    fused.outputs = steps_[m2].node->outputs;
    fused.attributes = {Attribute::make_int("axis", -1), Attribute::make_float("epsilon", eps)};
    static const KernelFn kChain = rms_norm_onnx_chain;
    rewrite_step(m2, fused, &kChain, {x_mul, w});
    drop[p] = drop[rm] = drop[add] = drop[sq] = drop[rc] = drop[m1] = true;
    if (widen >= 0) drop[widen] = drop[narrow] = true;
  }
  remove_folded_steps(drop);
}

}  // namespace llmc::rt
