// pack-nm-sparse: stores n:4-sparse weights packed (kept values + two-bit positions) as our
// own op com.llmcompress NMSparseMatMul, which llmcompress's runtime decodes faster than the
// dense product. Only this runtime runs the result (ONNX Runtime does not know the op): it is
// an opt-in last step; the default artifact of the pruning passes stays plain dense ONNX.
//
// Before:  Y = MatMul(X, W)                               W float32/float16 [K, N], n:4-sparse along K
//          Y = Mul(Cast(MatMulInteger(DQL(X).q, Wq, DQL(X).zp)), Mul(DQL(X).scale, s))   (int8 dynamic)
//          Y = com.microsoft.DynamicQuantizeMatMul(X, Wq, s)                             (int8 dynamic)
// After:   Y = NMSparseMatMul(X, values, indices[, s]) {n}   (format: ir/nm_sparse.h,
//          docs/nm_sparse_format.md); int8 results equal the dense graph's bit for bit.
// Preconditions: a pruning pass made the weights n:4 (prune-* pattern=2:4 or 1:4) and any
//          quantisation ran before (int8 symmetric, no weight zero point: zeros stay 0).
//          Weights that are not n:4-sparse, Gemm, and other forms stay as they are, each with
//          the reason in the report.
// Options: pattern=auto|2:4|1:4 (auto: 1:4 where a weight is 1:4-sparse, else 2:4).
#pragma once
#include "passes/pass.h"

namespace llmc {

class PackNMSparse : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

}  // namespace llmc
