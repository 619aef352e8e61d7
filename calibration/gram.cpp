#include "calibration/gram.h"

#include <algorithm>
#include <cstring>

namespace llmc::calib {

namespace {

constexpr int64_t kMr = 4;          // rows of G per tile, and per panel a thread takes
constexpr int64_t kNr = 8;          // columns of G per tile: one packed panel of X
constexpr int64_t kRowBlock = 256;  // rows of X packed at a time: a packed panel is 16 KB

typedef double v4d __attribute__((vector_size(32)));

// Rows of X [r0, r0 + rows) converted to double, as panels of 8 channels: packed[(p * rows + r) * 8 + l]
// is x[r][8p + l], zero past the last channel (so partial tiles add zeros).
void pack_rows(const float* x, int64_t channels, int64_t rows, int64_t panels, double* packed) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * channels;
    for (int64_t p = 0; p < panels; ++p) {
      double* dst = packed + (p * rows + r) * kNr;
      const int64_t c0 = p * kNr, n = std::min(kNr, channels - c0);
      for (int64_t l = 0; l < n; ++l) dst[l] = static_cast<double>(row[c0 + l]);
      for (int64_t l = n; l < kNr; ++l) dst[l] = 0.0;
    }
  }
}

// One panel of G: rows [i0, i0 + 4), every tile from the one holding the diagonal to the last
// column, each += Σ_r a_r b_rᵀ over the packed rows in row order. The accumulators start from
// G's current values, so across blocks every element still sums its products in row order.
__attribute__((target_clones("avx512f", "avx2", "default"))) void gram_row_panel(double* gram, int64_t channels,
                                                                               const double* packed, int64_t rows,
                                                                               int64_t panels, int64_t i0) {
  const double* a = packed + (i0 / kNr) * rows * kNr + i0 % kNr;
  const int64_t i_n = std::min(kMr, channels - i0);
  for (int64_t p = i0 / kNr; p < panels; ++p) {
    const double* b = packed + p * rows * kNr;
    const int64_t j0 = p * kNr, j_n = std::min(kNr, channels - j0);
    const bool full = i_n == kMr && j_n == kNr;
    v4d acc[kMr][2];
    for (int64_t i = 0; i < kMr; ++i)
      for (int h = 0; h < 2; ++h) {
        const int64_t at = (i0 + i) * channels + j0 + 4 * h;
        if (full) std::memcpy(&acc[i][h], gram + at, sizeof(v4d));
        else
          for (int l = 0; l < 4; ++l) acc[i][h][l] = i < i_n && 4 * h + l < j_n ? gram[at + l] : 0.0;
      }
    for (int64_t r = 0; r < rows; ++r) {
      v4d b0, b1;
      std::memcpy(&b0, b + r * kNr, sizeof(v4d));
      std::memcpy(&b1, b + r * kNr + 4, sizeof(v4d));
      for (int64_t i = 0; i < kMr; ++i) {
        const double s = a[r * kNr + i];
        const v4d av = {s, s, s, s};
        acc[i][0] += av * b0;
        acc[i][1] += av * b1;
      }
    }
    for (int64_t i = 0; i < i_n; ++i)
      for (int h = 0; h < 2; ++h) {
        double* g = gram + (i0 + i) * channels + j0 + 4 * h;
        if (full) std::memcpy(g, &acc[i][h], sizeof(v4d));
        else
          for (int l = 0; l < 4 && 4 * h + l < j_n; ++l) g[l] = acc[i][h][l];
      }
  }
}

}  // namespace

void accumulate_gram(double* gram, int64_t channels, const float* x, int64_t rows, std::vector<double>& scratch,
                     rt::ThreadPool* pool) {
  if (channels <= 0 || rows <= 0) return;
  const int64_t panels = (channels + kNr - 1) / kNr;
  const int64_t row_panels = (channels + kMr - 1) / kMr;
  scratch.resize(static_cast<size_t>(panels * std::min(rows, kRowBlock) * kNr));
  for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
    const int64_t n = std::min(kRowBlock, rows - r0);
    pack_rows(x + r0 * channels, channels, n, panels, scratch.data());
    const double* packed = scratch.data();
    auto run = [&](int64_t begin, int64_t end) {
      for (int64_t rp = begin; rp < end; ++rp) gram_row_panel(gram, channels, packed, n, panels, rp * kMr);
    };
    if (pool && pool->size() > 1) pool->parallel_for(row_panels, 1, run);
    else run(0, row_panels);
  }
}

void symmetrize_gram(double* gram, int64_t channels) {
  constexpr int64_t kBlock = 64;  // square blocks, so the transposed reads stay in cache
  for (int64_t ib = 0; ib < channels; ib += kBlock)
    for (int64_t jb = 0; jb <= ib; jb += kBlock)
      for (int64_t i = ib; i < std::min(channels, ib + kBlock); ++i)
        for (int64_t j = jb; j < std::min(i, jb + kBlock); ++j) gram[i * channels + j] = gram[j * channels + i];
}

}  // namespace llmc::calib
