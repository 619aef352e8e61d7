#include "runtime/kernels/hgemm.h"

#include <cpuid.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/file_pages.h"
#include "runtime/kernels/grouped_panels.h"

#include "runtime/kernels/sgemm.h"

namespace llmc::rt {

// Entry points of the three compiled variants (see hgemm_kernels.inc). `panel` and kNR are
// sgemm's micro-kernel and tile width, compiled into each variant's namespace.
#define HGEMM_DECLARE(ns)                                                                       \
  namespace ns {                                                                                \
  int tile_cols();                                                                              \
  void panel(int64_t M, int64_t kc, const float* A, int64_t lda, const float* Bp, float* C,     \
             int64_t ldc, int64_t nr, bool accumulate);                                         \
  void to_float(const uint16_t* src, float* dst, int64_t n);                                    \
  void to_half(const float* src, uint16_t* dst, int64_t n);                                     \
  void pack(int64_t kc, const uint16_t* B, int64_t ldb, int64_t width, int64_t kstride,         \
            float* packed);                                                                     \
  void gemv_rows(int64_t K, const float* x, const uint16_t* B, int64_t ldb, float* y, int64_t N); \
  void dot_rows(int64_t N, int64_t K, const float* a, const uint16_t* Bt, int64_t ldbt, float* y); \
  void gemv_packed(int64_t K, const float* x, const uint16_t* P, int64_t np, float* y);         \
  void pack_from_halves(int64_t kc, const uint16_t* P, int64_t K, int64_t k0, int64_t j0,         \
                        int64_t width, int64_t kstride, float* packed);                          \
  }
HGEMM_DECLARE(hgemm_avx512)
HGEMM_DECLARE(hgemm_avx2)
HGEMM_DECLARE(hgemm_portable)
#undef HGEMM_DECLARE

namespace {

struct Variant {
  int (*tile_cols)();  // the packed panel width the variant's `panel` reads
  void (*panel)(int64_t, int64_t, const float*, int64_t, const float*, float*, int64_t, int64_t, bool);
  void (*to_float)(const uint16_t*, float*, int64_t);
  void (*to_half)(const float*, uint16_t*, int64_t);
  void (*pack)(int64_t, const uint16_t*, int64_t, int64_t, int64_t, float*);
  void (*gemv_rows)(int64_t, const float*, const uint16_t*, int64_t, float*, int64_t);
  void (*dot_rows)(int64_t, int64_t, const float*, const uint16_t*, int64_t, float*);
  void (*gemv_packed)(int64_t, const float*, const uint16_t*, int64_t, float*);
  void (*pack_from_halves)(int64_t, const uint16_t*, int64_t, int64_t, int64_t, int64_t, int64_t, float*);
};

#define HGEMM_VARIANT(ns) \
  {ns::tile_cols, ns::panel, ns::to_float, ns::to_half, ns::pack, ns::gemv_rows, ns::dot_rows, ns::gemv_packed, ns::pack_from_halves}
const Variant kVariants[] = {
    HGEMM_VARIANT(hgemm_portable),
    HGEMM_VARIANT(hgemm_avx2),
    HGEMM_VARIANT(hgemm_avx512),
};
#undef HGEMM_VARIANT

const Variant& variant() {
  // sgemm's choice, except that the AVX2 variant also needs F16C (every AVX2 CPU shipped so
  // far has it; AVX-512F includes the zmm conversions).
  static const bool f16c = [] {  // CPUID leaf 1, ECX bit 29 (clang 14 has no "f16c" for
    unsigned a = 0, b = 0, c = 0, d = 0;  // __builtin_cpu_supports)
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
  }();
  Isa isa = active_isa();
  if (isa == Isa::kAvx2 && !f16c) isa = Isa::kPortable;
  return kVariants[static_cast<int>(isa)];
}

constexpr int64_t kKc = 256;  // K block, as sgemm: a packed kKc x NR panel stays in L1/L2

// C = A · B with B float16 and A float32; the result goes to Cf (float32) or, rounded, to Ch.
void run(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* B,
         int64_t ldb, float* Cf, uint16_t* Ch, int64_t ldc, ThreadPool* pool, const HPackedB* pk = nullptr) {
  if (M <= 0 || N <= 0) return;
  const Variant& v = variant();
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i) {
      if (Cf) std::fill(Cf + i * ldc, Cf + i * ldc + N, 0.f);
      else std::fill(Ch + i * ldc, Ch + i * ldc + N, uint16_t{0});
    }
    return;
  }
  const int threads = pool ? pool->size() : 1;
  if (M == 1) {
    // Decode: each thread streams a contiguous slice of B's rows (whole 8-row groups) into its
    // own partial float32 y; the partials are then summed (and rounded) per column.
    const int64_t slices = (pool && K * N > 65536) ? std::min<int64_t>(threads, (K + 7) / 8) : 1;
    if (slices == 1 && Cf) {
      v.gemv_rows(K, A, B, ldb, Cf, N);
      return;
    }
    thread_local std::vector<float> partial;
    partial.resize(static_cast<size_t>(slices * N));
    float* parts = partial.data();
    if (slices == 1) {
      v.gemv_rows(K, A, B, ldb, parts, N);
      v.to_half(parts, Ch, N);
      return;
    }
    const int64_t rows = ((K + slices - 1) / slices + 7) / 8 * 8;
    pool->parallel_for(slices, 1, [&](int64_t s0, int64_t s1) {
      for (int64_t s = s0; s < s1; ++s) {
        const int64_t k0 = s * rows, k1 = std::min(K, k0 + rows);
        if (k1 > k0) v.gemv_rows(k1 - k0, A + k0, B + k0 * ldb, ldb, parts + s * N, N);
        else std::fill(parts + s * N, parts + (s + 1) * N, 0.f);
      }
    });
    auto reduce = [&](int64_t j0, int64_t j1) {
      constexpr int64_t kChunk = 256;
      float sum[kChunk];
      for (int64_t c = j0; c < j1; c += kChunk) {
        const int64_t w = std::min(kChunk, j1 - c);
        float* out = Cf ? Cf + c : sum;
        for (int64_t j = 0; j < w; ++j) out[j] = parts[c + j];
        for (int64_t s = 1; s < slices; ++s)
          for (int64_t j = 0; j < w; ++j) out[j] += parts[s * N + c + j];
        if (!Cf) v.to_half(sum, Ch + c, w);
      }
    };
    if (N > 16384) pool->parallel_for(N, 8192, reduce);
    else reduce(0, N);
    return;
  }
  // Prefill: sgemm's blocking. Panels are packed in groups so each row of B is read in runs of
  // group * nr halves, widened to float32 on the way into the packed buffer.
  const int64_t nr = v.tile_cols();
  const int64_t panels = (N + nr - 1) / nr;
  const int64_t group = std::clamp<int64_t>(panels / (threads * 4), 1, 8);
  const int64_t groups = (panels + group - 1) / group;
  auto body = [&](int64_t g0, int64_t g1) {
    thread_local std::vector<float> packed, ctmp_small;
    packed.resize(static_cast<size_t>(group * kKc * nr));
    // Float16 output: the group's columns accumulate in float32 here, then round once (a
    // buffer for many rows is freed afterwards rather than kept per thread).
    const int64_t ld = Cf ? ldc : group * nr;
    std::vector<float> ctmp_large;
    std::vector<float>& ctmp = M * ld <= (1 << 16) ? ctmp_small : ctmp_large;
    if (!Cf) ctmp.resize(static_cast<size_t>(M * ld));
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t p0 = g * group, p1 = std::min(panels, p0 + group);
      const int64_t j0 = p0 * nr, width = std::min(N, p1 * nr) - j0;
      float* C = Cf ? Cf + j0 : ctmp.data();
      for (int64_t k0 = 0; k0 < K; k0 += kKc) {
        const int64_t kc = std::min(kKc, K - k0);
        if (pk) v.pack_from_halves(kc, reinterpret_cast<const uint16_t*>(pk->data.data()), K, k0, j0, width, kKc, packed.data());
        else v.pack(kc, B + k0 * ldb + j0, ldb, width, kKc, packed.data());
        for (int64_t p = 0; p < p1 - p0; ++p)
          v.panel(M, kc, A + k0, lda, packed.data() + p * kKc * nr, C + p * nr, ld,
                  std::min(nr, width - p * nr), k0 > 0);
      }
      if (!Cf)
        for (int64_t i = 0; i < M; ++i) v.to_half(C + i * ld, Ch + i * ldc + j0, width);
    }
  };
  const double flops = 2.0 * M * N * K;
  if (pool && groups > 1 && flops > 2e5) pool->parallel_for(groups, 1, body);
  else body(0, groups);
}

}  // namespace

