#include "runtime/kernels/qgemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

namespace llmc::rt {

// Entry points of the three compiled variants (see qgemm_kernels.inc).
#define QGEMM_DECLARE(ns, mr_, nr_, kg_, ae_, be_)                                                             \
  namespace ns {                                                                                          \
  constexpr int kTileRows = mr_, kTileCols = nr_, kGroup = kg_, kAElem = ae_, kBElem = be_;                  \
  void prep_a(int64_t M, int64_t K, const uint8_t* A, int64_t lda, uint8_t flip, void* dst, int64_t Kp,   \
              int32_t* rowsum);                                                                           \
  void pack_b(int64_t K, const uint8_t* B, int64_t ldb, uint8_t flip, int64_t width, void* dst,           \
              int32_t* colsum);                                                                           \
  void panel(int64_t M, int64_t Kp, const void* Ap, const void* Bp, int32_t* C, int64_t ldc, int64_t nr,  \
             const int32_t* az, const int32_t* ra, const int32_t* bz, const int32_t* cs);                 \
  void gemv(int64_t K, const uint8_t* a, const uint8_t* B, int64_t ldb, uint8_t flip, int64_t n,          \
            int32_t* y, int32_t* colsum);                                                                 \
  }
QGEMM_DECLARE(avx512vnni, 6, 64, 4, 1, 1)
namespace avx512vnni {
void panel_f32(int64_t Kp, const void* Ap, const void* Bp, int64_t nr, int32_t az, int32_t ra, const int32_t* bz,
               const int32_t* cs, float a_scale, const float* scale, bool per_col, const float* bias, float* out);
}
QGEMM_DECLARE(avx2, 6, 16, 2, 2, 2)
QGEMM_DECLARE(portable, 4, 16, 4, 1, 1)
#undef QGEMM_DECLARE

namespace {

struct Variant {
  int mr, nr, kg, a_elem, b_elem;
  decltype(&portable::prep_a) prep_a;
  decltype(&portable::pack_b) pack_b;
  decltype(&portable::panel) panel;
  decltype(&portable::gemv) gemv;
  decltype(&avx512vnni::panel_f32) panel_f32;  // nullptr: no fused float epilogue
};

#define QGEMM_VARIANT(ns, f32) \
  {ns::kTileRows, ns::kTileCols, ns::kGroup, ns::kAElem, ns::kBElem, ns::prep_a, ns::pack_b, ns::panel, ns::gemv, f32}
const Variant kVariants[] = {QGEMM_VARIANT(portable, nullptr), QGEMM_VARIANT(avx2, nullptr),
                             QGEMM_VARIANT(avx512vnni, avx512vnni::panel_f32)};
#undef QGEMM_VARIANT

QIsa detect() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni"))
    return QIsa::kAvx512Vnni;
  if (__builtin_cpu_supports("avx2")) return QIsa::kAvx2;
  return QIsa::kPortable;
}

std::atomic<int> g_forced{-1};

// Wrapping int32 arithmetic: exact modulo 2^32.
inline int32_t wrap(int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v))); }

}  // namespace

QIsa qgemm_detected_isa() {
  static const QIsa isa = detect();
  return isa;
}

QIsa qgemm_active_isa() {
  const int f = g_forced.load();
  return f < 0 ? qgemm_detected_isa() : static_cast<QIsa>(f);
}

void qgemm_force_isa(QIsa isa) { g_forced.store(static_cast<int>(std::min(isa, qgemm_detected_isa()))); }

const char* qgemm_isa_name(QIsa isa) {
  switch (isa) {
    case QIsa::kAvx512Vnni: return "avx512vnni";
    case QIsa::kAvx2: return "avx2";
    case QIsa::kPortable: return "portable";
  }
  return "?";
}

void qgemm_reference(const QGemmArgs& p) {
  const auto* A = static_cast<const uint8_t*>(p.A);
  const auto* B = static_cast<const uint8_t*>(p.B);
  for (int64_t m = 0; m < p.M; ++m) {
    const int64_t az = p.a_zp ? p.a_zp[p.a_zp_per_row ? m : 0] : 0;
    for (int64_t n = 0; n < p.N; ++n) {
      const int64_t bz = p.b_zp ? p.b_zp[p.b_zp_per_col ? n : 0] : 0;
      int64_t s = 0;
      for (int64_t k = 0; k < p.K; ++k) {
        const uint8_t ab = A[m * p.lda + k], bb = B[k * p.ldb + n];
        const int64_t a = p.a_signed ? int64_t{static_cast<int8_t>(ab)} : int64_t{ab};
        const int64_t b = p.b_signed ? int64_t{static_cast<int8_t>(bb)} : int64_t{bb};
        s += (a - az) * (b - bz);
      }
      p.C[m * p.ldc + n] = wrap(s);
    }
  }
}

