// NMSparseMatMul's weight in panels, the portable panel loops (the reference the AVX-512 ones
// must equal bit for bit) and the dispatch between them.
#include "runtime/kernels/nm_sparse.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "ir/checked_math.h"
#include "runtime/kernels/kernel_util.h"

namespace llmc::rt {

namespace {

std::atomic<bool> g_force_portable{false};

bool cpu_has_fast_path() {
  // Every extension nm_sparse_avx512.cpp is compiled with.
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi") &&
                         __builtin_cpu_supports("avx512vnni");
  return ok;
}

bool use_fast() { return cpu_has_fast_path() && !g_force_portable.load(std::memory_order_relaxed); }

int64_t float_block_bytes(const NMPacked& b) { return nm_panels::float_block_bytes(b.shape.n, b.dtype == DType::kF16); }

// Kept row r of column c: its value's bytes and its position, from the file form.
struct FileForm {
  const uint8_t* values;
  const uint8_t* indices;
  size_t es;
  const NMSparseShape& s;
  int pos(int64_t r, int64_t c) const { return nm_index(indices, s.index_cols, r, c); }
  const uint8_t* value(int64_t r, int64_t c) const { return values + (r * s.N + c) * es; }
};

// Value j of slot s in a float block (float16 widened).
inline float float_value(const uint8_t* blk, int s, int64_t j, bool half) {
  if (half) {
    uint16_t h;
    std::memcpy(&h, blk + (s * kNMFloatPanel + j) * 2, 2);
    return half_to_float(h);
  }
  float v;
  std::memcpy(&v, blk + (s * kNMFloatPanel + j) * 4, 4);
  return v;
}

void pack_float_panel(const FileForm& f, const NMPacked& b, int64_t p, uint8_t* dst) {
  const int n = f.s.n;
  for (int64_t g = 0; g < f.s.K / 4; ++g) {
    uint8_t* blk = dst + g * float_block_bytes(b);
    for (int s = 0; s < n; ++s) {
      uint32_t words[2] = {0, 0};
      for (int64_t j = 0; j < kNMFloatPanel; ++j) {
        const int64_t c = p * kNMFloatPanel + j;
        if (c >= f.s.N) break;
        std::memcpy(blk + (s * kNMFloatPanel + j) * f.es, f.value(g * n + s, c), f.es);
        words[j / 16] |= static_cast<uint32_t>(f.pos(g * n + s, c)) << (2 * (j % 16));
      }
      std::memcpy(blk + n * kNMFloatPanel * f.es + 8 * s, words, 8);
    }
  }
}

void pack_int8_panel(const FileForm& f, const NMPacked& b, int64_t p, uint8_t* dst) {
  for (int64_t q = 0; q < b.blocks; ++q) {
    uint8_t* blk = dst + q * nm_panels::kInt8BlockBytes;
    for (int64_t j = 0; j < kNMInt8Panel; ++j) {
      const int64_t c = p * kNMInt8Panel + j;
      if (c >= f.s.N) break;
      uint32_t lane_bits = 0;
      for (int r = 0; r < 4; ++r) {
        const int64_t row = 4 * q + r;
        if (row >= f.s.rows) break;
        blk[4 * j + r] = *f.value(row, c);
        lane_bits |= static_cast<uint32_t>(f.pos(row, c)) << (2 * r);
      }
      blk[256 + j] = static_cast<uint8_t>(lane_bits);  // lane j's eight bits: byte j of the index part
    }
  }
}

// Byte offset, inside block q's activation window, of kept row 4q + r's group.
inline int64_t window_group_offset(int n, int r) { return 4 * (r / n); }
inline int64_t window_base(int n, int64_t q) { return 4 * (4 * q / n); }

void gemv_float_portable(const NMGemv& job, int64_t p0, int64_t p1) {
  const NMPacked& b = *job.b;
  const float* x = job.x;
  float* y = job.y;
  const int n = b.shape.n;
  const bool half = b.dtype == DType::kF16;
  const int64_t blk_bytes = float_block_bytes(b);
  for (int64_t p = p0; p < p1; ++p) {
    float acc[kNMFloatPanel] = {};
    const uint8_t* panel = b.data.data() + p * b.panel_bytes;
    for (int64_t g = 0; g < b.shape.K / 4; ++g) {
      const uint8_t* blk = panel + g * blk_bytes;
      for (int s = 0; s < n; ++s) {
        uint32_t words[2];
        std::memcpy(words, blk + n * kNMFloatPanel * (half ? 2 : 4) + 8 * s, 8);
        for (int64_t j = 0; j < kNMFloatPanel; ++j) {
          const float v = float_value(blk, s, j, half);
          const int pos = (words[j / 16] >> (2 * (j % 16))) & 3;
          acc[j] = std::fma(x[4 * g + pos], v, acc[j]);  // the AVX-512 loop's vfmadd, rounded once
        }
      }
    }
    const int64_t c0 = p * kNMFloatPanel;
    for (int64_t j = 0; j < kNMFloatPanel && c0 + j < b.shape.N; ++j) y[c0 + j] = acc[j];
  }
}

void gemv_int8_portable(const NMGemv& job, int64_t p0, int64_t p1) {
  const NMPacked& b = *job.b;
  const uint8_t* xq = job.xq;
  const int n = b.shape.n;
  for (int64_t p = p0; p < p1; ++p) {
    int32_t acc[kNMInt8Panel] = {};
    const uint8_t* panel = b.data.data() + p * b.panel_bytes;
    for (int64_t q = 0; q < b.blocks; ++q) {
      const uint8_t* blk = panel + q * nm_panels::kInt8BlockBytes;
      const uint8_t* win = xq + window_base(n, q);
      for (int64_t j = 0; j < kNMInt8Panel; ++j) {
        const uint32_t bits = blk[256 + j];
        for (int r = 0; r < 4; ++r) {
          const int pos = (bits >> (2 * r)) & 3;
          acc[j] += int32_t(win[window_group_offset(n, r) + pos]) * int32_t(static_cast<int8_t>(blk[4 * j + r]));
        }
      }
    }
    const int64_t c0 = p * kNMInt8Panel;
    for (int64_t j = 0; j < kNMInt8Panel && c0 + j < b.shape.N; ++j) {
      const int64_t c = c0 + j;
      const int32_t sum = static_cast<int32_t>(static_cast<uint32_t>(acc[j]) -
                                               static_cast<uint32_t>(job.a_zp) * static_cast<uint32_t>(b.colsum[c]));
      const float scale = job.a_scale * job.scales[job.per_col ? c : 0];
      job.y[c] = static_cast<float>(sum) * scale;
    }
  }
}

}  // namespace

bool nm_fast_available() { return cpu_has_fast_path(); }

std::optional<uint64_t> nm_packed_bytes(DType dtype, const NMSparseShape& s) {
  const bool int8 = dtype == DType::kI8;
  const int64_t width = int8 ? kNMInt8Panel : kNMFloatPanel;
  const int64_t panels = s.N / width + (s.N % width != 0);
  // int8: blocks of four kept rows; float: groups of four rows.
  const auto per_panel = int8 ? checked_mul<int64_t>((s.rows + 3) / 4, nm_panels::kInt8BlockBytes)
                              : checked_mul<int64_t>(s.K / 4, nm_panels::float_block_bytes(s.n, dtype == DType::kF16));
  if (!per_panel) return std::nullopt;
  const auto total = checked_mul<int64_t>(*per_panel, panels);
  if (!total) return std::nullopt;
  return static_cast<uint64_t>(*total);
}
void nm_force_portable(bool on) { g_force_portable.store(on, std::memory_order_relaxed); }

bool nm_packable(DType dtype, const NMSparseShape& s) {
  const auto packed = nm_packed_bytes(dtype, s);
  const uint64_t file = static_cast<uint64_t>(s.rows) * static_cast<uint64_t>(s.N) * dtype_storage_bytes(dtype, 1) +
                        static_cast<uint64_t>(s.rows) * static_cast<uint64_t>(s.index_cols);
  return packed && *packed / 4 <= file + (uint64_t{1} << 18);
}

Status nm_check_positions(const uint8_t* indices, const NMSparseShape& s) {
  for (int64_t g = 0; g < s.K / 4; ++g)
    for (int64_t c = 0; c < s.N; ++c) {
      unsigned seen = 0;
      for (int sl = 0; sl < s.n; ++sl) {
        const unsigned bit = 1u << nm_index(indices, s.index_cols, g * s.n + sl, c);
        if (seen & bit) return invalid_input("indices repeat a position in rows ", 4 * g, "..", 4 * g + 3, " of column ", c);
        seen |= bit;
      }
    }
  return Status::ok();
}

Result<std::unique_ptr<NMPacked>> nm_pack(const uint8_t* values, const uint8_t* indices, DType dtype,
                                          const NMSparseShape& s, ThreadPool* pool, PackArena* arena) {
  if (!nm_sparse_dtype(dtype)) return unsupported("NMSparseMatMul values of type ", dtype_name(dtype));
  if (dtype == DType::kI8 && s.K > kNMInt8MaxDepth)
    return unsupported("int8 NMSparseMatMul with K = ", s.K, " (at most ", kNMInt8MaxDepth, ")");
  LLMC_RETURN_IF_ERROR(nm_check_positions(indices, s));
  if (!nm_packable(dtype, s)) return invalid_input("n:4 weight [", s.K, ", ", s.N, "] is too narrow to pack");
  auto b = std::make_unique<NMPacked>();
  b->dtype = dtype;
  b->shape = s;
  const size_t es = dtype_storage_bytes(dtype, 1);
  const FileForm f{values, indices, es, s};
  if (dtype == DType::kI8) {
    b->panels = (s.N + kNMInt8Panel - 1) / kNMInt8Panel;
    b->blocks = (s.rows + 3) / 4;
    b->panel_bytes = b->blocks * nm_panels::kInt8BlockBytes;
  } else {
    b->panels = (s.N + kNMFloatPanel - 1) / kNMFloatPanel;
    b->panel_bytes = s.K / 4 * float_block_bytes(*b);
  }
  const auto bytes = nm_packed_bytes(dtype, s);
  if (!bytes) return invalid_input("packed n:4 weight [", s.K, ", ", s.N, "] is too large");
  b->data = AlignedBuffer(static_cast<size_t>(*bytes), arena);
  NMPacked* bp = b.get();
  auto pack = [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      uint8_t* dst = bp->data.data() + p * bp->panel_bytes;
      std::memset(dst, 0, static_cast<size_t>(bp->panel_bytes));
      if (dtype == DType::kI8) pack_int8_panel(f, *bp, p, dst);
      else pack_float_panel(f, *bp, p, dst);
    }
  };
  if (pool) pool->parallel_for(b->panels, 1, pack);
  else pack(0, b->panels);
  if (dtype == DType::kI8) {
    b->colsum.assign(static_cast<size_t>(s.N), 0);
    for (int64_t r = 0; r < s.rows; ++r)
      for (int64_t c = 0; c < s.N; ++c) b->colsum[c] += static_cast<int8_t>(values[r * s.N + c]);
  }
  return b;
}

