// sgemm (every ISA variant this CPU has) and the MatMul/Gemm kernels (float32 and float16)
// against float64 loops.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"
#include "runtime/kernels/sgemm.h"
#include "tests/support/run_node.h"

using namespace llmc;
using namespace llmc::rt;
using namespace llmc::testing;

namespace {

// |got - exact| <= 1e-5 * sum_k |a_ik b_kj| + 1e-7: float32 accumulation error bound.
// pack: B pre-packed by sgemm_pack_b (for the variant `pack_isa`, the active one by default;
// another one must be ignored and B read directly).
void check_gemm(int64_t M, int64_t N, int64_t K, bool accumulate, ThreadPool* pool, std::mt19937& rng,
                bool pack = false, int pack_isa = -1) {
  const int64_t lda = K + 3, ldb = N + 5, ldc = N + 1;  // strided, to catch stride mix-ups
  auto A = random_floats(M * lda, rng), B = random_floats(K * ldb, rng), C = random_floats(M * ldc, rng);
  auto C0 = C;
  std::unique_ptr<SPackedB> packed;
  if (pack) {
    const Isa active = active_isa();
    if (pack_isa >= 0) force_isa(static_cast<Isa>(pack_isa));
    packed = sgemm_pack_b(B.data(), K, N, ldb, pool, true);  // heap memory: release must leave it alone
    force_isa(active);
  }
  sgemm(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, accumulate, pool, packed.get());
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double exact = accumulate ? C0[i * ldc + j] : 0.0, mag = std::fabs(exact);
      for (int64_t k = 0; k < K; ++k) {
        exact += double(A[i * lda + k]) * B[k * ldb + j];
        mag += std::fabs(double(A[i * lda + k]) * B[k * ldb + j]);
      }
      INFO("M=" << M << " N=" << N << " K=" << K << " packed=" << pack << " i=" << i << " j=" << j
                 << " isa=" << isa_name(active_isa()));
      REQUIRE(std::fabs(C[i * ldc + j] - exact) <= 1e-5 * mag + 1e-7);
    }
  // Padding between rows of C is never written.
  for (int64_t i = 0; i < M; ++i) REQUIRE(C[i * ldc + N] == C0[i * ldc + N]);
}

}  // namespace

TEST_CASE("sgemm matches float64 on odd sizes for every ISA variant", "[runtime][sgemm]") {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  const int sizes[] = {1, 3, 17, 63, 257};
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int M : sizes)
      for (int N : sizes)
        for (int K : {1, 17, 257, 300}) {
          if (M * N * K > 257 * 257 * 17 && M > 1) continue;  // keep the test quick
          check_gemm(M, N, K, false, &pool, rng);
        }
    check_gemm(64, 300, 513, true, &pool, rng);  // several K blocks, accumulate
    check_gemm(1, 2000, 300, true, &pool, rng);  // decode path, threaded
    check_gemm(1, 2000, 300, false, nullptr, rng);
    for (int N : {16, 32, 48, 64})  // decode over at most four vectors of columns (attention's values)
      for (int K : {1, 2, 17, 160}) check_gemm(1, N, K, false, K % 2 ? &pool : nullptr, rng);
  }
  force_isa(detected_isa());
}

TEST_CASE("sgemm over pre-packed B matches float64 for every ISA variant", "[runtime][sgemm]") {
  std::mt19937 rng(8);
  ThreadPool pool(2);
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int M : {1, 3, 17})
      for (int N : {1, 15, 17, 32, 33, 257})
        for (int K : {1, 2, 17, 65, 300}) check_gemm(M, N, K, (M + N) % 2, N % 2 ? &pool : nullptr, rng, true);
    check_gemm(40, 100, 1700, false, &pool, rng, true);  // three K blocks of 768 over packed panels
    check_gemm(1, 2100, 70, true, nullptr, rng, true);   // one thread: several 2048-column chunks
    check_gemm(1, 2100, 70, false, &pool, rng, true);
    for (Isa other : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512})  // packed for another variant: ignored
      if (other != isa && other <= detected_isa()) check_gemm(9, 70, 33, false, &pool, rng, true, static_cast<int>(other));
  }
  force_isa(detected_isa());
}

