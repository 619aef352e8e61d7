// The packed form of an n:4-sparse matrix (n = 1 or 2), as our own op com.llmcompress
// NMSparseMatMul stores its weight (docs/nm_sparse_format.md). B is MatMul's [K, N] weight
// (y = x·B); along K, every group of four rows 4g..4g+3 holds at most n nonzeros in each column.
//
//   values  [K/4·n, N]       B's dtype (float32, float16 or int8). Row g·n + s holds, for each
//                            column, the s-th kept weight of group g (in ascending k); a group
//                            with fewer than n nonzeros is padded with zeros.
//   indices [K/4·n, ⌈N/4⌉]   uint8: each kept value's position 0..3 inside its group, two bits
//                            per column, column c at byte c/4, bits 2·(c mod 4) and up.
//
// Padded slots take the lowest positions not kept, so the positions of one group and column
// are distinct and ascending: the form of a given B is unique. The IR holds only the codec;
// the runtime repacks both tensors into its kernels' panels.
#pragma once
#include <cstdint>
#include <string>

#include "ir/status.h"
#include "ir/tensor.h"

namespace llmc {

inline constexpr const char* kLlmcDomain = "com.llmcompress";
inline constexpr const char* kNMSparseMatMul = "NMSparseMatMul";
inline constexpr int kNMGroup = 4;  // M of n:M: two-bit positions address four rows

// Dtypes the packed form holds.
bool nm_sparse_dtype(DType t);
// Element at (k, n) of row-major `data` of `t` is zero (float -0 included).
bool nm_is_zero(const uint8_t* data, DType t, int64_t index);

// OK when every group of four rows of B [K, N] has at most n nonzeros per column; otherwise the
// first group that has more, named. K must be a multiple of 4.
Status check_nm_sparse(const Tensor& b, int n);

struct NMSparseTensors {
  Tensor values, indices;
};
// Packs B (2-D, a packed-form dtype, n:4-sparse: check_nm_sparse) into the two tensors, named
// `<base>_nm_values` and `<base>_nm_indices`.
Result<NMSparseTensors> pack_nm_sparse(const Tensor& b, int n, const std::string& base);

// Shapes of the packed form of a [K, N] weight; an error when they do not fit (K not a
// multiple of 4, n outside 1..2, sizes that overflow).
struct NMSparseShape {
  int64_t K = 0, N = 0, rows = 0, index_cols = 0;  // rows = K/4·n, index_cols = ⌈N/4⌉
  int n = 0;
};
Result<NMSparseShape> nm_sparse_shape(int64_t K, int64_t N, int n);

// Position (0..3) of kept slot `row` in column `col` from the indices tensor.
inline int nm_index(const uint8_t* indices, int64_t index_cols, int64_t row, int64_t col) {
  return (indices[row * index_cols + col / 4] >> (2 * (col % 4))) & 3;
}

}  // namespace llmc
