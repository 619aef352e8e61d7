#include "ir/nm_sparse.h"

#include <cstring>

#include "ir/checked_math.h"

namespace llmc {

bool nm_sparse_dtype(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kI8; }

bool nm_is_zero(const uint8_t* data, DType t, int64_t index) {
  switch (t) {
    case DType::kF32: {
      uint32_t bits;
      std::memcpy(&bits, data + 4 * index, 4);
      return (bits & 0x7fffffffu) == 0;
    }
    case DType::kF16: {
      uint16_t bits;
      std::memcpy(&bits, data + 2 * index, 2);
      return (bits & 0x7fffu) == 0;
    }
    default: return data[index] == 0;
  }
}

Result<NMSparseShape> nm_sparse_shape(int64_t K, int64_t N, int n) {
  if (n < 1 || n > 2) return unsupported("the packed n:4 form holds 1:4 and 2:4 patterns, not ", n, ":4");
  if (K <= 0 || N <= 0 || K % kNMGroup != 0)
    return invalid_input("a packed n:4 weight needs K a positive multiple of 4 and N > 0, got [", K, ", ", N, "]");
  NMSparseShape s;
  s.K = K;
  s.N = N;
  s.n = n;
  s.rows = K / kNMGroup * n;
  s.index_cols = (N + 3) / 4;
  if (!checked_mul(s.rows, N) || !checked_mul(s.rows, s.index_cols))
    return invalid_input("packed n:4 weight of [", K, ", ", N, "] is too large");
  return s;
}

Status check_nm_sparse(const Tensor& b, int n) {
  if (b.dims().size() != 2 || !nm_sparse_dtype(b.dtype()))
    return unsupported("packed n:4 form: '", b.name(), "' is ", dtype_name(b.dtype()), " ", shape_str(b.dims()),
                       " (2-D float32, float16 or int8 only)");
  LLMC_ASSIGN_OR_RETURN(const NMSparseShape s, nm_sparse_shape(b.dims()[0], b.dims()[1], n));
  const uint8_t* d = b.data();
  std::vector<int> count(static_cast<size_t>(s.N));
  for (int64_t g = 0; g < s.K / kNMGroup; ++g) {
    std::fill(count.begin(), count.end(), 0);
    for (int64_t r = 0; r < kNMGroup; ++r)
      for (int64_t c = 0; c < s.N; ++c) count[c] += !nm_is_zero(d, b.dtype(), (4 * g + r) * s.N + c);
    for (int64_t c = 0; c < s.N; ++c)
      if (count[c] > n)
        return invalid_input("'", b.name(), "' is not ", n, ":4 sparse: rows ", 4 * g, "..", 4 * g + 3, " of column ", c,
                             " hold ", count[c], " nonzeros");
  }
  return Status::ok();
}

Result<NMSparseTensors> pack_nm_sparse(const Tensor& b, int n, const std::string& base) {
  LLMC_RETURN_IF_ERROR(check_nm_sparse(b, n));
  LLMC_ASSIGN_OR_RETURN(const NMSparseShape s, nm_sparse_shape(b.dims()[0], b.dims()[1], n));
  const size_t es = dtype_storage_bytes(b.dtype(), 1);
  NMSparseTensors out;
  out.values = Tensor::zeros(base + "_nm_values", b.dtype(), {s.rows, s.N});
  out.indices = Tensor::zeros(base + "_nm_indices", DType::kU8, {s.rows, s.index_cols});
  uint8_t* vals = out.values.mutable_data();
  uint8_t* idx = out.indices.mutable_data();
  const uint8_t* d = b.data();
  for (int64_t g = 0; g < s.K / kNMGroup; ++g) {
    for (int64_t c = 0; c < s.N; ++c) {
      // Kept positions: the nonzeros, then the lowest zero positions as padding, ascending.
      int pos[kNMGroup], kept = 0;
      bool used[kNMGroup] = {};
      for (int r = 0; r < kNMGroup; ++r)
        if (!nm_is_zero(d, b.dtype(), (4 * g + r) * s.N + c)) used[r] = true, ++kept;
      for (int r = 0; r < kNMGroup && kept < n; ++r)
        if (!used[r]) used[r] = true, ++kept;
      int np = 0;
      for (int r = 0; r < kNMGroup; ++r)
        if (used[r]) pos[np++] = r;
      for (int sl = 0; sl < n; ++sl) {
        const int64_t row = g * n + sl;
        std::memcpy(vals + (row * s.N + c) * es, d + ((4 * g + pos[sl]) * s.N + c) * es, es);
        idx[row * s.index_cols + c / 4] |= static_cast<uint8_t>(pos[sl] << (2 * (c % 4)));
      }
    }
  }
  return out;
}

}  // namespace llmc
