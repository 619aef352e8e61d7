// quantize-int8-dynamic: weights of MatMul/Gemm with a constant 2-D weight to int8 per output
// channel; activations quantised at run time per tensor.
//
// Before:  Y = MatMul(X, W_f32)
// After:   Xq, Xs, Xzp = DynamicQuantizeLinear(X)            (one per distinct X)
//          Y = Mul(Cast<float>(MatMulInteger(Xq, Wq, Xzp[, Wzp])), Mul(Xs, Ws))
//          (the form ONNX Runtime's quantize_dynamic writes), or with format=contrib:
//          Y = com.microsoft::DynamicQuantizeMatMul(X, Wq, Ws[, Wzp])
//          Embeddings: Y = Gather(E, ids) -> Cast<float>(Gather(Eq, ids)) * Gather(Es, ids)[..., None]
// Preconditions: default-domain opset >= 11. Gemm needs transA = 0 and alpha = 1 (bias kept
//          as an Add). Weights with NaN/Inf are an error, not a silently broken artifact.
// Math:    symmetric int8 Wq = round(W / s), s = absmax / 127 per column (or per tensor);
//          asymmetric uint8 on request (weight-type=uint8). X: uint8, range incl. 0, per tensor.
// Options: per-tensor, weight-type=int8|uint8, exclude=NAME|REGEX,..., op-types=MatMul,Gemm,Gather (default MatMul,Gather),
//          format=qoperator|contrib.
#pragma once
#include "passes/pass.h"

namespace llmc {

class QuantizeInt8Dynamic : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

}  // namespace llmc
