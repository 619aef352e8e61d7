// Plain views of NMSparseMatMul's packed panels (layout: nm_sparse.h) and the AVX-512 loops over
// them. nm_sparse_avx512.cpp, compiled with AVX-512 enabled, includes only this header: an inline
// function of another header compiled there could become the one copy the linker keeps for
// every caller, and crash CPUs without AVX-512 (qgemm's variants keep to plain data alike).
#pragma once
#include <cstdint>

namespace llmc::rt::nm_panels {

inline constexpr int64_t kFloatPanel = 32;      // columns of a float32 / float16 panel
inline constexpr int64_t kInt8Panel = 64;       // columns of an int8 panel
inline constexpr int64_t kInt8BlockBytes = 320;  // four kept rows x 64 columns, then 64 position bytes

// Bytes of one group of four rows in a float panel: n slots of 32 values, then n pairs of words.
constexpr int64_t float_block_bytes(int n, bool half) { return n * (kFloatPanel * (half ? 2 : 4) + 8); }

struct Panels {
  const uint8_t* data = nullptr;
  int64_t panel_bytes = 0, K = 0, N = 0;
  int64_t blocks = 0;  // int8: blocks of four kept rows per panel
  int n = 2;
  bool half = false;                // float16 values (float panels)
  const int32_t* colsum = nullptr;  // int8: each column's weight sum
};

// One row's operands: x (float) or xq (uint8, 16 readable bytes past the row's window) and,
// for int8, the activation zero point and scale and the weight scales; y the results.
struct Row {
  const float* x = nullptr;
  const uint8_t* xq = nullptr;
  int32_t a_zp = 0;
  float a_scale = 0;
  const float* scales = nullptr;
  bool per_col = false;
  float* y = nullptr;
};

void gemv_float(const Panels& b, const Row& row, int64_t p0, int64_t p1);
// C[M, N] = A[M, K] · B (rows K and N apart); each row as gemv_float makes it.
void gemm_float(const Panels& b, const float* A, int64_t M, float* C, int64_t p0, int64_t p1);
void gemv_int8(const Panels& b, const Row& row, int64_t p0, int64_t p1);
// M rows: activations row.xq + m·lda, results row.y + m·ldc; each row as gemv_int8 makes it.
void gemm_int8(const Panels& b, const Row& row, int64_t M, int64_t lda, int64_t ldc, int64_t p0, int64_t p1);

}  // namespace llmc::rt::nm_panels
