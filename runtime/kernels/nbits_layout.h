// The packed MatMulNBits panel layout's parameters (see nbits_gemm.h), in plain data with no
// dependencies: the ISA variants (nbits_gemm_kernels.inc) include only this.
#pragma once
#include <cstdint>

namespace llmc::rt {

inline constexpr int64_t kNBitsPanel = 16;  // output columns per panel

enum class NBitsZp {
  kUniform,  // one zero point for every block (absent: 2^(bits-1)); nothing stored
  kInt,      // uint8 per block and column, 16 bytes after the scales
  kFloat,    // m = scale · zp (float32) per block and column, 64 bytes after the scales
};

// What a panel kernel needs to walk a panel (plain data: the ISA variants see only this).
struct NBitsLayout {
  int64_t bits, block_size, k_blocks, weight_bytes, block_bytes;
  int zp_mode;  // NBitsZp
  int32_t zp_uniform;
};

}  // namespace llmc::rt
