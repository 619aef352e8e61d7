#include "runtime/kernels/nbits_gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

namespace llmc::rt {

// Entry points of the three compiled variants (see nbits_gemm_kernels.inc).
#define NBITS_DECLARE(ns)                                                                                          \
  namespace ns {                                                                                                   \
  void int8_rows(const NBitsLayout& L, const uint8_t* panel, int64_t M, const int8_t* qa, int64_t Kp,              \
                 const float* sa, const int32_t* asum, const int32_t* corr, const float* bias, float* Y,          \
                 int64_t ldy, int64_t width);                                                                      \
  void float_rows(const NBitsLayout& L, const uint8_t* panel, int64_t K, int64_t M, const float* A, int64_t lda,  \
                  const float* bias, float* Y, int64_t ldy, int64_t width, float* acc);                            \
  }
NBITS_DECLARE(nbits_avx512vnni)
NBITS_DECLARE(nbits_avx2)
NBITS_DECLARE(nbits_portable)
#undef NBITS_DECLARE
namespace nbits_amx {  // nbits_gemm_amx.cpp
bool available();
void int8_rows(const NBitsLayout& L, const uint8_t* panel, int64_t M, const int8_t* qa, int64_t Kp, const float* sa,
               const int32_t* asum, const int32_t* corr, const float* bias, float* Y, int64_t ldy, int64_t width,
               uint8_t* wbuf, int32_t* cbuf);
}

namespace {

struct Variant {
  decltype(&nbits_portable::int8_rows) int8_rows;
  decltype(&nbits_portable::float_rows) float_rows;
};
const Variant kVariants[] = {{nbits_portable::int8_rows, nbits_portable::float_rows},
                             {nbits_avx2::int8_rows, nbits_avx2::float_rows},
                             {nbits_avx512vnni::int8_rows, nbits_avx512vnni::float_rows}};

std::atomic<int> g_forced{-1};
std::atomic<bool> g_amx{true};

// Rows per call from which the AMX tiles take over (below, 16-row tiles are mostly padding).
constexpr int64_t kAmxMinRows = 8;

bool use_amx() { return g_amx.load() && nbits_active_isa() == QIsa::kAvx512Vnni && nbits_amx::available(); }

}  // namespace

void nbits_use_amx(bool on) { g_amx.store(on); }
bool nbits_amx_active() { return use_amx(); }

QIsa nbits_active_isa() {
  const int f = g_forced.load();
  return f < 0 ? qgemm_detected_isa() : static_cast<QIsa>(f);
}

void nbits_force_isa(QIsa isa) { g_forced.store(static_cast<int>(std::min(isa, qgemm_detected_isa()))); }

std::unique_ptr<NBitsPacked> nbits_pack(const NBitsWeights& w, ThreadPool* pool, PackArena* arena) {
  auto pk = std::make_unique<NBitsPacked>();
  NBitsPacked& p = *pk;
  p.K = w.K;
  p.N = w.N;
  p.bits = w.bits;
  p.block_size = w.block_size;
  p.k_blocks = (w.K + w.block_size - 1) / w.block_size;
  p.panels = (w.N + kNBitsPanel - 1) / kNBitsPanel;
  const int64_t kb = p.k_blocks, bs = p.block_size, blob = bs * w.bits / 8;
  const int64_t zp_row = (kb * w.bits + 7) / 8;  // bytes per row of packed uint8 zero points
  auto zp_int = [&](int64_t n, int64_t b) -> int32_t {
    const uint8_t byte = w.zp_u8[n * zp_row + b * w.bits / 8];
    return w.bits == 4 ? ((b & 1) ? byte >> 4 : byte & 0x0F) : byte;
  };
  p.zp_uniform = 1 << (w.bits - 1);
  if (w.zp_f) {
    p.zp_mode = NBitsZp::kFloat;
  } else if (w.zp_u8 && w.N > 0 && kb > 0) {
    // Uniform zero points (an asymmetric quantiser's constant ones) need not be streamed.
    p.zp_uniform = zp_int(0, 0);
    for (int64_t n = 0; n < w.N && p.zp_mode == NBitsZp::kUniform; ++n)
      for (int64_t b = 0; b < kb; ++b)
        if (zp_int(n, b) != p.zp_uniform) {
          p.zp_mode = NBitsZp::kInt;
          break;
        }
  }
  p.weight_bytes = kNBitsPanel * bs * w.bits / 8;
  p.block_bytes = p.weight_bytes + 64 + (p.zp_mode == NBitsZp::kInt ? 16 : p.zp_mode == NBitsZp::kFloat ? 64 : 0);
  p.panel_bytes = kb * p.block_bytes;
  p.layout = {p.bits, bs, kb, p.weight_bytes, p.block_bytes, static_cast<int>(p.zp_mode), p.zp_uniform};
  p.data = AlignedBuffer(static_cast<size_t>(p.panels * p.panel_bytes), arena);
  auto run = [&](int64_t p0, int64_t p1) {
    for (int64_t pi = p0; pi < p1; ++pi) {
      uint8_t* dst = p.data.data() + pi * p.panel_bytes;
      std::memset(dst, 0, static_cast<size_t>(p.panel_bytes));
      for (int64_t col = 0; col < kNBitsPanel; ++col) {
        const int64_t n = pi * kNBitsPanel + col;
        if (n >= w.N) break;
        for (int64_t b = 0; b < kb; ++b) {
          uint8_t* blk = dst + b * p.block_bytes;
          const uint8_t* src = w.B + (n * kb + b) * blob;
          const int64_t real = std::min(bs, w.K - b * bs);  // padding k stay 0
          for (int64_t k = 0; k < real; ++k) {
            if (w.bits == 4) {
              const uint8_t q = (k & 1) ? src[k / 2] >> 4 : src[k / 2] & 0x0F;
              blk[64 * (k / 8) + 4 * col + (k % 4)] |= static_cast<uint8_t>((k % 8) >= 4 ? q << 4 : q);
            } else {
              blk[64 * (k / 4) + 4 * col + (k % 4)] = src[k];
            }
          }
          uint8_t* tail = blk + p.weight_bytes;
          const float s = w.scales[n * kb + b];
          std::memcpy(tail + 4 * col, &s, 4);
          if (p.zp_mode == NBitsZp::kInt) {
            tail[64 + col] = static_cast<uint8_t>(zp_int(n, b));
          } else if (p.zp_mode == NBitsZp::kFloat) {
            const float m = s * w.zp_f[n * kb + b];
            std::memcpy(tail + 64 + 4 * col, &m, 4);
          }
        }
      }
    }
  };
  if (pool && p.panels > 1) pool->parallel_for(p.panels, 1, run);
  else run(0, p.panels);
  return pk;
}

int64_t nbits_quantized_rows(int64_t M) { return M >= kAmxMinRows ? (M + 7) / 8 * 8 + 16 : M; }

// MLAS's QuantizeARow_CompInt8: scale = amax / 127, q = round-half-even(a · (127 / amax)) with
// the reciprocal taken from amax directly (1 / scale can differ by an ulp, flipping a q).
void nbits_quantize_a(const float* A, int64_t M, int64_t K, int64_t lda, int64_t block_size, NBitsQuantA& out,
                      ThreadPool* pool) {
  const int64_t kb = (K + block_size - 1) / block_size;
  out.M = M;
  out.k_blocks = kb;
  out.Kp = kb * block_size;
  out.q.assign(static_cast<size_t>(nbits_quantized_rows(M) * out.Kp), 0);  // rows past M are zeros
  out.scale.resize(static_cast<size_t>(M * kb));
  out.sum.resize(static_cast<size_t>(M * kb));
  auto run = [&](int64_t r0, int64_t r1) {
    for (int64_t m = r0; m < r1; ++m) {
      for (int64_t b = 0; b < kb; ++b) {
        const float* a = A + m * lda + b * block_size;
        const int64_t n = std::min(block_size, K - b * block_size);
        float amax = 0;
        for (int64_t k = 0; k < n; ++k) amax = std::max(amax, std::fabs(a[k]));
        const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
        int8_t* q = out.q.data() + m * out.Kp + b * block_size;
        int32_t sum = 0;
        for (int64_t k = 0; k < n; ++k) {
          // Round half to even without a libm call (nearbyint is one per element on baseline
          // x86-64, a third of prefill time): adding 1.5·2^23 leaves no fraction bits, so the
          // sum rounds in the default mode exactly as nearbyint does (|v| <= 127 here).
          float v = a[k] * inv;
          v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v == v ? v : 0.0f;  // NaN input: 0, no UB
          const float r = (v + 12582912.0f) - 12582912.0f;
          q[k] = static_cast<int8_t>(r);
          sum += q[k];
        }
        out.scale[m * kb + b] = amax / 127.0f;
        out.sum[m * kb + b] = sum;
      }
    }
  };
  if (pool && M * K > 65536) pool->parallel_for(M, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, K)), run);
  else run(0, M);
}