std::unique_ptr<QPackedB> qgemm_pack_b(const void* B, int64_t K, int64_t N, int64_t ldb, bool b_signed,
                                       ThreadPool* pool, PackArena* arena) {
  const QIsa isa = qgemm_active_isa();
  const Variant& v = kVariants[static_cast<int>(isa)];
  auto packed = std::make_unique<QPackedB>();
  packed->isa = isa;
  packed->K = K;
  packed->N = N;
  packed->Kp = (K + v.kg - 1) / v.kg * v.kg;
  packed->nr = v.nr;
  packed->panel_bytes = packed->Kp * v.nr * v.b_elem;
  packed->b_signed = b_signed;
  const int64_t panels = (N + v.nr - 1) / v.nr;
  packed->data = AlignedBuffer(static_cast<size_t>(panels * packed->panel_bytes), arena);
  packed->colsum.assign(static_cast<size_t>(panels * v.nr), 0);
  const auto* Bb = static_cast<const uint8_t*>(B);
  const uint8_t flip = b_signed ? 0 : 0x80;
  auto run = [&](int64_t p0, int64_t p1) {
    for (int64_t pi = p0; pi < p1; ++pi) {
      const int64_t j0 = pi * v.nr;
      v.pack_b(K, Bb + j0, ldb, flip, std::min<int64_t>(v.nr, N - j0), packed->data.data() + pi * packed->panel_bytes,
               packed->colsum.data() + j0);
    }
  };
  if (pool && panels > 1) pool->parallel_for(panels, 1, run);
  else run(0, panels);
  return packed;
}