void nm_gemv_batch(const NMGemv* jobs, size_t n, ThreadPool* pool) {
  // Panels of all products numbered one after another; a piece of the loop may span two.
  thread_local std::vector<int64_t> first;
  first.assign(n + 1, 0);
  int64_t bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    first[i + 1] = first[i] + jobs[i].b->panels;
    bytes += jobs[i].b->panels * jobs[i].b->panel_bytes;
  }
  const int64_t total = first[n];
  if (total == 0) return;
  const bool fast = use_fast();
  const int64_t* const starts = first.data();  // workers see their own thread_local, not this one
  auto run = [&](int64_t t0, int64_t t1) {
    size_t i = static_cast<size_t>(std::upper_bound(starts, starts + n + 1, t0) - starts) - 1;
    for (int64_t t = t0; t < t1; ++i) {
      const int64_t p0 = t - starts[i], p1 = std::min(t1, starts[i + 1]) - starts[i];
      const NMGemv& job = jobs[i];
      const bool int8 = job.b->dtype == DType::kI8;
      if (fast) int8 ? nm_panels::gemv_int8(job.b->view(), job, p0, p1) : nm_panels::gemv_float(job.b->view(), job, p0, p1);
      else int8 ? gemv_int8_portable(job, p0, p1) : gemv_float_portable(job, p0, p1);
      t = starts[i] + p1;
    }
  };
  // Pieces of about 128 KB of weights, at least four per thread, so the threads finish together.
  const int threads = pool ? pool->size() : 1;
  const int64_t per_panel = std::max<int64_t>(1, bytes / total);
  const int64_t grain = std::max<int64_t>(1, std::min((int64_t{128} << 10) / per_panel, total / (4 * threads)));
  if (pool) pool->parallel_for(total, grain, run);
  else run(0, total);
}

