// quantize-fp16: float32 weights and activations to float16, as ONNX Runtime's
// onnxruntime.transformers.float16.convert_float_to_float16 does, without its Cast pairs.
//
// Before:  y = MatMul(RMSNorm(x), W_f32)        all values float32
// After:   y = MatMul(x16 * Cast<f16>(rstd_f32(Cast<f32>(x16))), W_f16)
//          Blocked nodes (op-block-list, node-block-list) run in float32 with Casts on their
//          float inputs/outputs; with keep-io-types the float graph inputs/outputs stay float32:
//          input -> Cast<f16> -> consumers, producer -> Cast<f32> -> output (the graph output keeps
//          its name; internal readers use the float16 value). The KV cache (past_key_values.*,
//          present.*) is decoder state, not user IO: it is float16 unless keep-kv-types=1, else
//          every decode step would convert the whole cache twice.
// Preconditions: float graph values have types the pass can infer (standard ops, value_info).
//          Nodes with subgraphs stay float32; a float value read from inside a subgraph is an
//          error (subgraphs are not converted yet).
// Math:    fp16 = round-to-nearest-even(clamp(x)); finite |x| > max-finite-val -> ±max-finite-val,
//          0 < |x| < min-positive-val -> ±min-positive-val (0, NaN, ±Inf unchanged); every clamped
//          constant is counted. Defaults 65504 / 5.96e-8 (ORT transformers: only values fp16
//          cannot hold move; onnxconverter-common uses 1e4 / 1e-7). An initializer read by float16
//          and float32 nodes is duplicated (float32 copy for the blocked ones), never cast at run time.
//          A new Cast never reads another Cast: it reads that Cast's source instead (pain #9).
// Default op-block-list: ORT's DEFAULT_OP_BLOCK_LIST, plus Softmax and the normalisations
//          (LayerNormalization, SimplifiedLayerNormalization, RMSNormalization, Skip*), plus the
//          RMSNorm decomposition Pow -> ReduceMean -> (Add) -> Sqrt -> Reciprocal: x^2 of
//          activations over 256 overflows fp16, mean/sqrt/reciprocal keep the variance in fp32;
//          the Add(mean, eps) between them stays float32 as a node wedged between blocked nodes.
//          Plus RandomNormal(Like) and the quantisation ops ONNX defines for float32 scales only
//          (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, com.microsoft DynamicQuantizeMatMul).
// Options: keep-io-types=1|0, keep-kv-types=0|1, op-block-list=Op,... ("default" expands to the list above),
//          node-block-list=name,..., min-positive-val=F, max-finite-val=F.
#pragma once
#include "passes/pass.h"

namespace llmc {

class QuantizeFp16 : public Pass {
 public:
  std::vector<OptionSpec> options() const override;
  Status check(const PassOptions& resolved) const override;
  Result<PassResult> run(Model& model, const PassOptions& options, PassContext& context) override;
};

}  // namespace llmc