namespace {

// A product's zero points mapped to u8 x s8 (see qgemm.h).
int32_t mapped_a_zp(const QGemmArgs& p, int64_t m) {
  return wrap(int64_t{p.a_zp ? p.a_zp[p.a_zp_per_row ? m : 0] : 0} + (p.a_signed ? 128 : 0));
}
int32_t mapped_b_zp(const QGemmArgs& p, int64_t n) {
  return wrap(int64_t{p.b_zp ? p.b_zp[p.b_zp_per_col ? n : 0] : 0} + (p.b_signed ? 0 : -128));
}

// Brings n 4-byte values at p towards the caches (a panel's column sums, scales, bias): they
// lie apart from the panel's stream, and a demand miss on them at the panel's end would stall.
inline void prefetch_columns(const void* p, int64_t n) {
  const char* c = static_cast<const char*>(p);
  for (int64_t off = 0; off < 4 * n; off += 64) __builtin_prefetch(c + off);
  __builtin_prefetch(c + 4 * n - 1);
}

bool packed_for(const QGemmArgs& p) {
  const QPackedB* pk = p.packed_b;
  return pk && pk->isa == qgemm_active_isa() && pk->K == p.K && pk->N == p.N && pk->b_signed == p.b_signed;
}

// Decode over packed panels of one or more products (M == 1 each): every product's row is
// prepared once, then one parallel loop takes panels from all of them.
void qgemv_packed(const QGemmArgs* args, size_t n, ThreadPool* pool, const QColumnsDone* done = nullptr) {
  const Variant& v = kVariants[static_cast<int>(qgemm_active_isa())];
  struct Prepared {
    std::vector<uint8_t> a;   // the row in the variant's layout, K padded to the k-group
    std::vector<int32_t> bz;  // mapped b zero points, padded to whole panels (when not all 0)
    const int32_t* bzp = nullptr;  // bz, or zeros
    int32_t az = 0, ra = 0;
    int64_t first_task = 0, Kp = 0;
  };
  thread_local std::vector<Prepared> prep;
  thread_local std::vector<int32_t> zeros;
  if (prep.size() < n) prep.resize(n);
  int64_t tasks = 0;
  double ops = 0;
  for (size_t i = 0; i < n; ++i) {
    const QGemmArgs& p = args[i];
    Prepared& q = prep[i];
    const int64_t panels = (p.N + v.nr - 1) / v.nr;
    q.Kp = p.packed_b->Kp;
    q.a.resize(static_cast<size_t>(q.Kp * v.a_elem));
    int32_t rowsum = 0;
    v.prep_a(1, p.K, static_cast<const uint8_t*>(p.A), p.lda, p.a_signed ? 0x80 : 0, q.a.data(), q.Kp, &rowsum);
    q.az = mapped_a_zp(p, 0);
    q.ra = wrap(int64_t{rowsum} - p.K * int64_t{q.az});
    // Symmetric int8 weights (no zero point: the int8-dynamic artifacts) map to all zeros: one
    // shared zero buffer instead of filling N values per product per decoded token.
    const size_t padded = static_cast<size_t>(panels * v.nr);
    if (p.b_signed && (!p.b_zp || (!p.b_zp_per_col && p.b_zp[0] == 0))) {
      if (zeros.size() < padded) zeros.resize(padded, 0);
      q.bzp = nullptr;  // set below, once `zeros` has stopped growing
    } else {
      q.bz.assign(padded, 0);
      for (int64_t j = 0; j < p.N; ++j) q.bz[j] = mapped_b_zp(p, j);
      q.bzp = q.bz.data();
    }
    q.first_task = tasks;
    tasks += panels;
    ops += 2.0 * p.N * p.K;
  }
  for (size_t i = 0; i < n; ++i)
    if (!prep[i].bzp) prep[i].bzp = zeros.data();
  // Everything the loop reads, behind one pointer: the lambda then fits std::function's
  // inline storage (no heap allocation per call; decode makes ~50 of these a token).
  struct Loop {
    const Variant& v;
    const QGemmArgs* args;
    size_t n;
    const Prepared* pr;  // not `prep`: that names another vector on a worker thread
    const QColumnsDone* done;
  } loop{v, args, n, prep.data(), done};
  auto run = [l = &loop](int64_t t0, int64_t t1) {
    const Variant& v = l->v;
    const QGemmArgs* args = l->args;
    const size_t n = l->n;
    const Prepared* pr = l->pr;
    const QColumnsDone* done = l->done;
    size_t i = 0;
    for (int64_t t = t0; t < t1; ++t) {
      while (i + 1 < n && t >= pr[i + 1].first_task) ++i;
      const QGemmArgs& p = args[i];
      const Prepared& q = pr[i];
      const int64_t pi = t - q.first_task, j0 = pi * v.nr;
      const int64_t nr = std::min<int64_t>(v.nr, p.N - j0);
      prefetch_columns(p.packed_b->colsum.data() + j0, nr);
      if (p.out_scale && p.out_scale_per_col) prefetch_columns(p.out_scale + j0, nr);
      if (p.out_bias) prefetch_columns(p.out_bias + j0, nr);
      const unsigned char* bp = p.packed_b->data.data() + pi * p.packed_b->panel_bytes;
      if (p.Cf && v.panel_f32 && done) {  // the epilogue fused in: float results, no int32 round trip
        v.panel_f32(q.Kp, q.a.data(), bp, nr, q.az, q.ra, q.bzp + j0, p.packed_b->colsum.data() + j0, p.out_a_scale,
                    p.out_scale + (p.out_scale_per_col ? j0 : 0), p.out_scale_per_col,
                    p.out_bias ? p.out_bias + j0 : nullptr, p.Cf + j0);
        continue;
      }
      v.panel(1, q.Kp, q.a.data(), bp, p.C + j0, p.ldc, nr, &q.az, &q.ra, q.bzp + j0, p.packed_b->colsum.data() + j0);
      if (done) (*done)(i, j0, j0 + nr);
    }
  };
  if (pool && tasks > 1 && ops > 2e5) pool->parallel_for(tasks, 1, run);
  else run(0, tasks);
}

}  // namespace

bool qgemm_batch(const QGemmArgs* args, size_t n, ThreadPool* pool, const QColumnsDone* done) {
  bool together = true;
  for (size_t i = 0; i < n; ++i)
    together = together && args[i].M == 1 && args[i].N > 0 && args[i].K > 0 && packed_for(args[i]);
  if (together && n > 0) {
    qgemv_packed(args, n, pool, done);
    return true;
  }
  for (size_t i = 0; i < n; ++i) qgemm(args[i], pool);
  return false;
}