std::unique_ptr<HPackedB> hgemm_pack_b(const uint16_t* B, int64_t K, int64_t N, int64_t ldb, ThreadPool* pool,
                                       bool release_source, PackArena* arena) {
  auto packed = std::make_unique<HPackedB>();
  packed->K = K;
  packed->N = N;
  const int64_t panels = (N + kHPanel - 1) / kHPanel;
  packed->data = AlignedBuffer(static_cast<size_t>(panels * K * kHPanel * sizeof(uint16_t)), arena);
  auto* out = reinterpret_cast<uint16_t*>(packed->data.data());
  auto run = [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t j0 = p * kHPanel, w = std::min(kHPanel, N - j0);
      uint16_t* dst = out + p * K * kHPanel;
      for (int64_t k = 0; k < K; ++k, dst += kHPanel) {
        std::memcpy(dst, B + k * ldb + j0, w * sizeof(uint16_t));
        std::fill(dst + w, dst + kHPanel, uint16_t{0});
      }
    }
  };
  if (pool && panels > 1) pool->parallel_for(panels, 1, run);
  else run(0, panels);
  if (release_source) release_file_pages(B, static_cast<size_t>(K * ldb) * sizeof(uint16_t));
  return packed;
}

namespace {
// Decode over packed panels: threads take runs of whole panels.
// Panels [p0, p1) of a packed B times a, rounded to float16 into C.
void packed_panels(const Variant& v, const float* a, const HPackedB& pk, int64_t p0, int64_t p1, uint16_t* C) {
  constexpr int64_t kChunk = 64;  // panels per float buffer (8 KB)
  alignas(64) float y[kChunk * kHPanel];
  const auto* P = reinterpret_cast<const uint16_t*>(pk.data.data());
  for (int64_t c = p0; c < p1; c += kChunk) {
    const int64_t np = std::min(kChunk, p1 - c);
    v.gemv_packed(pk.K, a, P + c * pk.K * kHPanel, np, y);
    v.to_half(y, C + c * kHPanel, std::min(np * kHPanel, pk.N - c * kHPanel));
  }
}

void gemv_packed(const float* a, const HPackedB& pk, uint16_t* C, ThreadPool* pool) {
  const Variant& v = variant();
  const int64_t panels = (pk.N + kHPanel - 1) / kHPanel;
  auto run = [&](int64_t p0, int64_t p1) { packed_panels(v, a, pk, p0, p1, C); };
  if (pool && pk.K * pk.N > 65536) pool->parallel_for(panels, 1, run);
  else run(0, panels);
}
}  // namespace

