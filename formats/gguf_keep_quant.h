// GGUF blocks kept as com.microsoft MatMulNBits (block_size 32) instead of float32 MatMul weights.
//   Q4_0 (y = d·(q−8)):  bits 4, scale d, no zero_points (MatMulNBits' default 8)       exact
//   Q8_0 (y = d·q):      bits 8, q+128 as uint8, scale d, no zero_points (default 128)  exact
//   Q4_1 (y = d·q + m):  bits 4, scale d, float zero_points zp = −m/d ([N, k_blocks], T1), so
//                        (q − zp)·d = d·q + m up to float rounding (a few ulp of |d·q| + |m|);
//                        a block with d = 0 (all m) becomes q = 1, scale m, zp 0: exact.
//                        (ONNX Runtime 1.31 runs float zero points on a slower, unprepacked path.)
// A tensor with a non-finite scale or min, or of any other GGML type, is not kept (it stays the
// float32 weight the import dequantised). Nibbles are repacked from GGML's order (element j low
// and j+16 high in qs[j]) to MatMulNBits' little-nibble-first order (2i low, 2i+1 high).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "formats/gguf_quants.h"
#include "formats/gguf_reader.h"
#include "ir/graph.h"

namespace llmc {

// MatMulNBits' constant inputs and attributes for one weight W [N, K] used as y = x Wᵀ.
struct MatMulNBitsWeight {
  int64_t k = 0, n = 0;
  int bits = 0;
  int block_size = 32;
  Tensor b;                           // uint8 [N, k_blocks, block_size·bits/8]
  Tensor scales;                      // float [N, k_blocks]
  std::optional<Tensor> zero_points;  // float [N, k_blocks] (Q4_1 only)
};

bool ggml_type_keepable(GgmlType type);

// Packs `data`, the GGML tensor of GGML shape {k, n} (n rows of k elements) and type `type`, with
// initializers named `name` + "_Q4" / "_Q8", "_scales", "_zero_points" (as onnxruntime's
// matmul_nbits_quantizer names them). nullopt when the type is not keepable or a block is not
// representable (non-finite scale or min); an error when k is not a multiple of 32 or sizes
// overflow.
Result<std::optional<MatMulNBitsWeight>> pack_matmul_nbits(GgmlType type, const uint8_t* data, int64_t k,
                                                           int64_t n, const std::string& name);

// The dequantised weight [N, K] of `w`, as MatMulNBits computes it ((q − zp)·scale, in float):
// the reference the tests compare against ggml_dequantize.
std::vector<float> matmul_nbits_dequantize(const MatMulNBitsWeight& w);

// What keep_gguf_quant did, by GGML type name.
struct KeepQuantReport {
  std::map<std::string, int> kept;         // "Q4_1" -> tensors now MatMulNBits
  std::map<std::string, int> dequantised;  // "Q6_K" -> tensors left as float32 MatMul weights
  // "kept 210 Q4_1, 1 Q8_0 tensors as MatMulNBits, 0 dequantised"
  std::string summary() const;
};

// Rewrites each MatMul of `model` whose B is the float32 initializer `first` of a pair in
// `weights` (HF name -> GGUF tensor name, B = that GGUF tensor transposed) into a MatMulNBits
// node of the same name and output, when the GGUF tensor's blocks can be kept; imports opset
// com.microsoft v1 when any node was rewritten. The float32 initializers it replaces are dropped.
Result<KeepQuantReport> keep_gguf_quant(const GgufFile& gguf,
                                        const std::vector<std::pair<std::string, std::string>>& weights,
                                        Model& model);

}  // namespace llmc