void qgemm(const QGemmArgs& p, ThreadPool* pool) {
  const int64_t M = p.M, N = p.N, K = p.K;
  if (M <= 0 || N <= 0) return;
  if (K == 0) {
    for (int64_t m = 0; m < M; ++m) std::memset(p.C + m * p.ldc, 0, N * sizeof(int32_t));
    return;
  }
  const QPackedB* pk = packed_for(p) ? p.packed_b : nullptr;
  if (M == 1 && pk) return qgemv_packed(&p, 1, pool);  // decode over packed panels

  const Variant& v = kVariants[static_cast<int>(qgemm_active_isa())];
  const auto* A = static_cast<const uint8_t*>(p.A);
  const auto* B = static_cast<const uint8_t*>(p.B);
  // Map to u8 x s8: int8 A -> A + 128 (XOR 0x80), uint8 B -> B - 128; zero points follow.
  const uint8_t a_flip = p.a_signed ? 0x80 : 0, b_flip = p.b_signed ? 0 : 0x80;
  const int threads = pool ? pool->size() : 1;

  thread_local std::vector<int32_t> az, ra, bz, rowsum;
  az.resize(M);
  ra.resize(M);
  rowsum.resize(M);
  bz.resize(N);
  for (int64_t m = 0; m < M; ++m) az[m] = mapped_a_zp(p, m);
  for (int64_t n = 0; n < N; ++n) bz[n] = mapped_b_zp(p, n);
  const bool any_az = std::any_of(az.begin(), az.end(), [](int32_t z) { return z != 0; });

  if (M == 1 && !pk) {
    // Decode: stream B once, unpacked; threads take disjoint column ranges.
    thread_local std::vector<uint8_t> a;
    thread_local std::vector<int32_t> colsum;
    a.resize(K);
    if (any_az) colsum.resize(N);
    int64_t rs = 0;
    for (int64_t k = 0; k < K; ++k) rs += a[k] = static_cast<uint8_t>(A[k] ^ a_flip);
    ra[0] = wrap(rs - K * int64_t{az[0]});
    const int64_t chunks = (pool && K * N > 65536) ? std::min<int64_t>(threads, (N + 63) / 64) : 1;
    const int64_t cols = ((N + chunks - 1) / chunks + 63) / 64 * 64;
    const uint8_t* ap = a.data();
    int32_t* cs = any_az ? colsum.data() : nullptr;
    const int32_t a0 = az[0], r0 = ra[0];
    const int32_t* bzd = bz.data();
    auto run = [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t j0 = c * cols, j1 = std::min(N, j0 + cols);
        if (j0 >= j1) continue;
        v.gemv(K, ap, B + j0, p.ldb, b_flip, j1 - j0, p.C + j0, cs ? cs + j0 : nullptr);
        for (int64_t j = j0; j < j1; ++j)
          p.C[j] = wrap(int64_t{p.C[j]} - int64_t{r0} * bzd[j] - (cs ? int64_t{a0} * cs[j] : 0));
      }
    };
    if (chunks > 1) pool->parallel_for(chunks, 1, run);
    else run(0, chunks);
    return;
  }

  // Prepared A (variant layout, K padded to the k-group) and its row sums.
  const int64_t Kp = (K + v.kg - 1) / v.kg * v.kg;
  thread_local std::vector<uint8_t> ap;
  ap.resize(static_cast<size_t>(M * Kp * v.a_elem));
  v.prep_a(M, K, A, p.lda, a_flip, ap.data(), Kp, rowsum.data());
  for (int64_t m = 0; m < M; ++m) ra[m] = wrap(int64_t{rowsum[m]} - K * int64_t{az[m]});

  const int64_t nr = v.nr;
  const int64_t panels = (N + nr - 1) / nr;
  // Rows are split too when there are too few panels to keep every thread busy.
  int64_t row_chunks = 1;
  if (pool && panels < 2 * threads && M >= 2 * v.mr) row_chunks = std::min<int64_t>((2 * threads + panels - 1) / panels, M / v.mr);
  const int64_t rows = ((M + row_chunks - 1) / row_chunks + v.mr - 1) / v.mr * v.mr;
  row_chunks = (M + rows - 1) / rows;
  const uint8_t* apd = ap.data();
  const int32_t* azd = az.data();
  const int32_t* rad = ra.data();
  const int32_t* bzd = bz.data();
  auto run = [&](int64_t t0, int64_t t1) {
    thread_local std::vector<uint8_t> packed;
    if (!pk) packed.resize(static_cast<size_t>(Kp * nr * v.b_elem));
    alignas(64) int32_t colsum[64], bzp[64];
    int64_t packed_panel = -1;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t pi = t / row_chunks, rc = t % row_chunks;
      const int64_t j0 = pi * nr, width = std::min(nr, N - j0);
      const void* bpanel = pk ? pk->data.data() + pi * pk->panel_bytes : packed.data();
      const int32_t* cs = pk ? pk->colsum.data() + j0 : colsum;
      if (pi != packed_panel) {
        if (!pk) v.pack_b(K, B + j0, p.ldb, b_flip, width, packed.data(), colsum);
        for (int64_t j = 0; j < nr; ++j) bzp[j] = j < width ? bzd[j0 + j] : 0;
        packed_panel = pi;
      }
      const int64_t m0 = rc * rows, m1 = std::min(M, m0 + rows);
      v.panel(m1 - m0, Kp, apd + m0 * Kp * v.a_elem, bpanel, p.C + m0 * p.ldc + j0, p.ldc, width, azd + m0, rad + m0,
              bzp, cs);
    }
  };
  const int64_t tasks = panels * row_chunks;
  const double ops = 2.0 * M * N * K;
  if (pool && tasks > 1 && ops > 2e5) pool->parallel_for(tasks, 1, run);
  else run(0, tasks);
}

}  // namespace llmc::rt