TEST_CASE("sgemv_bt (dot products with B's rows) matches float64 for every ISA variant", "[runtime][sgemm]") {
  std::mt19937 rng(9);
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int N : {1, 3, 4, 5, 9, 160})
      for (int K : {1, 15, 16, 17, 64, 100}) {
        const int64_t ldb = K + 3;  // strided rows (a padded cache)
        auto x = random_floats(K, rng), B = random_floats(N * ldb, rng), y = random_floats(N + 1, rng);
        const float guard = y[N];
        sgemv_bt(N, K, x.data(), B.data(), ldb, y.data());
        for (int n = 0; n < N; ++n) {
          double exact = 0, mag = 0;
          for (int k = 0; k < K; ++k) {
            exact += double(x[k]) * B[n * ldb + k];
            mag += std::fabs(double(x[k]) * B[n * ldb + k]);
          }
          INFO("N=" << N << " K=" << K << " n=" << n << " isa=" << isa_name(isa));
          REQUIRE(std::fabs(y[n] - exact) <= 1e-6 * mag + 1e-7);
        }
        REQUIRE(y[N] == guard);  // nothing past N is written
      }
  }
  force_isa(detected_isa());
}

TEST_CASE("MatMul kernel: 1-D promotion and batch broadcasting", "[runtime][matmul]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(3);
  struct Case { std::vector<int64_t> a, b, y; };
  const Case cases[] = {
      {{3}, {3}, {}}, {{17}, {17, 5}, {5}}, {{4, 17}, {17}, {4}}, {{2, 3, 4, 17}, {17, 63}, {2, 3, 4, 63}},
      {{2, 1, 5, 7}, {3, 7, 9}, {2, 3, 5, 9}}, {{1, 63, 1}, {4, 1, 257}, {4, 63, 257}},
  };
  for (const auto& c : cases) {
    auto A = random_floats(shape_numel(c.a), rng), B = random_floats(shape_numel(c.b), rng);
    auto out = run_node(r, make_node("MatMul", 2, 1), {make_value(DType::kF32, c.a, A), make_value(DType::kF32, c.b, B)}, 17);
    REQUIRE(out.is_ok());
    const Value& y = out.value()[0];
    REQUIRE(y.shape() == c.y);
    // Reference: numpy semantics spelled out with promoted shapes.
    auto as = c.a, bs = c.b;
    if (as.size() == 1) as.insert(as.begin(), 1);
    if (bs.size() == 1) bs.push_back(1);
    const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
    const size_t rank = std::max(as.size(), bs.size());
    while (as.size() < rank) as.insert(as.begin(), 1);
    while (bs.size() < rank) bs.insert(bs.begin(), 1);
    std::vector<int64_t> batch(rank - 2);
    for (size_t d = 0; d + 2 < rank; ++d) batch[d] = std::max(as[d], bs[d]);
    const int64_t nb = shape_numel(batch);
    for (int64_t t = 0; t < nb; ++t) {
      int64_t ai = 0, bi = 0, rem = t;
      std::vector<int64_t> idx(batch.size());
      for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) { idx[d] = rem % batch[d]; rem /= batch[d]; }
      for (size_t d = 0; d < batch.size(); ++d) {
        ai = ai * as[d] + (as[d] == 1 ? 0 : idx[d]);
        bi = bi * bs[d] + (bs[d] == 1 ? 0 : idx[d]);
      }
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k) s += double(A[ai * M * K + i * K + k]) * B[bi * K * N + k * N + j];
          REQUIRE(std::fabs(y.data<float>()[t * M * N + i * N + j] - s) <= 1e-5 * (1 + std::fabs(s)) * K);
        }
    }
  }
  auto bad = run_node(r, make_node("MatMul", 2, 1),
                      {make_value(DType::kF32, {2, 3}, std::vector<float>(6)), make_value(DType::kF32, {4, 2}, std::vector<float>(8))}, 17);
  CHECK(!bad.is_ok());
}