void hgemv_packed_batch(const float* a, const HPackedB* const* packs, uint16_t* const* ys, size_t n,
                        ThreadPool* pool) {
  if (n == 0) return;
  thread_local std::vector<int64_t> first;
  first.assign(n + 1, 0);
  double work = 0;
  for (size_t i = 0; i < n; ++i) {
    first[i + 1] = first[i] + (packs[i]->N + kHPanel - 1) / kHPanel;
    work += static_cast<double>(packs[i]->K) * packs[i]->N;
  }
  const Variant& v = variant();
  for_grouped_panels(first, work > 65536, pool, [&](size_t i, int64_t p0, int64_t p1) {
    packed_panels(v, a, *packs[i], p0, p1, ys[i]);
  });
}

void hgemm(int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda, const uint16_t* B,
           int64_t ldb, uint16_t* C, int64_t ldc, ThreadPool* pool, const HPackedB* packed) {
  if (M <= 0 || N <= 0) return;
  // A widened once (it is read once per column panel). Decode-sized A reuses a per-thread
  // buffer (no allocation per token); a prefill-sized one is freed again, not kept per thread.
  thread_local std::vector<float> small;
  std::vector<float> large;
  std::vector<float>& af = M * K <= (1 << 16) ? small : large;
  af.resize(static_cast<size_t>(M * K));
  const Variant& v = variant();
  for (int64_t i = 0; i < M; ++i) v.to_float(A + i * lda, af.data() + i * K, K);
  const HPackedB* pk = packed && packed->K == K && packed->N == N && K > 0 ? packed : nullptr;
  if (M == 1 && pk) {
    gemv_packed(af.data(), *pk, C, pool);
    return;
  }
  run(M, N, K, af.data(), K, B, ldb, nullptr, C, ldc, pool, pk);
}

void hgemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* B,
               int64_t ldb, float* C, int64_t ldc, ThreadPool* pool, const HPackedB* packed) {
  const HPackedB* pk = packed && packed->K == K && packed->N == N && K > 0 ? packed : nullptr;
  run(M, N, K, A, lda, B, ldb, C, nullptr, ldc, pool, pk);
}

void hgemv_bt(int64_t N, int64_t K, const float* a, const uint16_t* Bt, int64_t ldbt, float* y) {
  variant().dot_rows(N, K, a, Bt, ldbt, y);
}

void halfs_to_floats(const uint16_t* src, float* dst, int64_t n) { variant().to_float(src, dst, n); }

void floats_to_halfs(const float* src, uint16_t* dst, int64_t n) { variant().to_half(src, dst, n); }

}  // namespace llmc::rt