bool nm_gemm_float(const NMPacked& b, const float* A, int64_t M, float* C, ThreadPool* pool) {
  if (!use_fast() || b.dtype == DType::kI8) return false;
  auto run = [&](int64_t p0, int64_t p1) { nm_panels::gemm_float(b.view(), A, M, C, p0, p1); };
  if (pool) pool->parallel_for(b.panels, 1, run);
  else run(0, b.panels);
  return true;
}

bool nm_gemm_int8(const NMGemv& job, int64_t M, ThreadPool* pool) {
  const NMPacked& b = *job.b;
  if (!use_fast() || b.dtype != DType::kI8) return false;
  auto run = [&](int64_t p0, int64_t p1) { nm_panels::gemm_int8(b.view(), job, M, b.shape.K, b.shape.N, p0, p1); };
  if (pool) pool->parallel_for(b.panels, 1, run);
  else run(0, b.panels);
  return true;
}

void nm_unpack_float(const NMPacked& b, int64_t g0, int64_t g1, float* dense, int64_t ldd, ThreadPool* pool) {
  const int n = b.shape.n;
  const bool half = b.dtype == DType::kF16;
  const int64_t blk_bytes = float_block_bytes(b), value_bytes = n * kNMFloatPanel * (half ? 2 : 4);
  // Each panel writes only its own columns: panels in parallel.
  auto run = [&](int64_t q0, int64_t q1) {
    for (int64_t p = q0; p < q1; ++p) {
      const int64_t c0 = p * kNMFloatPanel, width = std::min(kNMFloatPanel, b.shape.N - c0);
      for (int64_t g = g0; g < g1; ++g) {
        const uint8_t* blk = b.data.data() + p * b.panel_bytes + g * blk_bytes;
        float* rows = dense + (g - g0) * 4 * ldd + c0;
        for (int r = 0; r < 4; ++r) std::fill(rows + r * ldd, rows + r * ldd + width, 0.f);
        for (int s = 0; s < n; ++s) {
          uint32_t words[2];
          std::memcpy(words, blk + value_bytes + 8 * s, 8);
          for (int64_t j = 0; j < width; ++j) {
            const float v = float_value(blk, s, j, half);
            rows[((words[j / 16] >> (2 * (j % 16))) & 3) * ldd + j] = v;
          }
        }
      }
    }
  };
  if (pool) pool->parallel_for(b.panels, 1, run);
  else run(0, b.panels);
}