TEST_CASE("Gemm kernel: transposes, alpha, beta, broadcast C", "[runtime][matmul]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(5);
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (std::vector<int64_t> cshape : {std::vector<int64_t>{}, {17}, {3, 1}, {3, 17}}) {
        const int64_t M = 3, K = 63, N = 17;
        auto A = random_floats(M * K, rng), B = random_floats(K * N, rng), C = random_floats(std::max<int64_t>(1, shape_numel(cshape)), rng);
        std::vector<Attribute> attrs{Attribute::make_int("transA", ta), Attribute::make_int("transB", tb),
                                     Attribute::make_float("alpha", 0.5f), Attribute::make_float("beta", -2.f)};
        auto out = run_node(r, make_node("Gemm", 3, 1, attrs),
                            {make_value(DType::kF32, ta ? std::vector<int64_t>{K, M} : std::vector<int64_t>{M, K}, A),
                             make_value(DType::kF32, tb ? std::vector<int64_t>{N, K} : std::vector<int64_t>{K, N}, B),
                             make_value(DType::kF32, cshape, C)}, 13);
        REQUIRE(out.is_ok());
        const float* y = out.value()[0].data<float>();
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            double s = 0;
            for (int64_t k = 0; k < K; ++k)
              s += double(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
            double c = cshape.empty() ? C[0] : cshape.size() == 1 ? C[j] : cshape[1] == 1 ? C[i] : C[i * N + j];
            REQUIRE(std::fabs(y[i * N + j] - (0.5 * s - 2.0 * c)) < 1e-4);
          }
      }
}

namespace {

// Random float16 values in [-1, 1] as bits, and their float values.
std::vector<uint16_t> random_halfs(size_t n, std::mt19937& rng, std::vector<double>* values = nullptr) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = float_to_half(u(rng));
  if (values) {
    values->resize(n);
    for (size_t i = 0; i < n; ++i) (*values)[i] = half_to_float(v[i]);
  }
  return v;
}

// Float16 output tolerance: one rounding of the float32 result (rel 1e-3 allowed, 2^-11 exact)
// plus float32 accumulation (2e-5 * sum |products|), plus float16's subnormal spacing.
void require_half_close(uint16_t got, double exact, double mag) {
  REQUIRE(std::fabs(half_to_float(got) - exact) <= 1e-3 * std::fabs(exact) + 2e-5 * mag + 6e-8);
}

}  // namespace

TEST_CASE("MatMul float16: 1-D promotion, batch broadcasting, transposed B", "[runtime][matmul][hgemm]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(13);
  struct Case { std::vector<int64_t> a, b, y; };
  const Case cases[] = {
      {{3}, {3}, {}}, {{17}, {17, 5}, {5}}, {{4, 17}, {17}, {4}}, {{2, 3, 4, 17}, {17, 63}, {2, 3, 4, 63}},
      {{2, 1, 5, 7}, {3, 7, 9}, {2, 3, 5, 9}}, {{1, 63, 1}, {4, 1, 257}, {4, 63, 257}},
      {{1, 257}, {257, 63}, {1, 63}}, {{3, 1, 63}, {3, 63, 257}, {3, 1, 257}}, {{257, 3}, {3, 1}, {257, 1}},
  };
  for (int trans = 0; trans < 2; ++trans)
    for (const auto& c : cases) {
      if (trans && c.b.size() < 2) continue;
      std::vector<double> Ad, Bd;
      auto A = random_halfs(shape_numel(c.a), rng, &Ad), B = random_halfs(shape_numel(c.b), rng, &Bd);
      auto as = c.a, bs = c.b;
      if (as.size() == 1) as.insert(as.begin(), 1);
      if (bs.size() == 1) bs.push_back(1);
      const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
      // Transposed B: store B's last two axes swapped and set the Session's fold flag.
      std::vector<uint16_t> Bstore = B;
      std::vector<int64_t> bshape = c.b;
      std::vector<Attribute> attrs;
      if (trans) {
        std::swap(bshape[bshape.size() - 1], bshape[bshape.size() - 2]);
        for (int64_t t = 0; t < shape_numel(c.b) / (K * N); ++t)
          for (int64_t k = 0; k < K; ++k)
            for (int64_t n = 0; n < N; ++n) Bstore[t * K * N + n * K + k] = B[t * K * N + k * N + n];
        attrs.push_back(Attribute::make_int(kMatMulTransB, 1));
      }
      auto out = run_node(r, make_node("MatMul", 2, 1, attrs),
                          {make_value(DType::kF16, c.a, A), make_value(DType::kF16, bshape, Bstore)}, 17);
      REQUIRE(out.is_ok());
      const Value& y = out.value()[0];
      REQUIRE(y.dtype() == DType::kF16);
      REQUIRE(y.shape() == c.y);
      const size_t rank = std::max(as.size(), bs.size());
      while (as.size() < rank) as.insert(as.begin(), 1);
      while (bs.size() < rank) bs.insert(bs.begin(), 1);
      std::vector<int64_t> batch(rank - 2);
      for (size_t d = 0; d + 2 < rank; ++d) batch[d] = std::max(as[d], bs[d]);
      for (int64_t t = 0; t < shape_numel(batch); ++t) {
        int64_t ai = 0, bi = 0, rem = t;
        std::vector<int64_t> idx(batch.size());
        for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) { idx[d] = rem % batch[d]; rem /= batch[d]; }
        for (size_t d = 0; d < batch.size(); ++d) {
          ai = ai * as[d] + (as[d] == 1 ? 0 : idx[d]);
          bi = bi * bs[d] + (bs[d] == 1 ? 0 : idx[d]);
        }
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            double s = 0, mag = 0;
            for (int64_t k = 0; k < K; ++k) {
              const double p = Ad[ai * M * K + i * K + k] * Bd[bi * K * N + k * N + j];
              s += p;
              mag += std::fabs(p);
            }
            INFO("a=" << shape_str(c.a) << " b=" << shape_str(c.b) << " trans=" << trans);
            require_half_close(y.data<uint16_t>()[t * M * N + i * N + j], s, mag);
          }
      }
    }
  auto h = [](std::vector<int64_t> s) { return make_value(DType::kF16, s, std::vector<uint16_t>(shape_numel(s))); };
  auto f = [](std::vector<int64_t> s) { return make_value(DType::kF32, s, std::vector<float>(shape_numel(s))); };
  CHECK(!run_node(r, make_node("MatMul", 2, 1), {h({2, 3}), f({3, 4})}, 17).is_ok());  // mixed dtypes
  CHECK(!run_node(r, make_node("MatMul", 2, 1), {f({2, 3}), h({3, 4})}, 17).is_ok());
  CHECK(!run_node(r, make_node("MatMul", 2, 1), {h({2, 3}), h({4, 2})}, 17).is_ok());  // inner dims
  CHECK(!run_node(r, make_node("MatMul", 2, 1), {h({2, 2, 3}), h({3, 3, 4})}, 17).is_ok());  // batch
  CHECK(!run_node(r, make_node("Gemm", 2, 1), {h({2, 3}), f({3, 4})}, 13).is_ok());
  CHECK(!run_node(r, make_node("Gemm", 3, 1), {h({2, 3}), h({3, 4}), f({4})}, 13).is_ok());
}

