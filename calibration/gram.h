// Float64 Gram matrices G = sum over rows of x xᵀ of float32 activations (the XᵀX that GPTQ,
// SparseGPT, Wanda, AWQ and activation-aware SVD start from), accumulated a block of rows at a time.
//
// Summation order: every G[i][j] adds its products x_ri * x_rj one row after another, in row
// order, onto its running value, exactly as the naive triple loop does. Products of two floats
// are exact in double, so fused multiply-adds round as separate ones do; the result is
// therefore the same bits whatever the ISA clone, the thread count or the row blocking, and the
// same bits as a naive float64 loop over the rows in the same order.
// Work: only the tiles on or above the diagonal (4 x 8 doubles each) are computed; the threads
// of `pool` take whole panels of 4 rows of G, never a share of the rows of X.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/thread_pool.h"

namespace llmc::calib {

// G (row-major [channels, channels], upper triangle kept up to date) += Σ_r x_r x_rᵀ over the
// `rows` rows of x (row-major [rows, channels]). `scratch` is reused between calls (at most
// 256 x channels doubles, rounded up to 8 channels). `pool` may be null (one thread).
void accumulate_gram(double* gram, int64_t channels, const float* x, int64_t rows, std::vector<double>& scratch,
                     rt::ThreadPool* pool);

// Copies the upper triangle onto the lower one: the full symmetric matrix.
void symmetrize_gram(double* gram, int64_t channels);

}  // namespace llmc::calib
