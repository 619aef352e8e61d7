// Plan-time fold of the QDQ form around MatMul (quantize --mode int8-static, ONNX Runtime's
// QDQ quantizer) into one integer product, as ONNX Runtime's own QDQ optimizer does:
//
//   MatMul(DequantizeLinear(Xq, a_scale, a_zp), DequantizeLinear(W, w_scale, w_zp)) -> Y
// becomes
//   com.microsoft::MatMulIntegerToFloat(Xq, W, a_scale, w_scale, a_zp, w_zp) -> Y
//
// Y = (Xq - a_zp)(W - w_zp) · a_scale · w_scale[n]: the float MatMul of the dequantized values,
// computed exactly in int32 and scaled once (float rounding differs, not the arithmetic). Only
// when both DequantizeLinears feed just this MatMul and produce float32, the activation's scale
// and (8-bit) zero point are constant scalars, and the weight is a constant 2-D 8-bit tensor
// quantized per tensor or per output column (axis 1); the dequantized values are then never
// materialised.
#include "runtime/session.h"

namespace llmc::rt {

void Session::fold_qdq_matmul() {
  const Links l = links();
  auto constant = [&](int sl) { return fixed_constant(sl); };
  auto is_int8 = [](DType t) { return t == DType::kU8 || t == DType::kI8; };
  // The DequantizeLinear step producing `sl`, read only by one step, or -1.
  auto sole_dq = [&](int sl) -> long {
    auto it = l.producer.find(sl);
    if (it == l.producer.end() || l.readers[sl] != 1 || l.graph_outputs.count(sl)) return -1;
    const Node& n = *steps_[it->second].node;
    if (n.op_type != "DequantizeLinear" || !n.domain.empty() || n.attr_int("block_size", 0) != 0) return -1;
    // Opset 25's output_dtype may ask for float16 (or other) values; the fused op makes float32.
    const int64_t out_type = n.attr_int("output_dtype", 0);
    if (out_type != 0 && out_type != static_cast<int64_t>(DType::kF32)) return -1;
    return static_cast<long>(it->second);
  };
  std::vector<bool> drop(steps_.size(), false);
  for (size_t m = 0; m < steps_.size(); ++m) {
    Step& mm = steps_[m];
    if (mm.node->op_type != "MatMul" || !mm.node->domain.empty() || mm.inputs.size() != 2) continue;
    if (mm.node->find_attr(kMatMulTransB)) continue;
    const long da = sole_dq(mm.inputs[0]), db = sole_dq(mm.inputs[1]);
    if (da < 0 || db < 0 || da == db) continue;
    const Step& a = steps_[da];
    const Step& b = steps_[db];
    // Activation: a runtime integer tensor with constant scalar scale and zero point.
    if (a.inputs.size() < 2 || constant(a.inputs[0]) || !constant(a.inputs[1])) continue;
    const Value& as = constants_[a.inputs[1]];
    if (as.dtype() != DType::kF32 || as.numel() != 1) continue;
    // The zero point (which QDQ writers always give) is what tells an 8-bit activation apart
    // from the 16/32-bit ones DequantizeLinear also takes.
    const int azp = a.inputs.size() > 2 ? a.inputs[2] : -1;
    if (azp < 0 || !constant(azp) || constants_[azp].numel() != 1 || !is_int8(constants_[azp].dtype())) continue;
    // Weight: constant [K, N] integers, scale per tensor or per column (axis 1), constant.
    if (b.inputs.size() < 2 || !constant(b.inputs[0]) || !constant(b.inputs[1])) continue;
    const Value& w = constants_[b.inputs[0]];
    const Value& ws = constants_[b.inputs[1]];
    if (w.rank() != 2 || !is_int8(w.dtype()) || ws.dtype() != DType::kF32) continue;
    const int64_t axis = b.node->attr_int("axis", 1);
    if (ws.numel() != 1 && !(ws.rank() == 1 && ws.numel() == w.dim(1) && (axis == 1 || axis == -1))) continue;
    const int wzp = b.inputs.size() > 2 ? b.inputs[2] : -1;
    if (wzp >= 0 && (!constant(wzp) || constants_[wzp].numel() != ws.numel() || constants_[wzp].dtype() != w.dtype()))
      continue;
    Node fused;
    fused.name = mm.node->name + "_fused_qdq_matmul";
    fused.op_type = "MatMulIntegerToFloat";
    fused.domain = "com.microsoft";
    fused.outputs = mm.node->outputs;
    fused.inputs = {a.node->inputs[0], b.node->inputs[0]};  // names for messages only
    rewrite_step(m, fused, builtin_kernels().find("com.microsoft", "MatMulIntegerToFloat"),
                 {a.inputs[0], b.inputs[0], a.inputs[1], b.inputs[1], azp, wzp});
    drop[da] = drop[db] = true;
  }
  remove_folded_steps(drop);
}

}  // namespace llmc::rt