namespace {

// Tasks are (product, panel) pairs; with few panels for many threads, row ranges split too.
struct Plan {
  std::vector<int64_t> first;  // per product: its first panel task
  int64_t tasks = 0, row_chunks = 1, rows = 0;
};

Plan plan(const NBitsProduct* products, size_t n, int64_t M, int64_t mr, ThreadPool* pool, double& ops) {
  Plan pl;
  int64_t panels = 0;
  ops = 0;
  for (size_t i = 0; i < n; ++i) {
    pl.first.push_back(panels);
    panels += products[i].w->panels;
    ops += 2.0 * M * products[i].w->N * products[i].w->K;
  }
  const int threads = pool ? pool->size() : 1;
  if (panels < 2 * threads && M >= 2 * mr)
    pl.row_chunks = std::min<int64_t>((2 * threads + panels - 1) / std::max<int64_t>(1, panels), M / mr);
  pl.rows = ((M + pl.row_chunks - 1) / pl.row_chunks + mr - 1) / mr * mr;
  pl.row_chunks = M > 0 ? (M + pl.rows - 1) / pl.rows : 1;
  pl.tasks = panels * pl.row_chunks;
  return pl;
}

template <typename Fn>
void for_each_task(const Plan& pl, size_t n, int64_t M, double ops, ThreadPool* pool, Fn&& fn) {
  auto run = [&](int64_t t0, int64_t t1) {
    size_t i = 0;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t panel_task = t / pl.row_chunks, rc = t % pl.row_chunks;
      while (i + 1 < n && panel_task >= pl.first[i + 1]) ++i;
      while (i > 0 && panel_task < pl.first[i]) --i;
      const int64_t m0 = rc * pl.rows, m1 = std::min(M, m0 + pl.rows);
      if (m0 < m1) fn(i, panel_task - pl.first[i], m0, m1);
    }
  };
  if (pool && pl.tasks > 1 && ops > 2e5) pool->parallel_for(pl.tasks, 1, run);
  else run(0, pl.tasks);
}

}  // namespace