void nm_unpack_int8(const NMPacked& b, int64_t g0, int64_t g1, int8_t* dense, int64_t ldd, ThreadPool* pool) {
  const int n = b.shape.n;
  // Kept rows of groups [g0, g1) are rows g0·n .. g1·n of the file form, in blocks of four.
  auto run = [&](int64_t q0, int64_t q1) {
    for (int64_t p = q0; p < q1; ++p) {
      const int64_t c0 = p * kNMInt8Panel, width = std::min(kNMInt8Panel, b.shape.N - c0);
      for (int64_t r = 0; r < 4 * (g1 - g0); ++r) std::memset(dense + r * ldd + c0, 0, static_cast<size_t>(width));
      for (int64_t row = g0 * n; row < g1 * n; ++row) {
        const int64_t q = row / 4, r = row % 4, g = row / n;
        const uint8_t* blk = b.data.data() + p * b.panel_bytes + q * nm_panels::kInt8BlockBytes;
        int8_t* rows = dense + (g - g0) * 4 * ldd + c0;
        for (int64_t j = 0; j < width; ++j)
          rows[((blk[256 + j] >> (2 * r)) & 3) * ldd + j] = static_cast<int8_t>(blk[4 * j + r]);
      }
    }
  };
  if (pool) pool->parallel_for(b.panels, 1, run);
  else run(0, b.panels);
}

}  // namespace llmc::rt