TEST_CASE("Gemm float16: transposes, alpha, beta, broadcast C", "[runtime][matmul][hgemm]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(17);
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (std::vector<int64_t> cshape : {std::vector<int64_t>{}, {17}, {3, 1}, {3, 17}})
        for (int64_t M : {1, 3}) {
          const int64_t K = 63, N = 17;
          if (cshape.size() == 2) cshape[0] = M;
          std::vector<double> Ad, Bd, Cd;
          auto A = random_halfs(M * K, rng, &Ad), B = random_halfs(K * N, rng, &Bd);
          auto C = random_halfs(std::max<int64_t>(1, shape_numel(cshape)), rng, &Cd);
          std::vector<Attribute> attrs{Attribute::make_int("transA", ta), Attribute::make_int("transB", tb),
                                       Attribute::make_float("alpha", 0.5f), Attribute::make_float("beta", -2.f)};
          auto out = run_node(r, make_node("Gemm", 3, 1, attrs),
                              {make_value(DType::kF16, ta ? std::vector<int64_t>{K, M} : std::vector<int64_t>{M, K}, A),
                               make_value(DType::kF16, tb ? std::vector<int64_t>{N, K} : std::vector<int64_t>{K, N}, B),
                               make_value(DType::kF16, cshape, C)}, 13);
          REQUIRE(out.is_ok());
          REQUIRE(out.value()[0].dtype() == DType::kF16);
          const uint16_t* y = out.value()[0].data<uint16_t>();
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) {
              double s = 0, mag = 0;
              for (int64_t k = 0; k < K; ++k) {
                const double p = (ta ? Ad[k * M + i] : Ad[i * K + k]) * (tb ? Bd[j * K + k] : Bd[k * N + j]);
                s += p;
                mag += std::fabs(p);
              }
              const double c = cshape.empty() ? Cd[0] : cshape.size() == 1 ? Cd[j] : cshape[1] == 1 ? Cd[i] : Cd[i * N + j];
              require_half_close(y[i * N + j], 0.5 * s - 2.0 * c, 0.5 * mag + 2.0 * std::fabs(c));
            }
        }
}