void nbits_gemm_int8(NBitsQuantA& qa, const NBitsProduct* products, size_t n, ThreadPool* pool) {
  if (qa.M <= 0 || n == 0) return;
  const Variant& v = kVariants[static_cast<int>(nbits_active_isa())];
  // Per distinct uniform zero point z of the products: -z · sum q_a per row and block, the
  // block sums' starting value. Kept in qa (the caller's scratch): a worker reaches it there.
  qa.corr_zp.clear();
  for (size_t i = 0; i < n; ++i) {
    const int32_t z = products[i].w->zp_uniform;
    if (std::find(qa.corr_zp.begin(), qa.corr_zp.end(), z) == qa.corr_zp.end()) qa.corr_zp.push_back(z);
  }
  const size_t per = qa.sum.size();
  qa.corr.resize(qa.corr_zp.size() * per);
  for (size_t c = 0; c < qa.corr_zp.size(); ++c)
    for (size_t k = 0; k < per; ++k)
      qa.corr[c * per + k] = static_cast<int32_t>(0u - static_cast<uint32_t>(qa.corr_zp[c]) * static_cast<uint32_t>(qa.sum[k]));
  auto corr_of = [&](const NBitsPacked& w) {
    const size_t c = static_cast<size_t>(std::find(qa.corr_zp.begin(), qa.corr_zp.end(), w.zp_uniform) - qa.corr_zp.begin());
    return qa.corr.data() + c * per;
  };
  double ops;
  const Plan pl = plan(products, n, qa.M, 8, pool, ops);
  const bool amx = use_amx() && qa.M >= kAmxMinRows &&
                   static_cast<int64_t>(qa.q.size()) >= nbits_quantized_rows(qa.M) * qa.Kp;
  for_each_task(pl, n, qa.M, ops, pool, [&](size_t i, int64_t pi, int64_t m0, int64_t m1) {
    const NBitsProduct& p = products[i];
    const NBitsPacked& w = *p.w;
    const int64_t j0 = pi * kNBitsPanel, width = std::min(kNBitsPanel, w.N - j0), kb = qa.k_blocks;
    if (amx) {  // this worker's scratch: the panel's unpacked weights and one tile of sums
      thread_local AlignedBuffer wbuf;
      alignas(64) int32_t cbuf[4 * 256];
      if (wbuf.size() < static_cast<size_t>(qa.Kp * 16)) wbuf = AlignedBuffer(static_cast<size_t>(qa.Kp * 16));
      nbits_amx::int8_rows(w.layout, w.data.data() + pi * w.panel_bytes, m1 - m0, qa.q.data() + m0 * qa.Kp, qa.Kp,
                           qa.scale.data() + m0 * kb, qa.sum.data() + m0 * kb, corr_of(w) + m0 * kb,
                           p.bias ? p.bias + j0 : nullptr, p.Y + m0 * p.ldy + j0, p.ldy, width, wbuf.data(), cbuf);
      return;
    }
    v.int8_rows(w.layout, w.data.data() + pi * w.panel_bytes, m1 - m0, qa.q.data() + m0 * qa.Kp, qa.Kp,
                qa.scale.data() + m0 * kb, qa.sum.data() + m0 * kb, corr_of(w) + m0 * kb, p.bias ? p.bias + j0 : nullptr,
                p.Y + m0 * p.ldy + j0, p.ldy, width);
  });
}

