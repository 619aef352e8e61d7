// GGML tensor types as GGUF stores them, and their dequantisation to float32, bit for bit as
// llama.cpp's reference dequantisers (ggml-quants.c dequantize_row_*) compute them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace llmc {

// The GGML type ids written in GGUF tensor infos (ggml.h enum ggml_type).
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
  kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30,
};

struct GgmlTypeInfo {
  const char* name;      // "Q4_K"
  int64_t block_size;    // elements per block (1 for F32/F16/BF16)
  int64_t block_bytes;   // bytes per block
};

// Info for the types above; nullopt for any other id (unknown or not supported here).
std::optional<GgmlTypeInfo> ggml_type_info(uint32_t type);
// The name of any GGML type id, known to ggml or not ("IQ2_XXS", "type 99"), for error messages.
std::string ggml_type_name(uint32_t type);

// Bytes that `n_elements` elements of `type` take; nullopt when n_elements is negative, not a
// multiple of the block size, or the product overflows int64.
std::optional<int64_t> ggml_row_bytes(GgmlType type, int64_t n_elements);

// Dequantises `n_elements` (a multiple of the block size) from `src` into `dst`.
void ggml_dequantize(GgmlType type, const void* src, float* dst, int64_t n_elements);

}  // namespace llmc
