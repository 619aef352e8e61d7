// quantize-int8-static: MatMul/Gemm with a constant 2-D float32 weight to the QDQ form ONNX
// Runtime fuses into integer kernels, with activation scales calibrated ahead of time.
//
// Before:  Y = MatMul(X, W_f32)
// After:   Xq = QuantizeLinear(X, sx, zx)                         (one per distinct X)
//          Y  = MatMul(DequantizeLinear(Xq, sx, zx),              (one DQ per consuming node)
//                      DequantizeLinear(Wq_i8, ws[N], 0, axis=1))  (one DQ per consuming node)
//          Gemm: transB=1 weights stay [N, K] with axis=0; a 1-D float bias becomes
//          DequantizeLinear(Bq_i32, sx * ws[N], axis=0) (ORT's bias rule). Outputs stay float.
// Preconditions: default-domain opset >= 13 (per-channel Q/DQ `axis`); calibration samples in
//          PassContext::calibration ("int8-static needs --calib DATA" otherwise).
// Math:    activation range from an observer (minmax | percentile | entropy | mse) over the
//          calibration samples, then ORT's compute_scale_zp: uint8 asymmetric (default), or
//          int8 symmetric (zx = 0). Weights: symmetric int8, scale = absmax / 127 per output
//          channel (or per tensor). No DQ output has two consumers.
// Options: method=minmax|percentile|entropy|mse, percentile=99.99, activation-type=uint8|int8,
//          per-tensor (weights), exclude=NAME|REGEX,..., op-types=MatMul,Gemm (default MatMul).
#pragma once
#include "passes/pass.h"

namespace llmc {

class QuantizeInt8Static : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  Status check(const PassOptions& resolved) const override;
  bool needs_calibration() const override { return true; }
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

}  // namespace llmc