void nbits_gemm_float(const float* A, int64_t M, int64_t lda, const NBitsProduct* products, size_t n,
                      ThreadPool* pool) {
  if (M <= 0 || n == 0) return;
  const Variant& v = kVariants[static_cast<int>(nbits_active_isa())];
  // Rows of whole blocks (the AVX-512 tiles read them): a zero-padded copy when K is not.
  const NBitsPacked& w0 = *products[0].w;
  const int64_t Kp = w0.k_blocks * w0.block_size;
  thread_local std::vector<float> padded;
  if (Kp != w0.K) {
    padded.assign(static_cast<size_t>(M * Kp), 0.0f);
    for (int64_t m = 0; m < M; ++m) std::memcpy(padded.data() + m * Kp, A + m * lda, static_cast<size_t>(w0.K) * sizeof(float));
    A = padded.data();
    lda = Kp;
  }
  double ops;
  const Plan pl = plan(products, n, M, 4, pool, ops);
  for_each_task(pl, n, M, ops, pool, [&](size_t i, int64_t pi, int64_t m0, int64_t m1) {
    thread_local std::vector<float> acc;
    if (acc.size() < static_cast<size_t>((m1 - m0) * kNBitsPanel)) acc.resize(static_cast<size_t>((m1 - m0) * kNBitsPanel));
    const NBitsProduct& p = products[i];
    const NBitsPacked& w = *p.w;
    const int64_t j0 = pi * kNBitsPanel, width = std::min(kNBitsPanel, w.N - j0);
    v.float_rows(w.layout, w.data.data() + pi * w.panel_bytes, w.K, m1 - m0, A + m0 * lda, lda,
                 p.bias ? p.bias + j0 : nullptr, p.Y + m0 * p.ldy + j0, p.ldy, width, acc.data());
  });
}

}  // namespace llmc::rt
