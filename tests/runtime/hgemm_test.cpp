// hgemm (every ISA variant this CPU has) against float64 loops over the float16-rounded inputs,
// and its float16 <-> float32 conversions against kernel_util's exact scalar ones.
#include <catch2/catch.hpp>
#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/sgemm.h"

using namespace llmc;
using namespace llmc::rt;

namespace {

const Isa kIsas[] = {Isa::kPortable, Isa::kAvx2, Isa::kAvx512};

// Random float16 values in [-1, 1] (as bits).
std::vector<uint16_t> random_halfs(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = float_to_half(u(rng));
  return v;
}

// Tolerance, with exact = sum_k a_ik b_kj in float64 over the float16 inputs and
// mag = sum_k |a_ik b_kj|:
//   float32 accumulation: |acc - exact| <= 2e-5 * mag (K <= 513 terms; sgemm's test uses 1e-5)
//   float16 output:       one rounding, <= 2^-11 |acc| (rel 1e-3 allowed) or 2^-25 absolute
//                         for subnormal results.
double tolerance(double exact, double mag, bool half_out) {
  return 2e-5 * mag + (half_out ? 1e-3 * std::fabs(exact) + 6e-8 : 1e-7);
}

// pack: B pre-packed by hgemm_pack_b (read by the M == 1 path instead of B).
void check_hgemm(int64_t M, int64_t N, int64_t K, ThreadPool* pool, std::mt19937& rng, bool pack = false) {
  const int64_t lda = K + 3, ldb = N + 5, ldc = N + 1;  // strided, to catch stride mix-ups
  auto A = random_halfs(M * lda, rng), B = random_halfs(K * ldb, rng), C = random_halfs(M * ldc, rng);
  const auto C0 = C;
  std::vector<float> Af(M * lda), Cf(M * ldc, 7.f);
  for (size_t i = 0; i < Af.size(); ++i) Af[i] = half_to_float(A[i]);
  const auto packed = pack ? hgemm_pack_b(B.data(), K, N, ldb, pool) : nullptr;
  hgemm(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, pool, packed.get());
  hgemm_f32(M, N, K, Af.data(), lda, B.data(), ldb, Cf.data(), ldc, pool);
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double exact = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = double(half_to_float(A[i * lda + k])) * half_to_float(B[k * ldb + j]);
        exact += p;
        mag += std::fabs(p);
      }
      INFO("M=" << M << " N=" << N << " K=" << K << " packed=" << pack << " i=" << i << " j=" << j << " isa=" << isa_name(active_isa()));
      REQUIRE(std::fabs(half_to_float(C[i * ldc + j]) - exact) <= tolerance(exact, mag, true));
      REQUIRE(std::fabs(Cf[i * ldc + j] - exact) <= tolerance(exact, mag, false));
    }
    // Padding between rows of C is never written.
    REQUIRE(C[i * ldc + N] == C0[i * ldc + N]);
    REQUIRE(Cf[i * ldc + N] == 7.f);
  }
}

}  // namespace

TEST_CASE("float16 conversions match kernel_util's for every ISA variant", "[runtime][hgemm]") {
  // Every float16 bit pattern, widened.
  std::vector<uint16_t> all(65536);
  for (int i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  // Floats around every rounding boundary: ties, overflow to inf, subnormals, NaN.
  std::vector<float> fs = {0.f, -0.f, 65504.f, 65519.f, 65520.f, -65520.f, 1e9f, 5.96e-8f, 2.98e-8f, 2.99e-8f,
                           1e-10f, -3e-5f, 6.1e-5f, 1.00048828125f, 1.00146484375f,
                           std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  std::mt19937 rng(11);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 20000; ++i) {
    // Random mantissa and sign, exponent swept over float16's range and beyond: 2^-30 .. 2^19.
    const float f = std::bit_cast<float>((bits(rng) & 0x807fffffu) | 0x3f800000u);
    fs.push_back(std::ldexp(f, (i % 50) - 30));
  }
  for (Isa isa : kIsas) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    INFO("isa=" << isa_name(isa));
    for (int64_t n : {int64_t{65536}, int64_t{65536 - 7}}) {  // vector body and scalar tail
      std::vector<float> f(n);
      halfs_to_floats(all.data(), f.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const float want = half_to_float(all[i]);
        INFO("half bits=" << i);
        if (std::isnan(want)) REQUIRE(std::isnan(f[i]));
        else REQUIRE(std::bit_cast<uint32_t>(f[i]) == std::bit_cast<uint32_t>(want));
      }
    }
    std::vector<uint16_t> h(fs.size());
    floats_to_halfs(fs.data(), h.data(), static_cast<int64_t>(fs.size()));
    for (size_t i = 0; i < fs.size(); ++i) {
      INFO("float=" << fs[i]);
      REQUIRE(h[i] == float_to_half(fs[i]));
    }
    const float nan = std::numeric_limits<float>::quiet_NaN();
    uint16_t hn;
    floats_to_halfs(&nan, &hn, 1);
    REQUIRE(std::isnan(half_to_float(hn)));
  }
  force_isa(detected_isa());
}

TEST_CASE("hgemm matches float64 on odd sizes for every ISA variant", "[runtime][hgemm]") {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  const int sizes[] = {1, 3, 17, 63, 257};
  for (Isa isa : kIsas) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int M : sizes)
      for (int N : sizes)
        for (int K : {1, 17, 257, 300}) {
          if (M * N * K > 257 * 257 * 17 && M > 1) continue;  // keep the test quick
          check_hgemm(M, N, K, &pool, rng);
        }
    check_hgemm(64, 300, 513, &pool, rng);    // several K blocks, several panel groups
    check_hgemm(1, 2000, 300, &pool, rng);    // decode path, row-sliced over threads
    check_hgemm(1, 2000, 300, nullptr, rng);  // decode path, one thread
    check_hgemm(1, 10000, 9, &pool, rng);     // second slice holds a single row
    check_hgemm(1, 5000, 63, &pool, rng);     // 8-row groups plus leftover rows, tail columns
    check_hgemm(1, 32768 + 33, 25, nullptr, rng);  // two column blocks of the GEMV
    for (int N : {16, 32, 48, 64})                 // one head of a value cache: y in registers
      for (int K : {1, 2, 7, 160}) check_hgemm(1, N, K, nullptr, rng);
    check_hgemm(2, 63, 0, &pool, rng);        // K == 0: zeros
  }
  force_isa(detected_isa());
}

TEST_CASE("hgemm over pre-packed B matches float64 for every ISA variant", "[runtime][hgemm]") {
  std::mt19937 rng(9);
  ThreadPool pool(2);
  for (Isa isa : kIsas) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int N : {1, 3, 17, 31, 32, 33, 63, 257})
      for (int K : {1, 2, 3, 17, 63, 257}) check_hgemm(1, N, K, N % 2 ? &pool : nullptr, rng, true);
    check_hgemm(1, 64 * 32 * 2 + 5, 300, &pool, rng, true);    // panels split over threads
    check_hgemm(1, 64 * 32 * 2 + 5, 300, nullptr, rng, true);  // one thread: three 64-panel chunks
    // Prefill widens the packed panels: several K blocks (256), N not a multiple of 32.
    check_hgemm(7, 100, 33, &pool, rng, true);
    check_hgemm(40, 77, 600, &pool, rng, true);
    check_hgemm(3, 1000, 17, nullptr, rng, true);
  }
  force_isa(detected_isa());
}

TEST_CASE("hgemm rounds overflow to inf and keeps subnormal results", "[runtime][hgemm]") {
  ThreadPool pool(2);
  for (Isa isa : kIsas) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int64_t M : {1, 5}) {
      const int64_t K = 2, N = 33;
      std::vector<uint16_t> A(M * K, float_to_half(256.f)), B(K * N, float_to_half(256.f)), C(M * N);
      B[1] = float_to_half(-256.f);   // column 1: 256*256 - 256*256 = 0
      hgemm(M, N, K, A.data(), K, B.data(), N, C.data(), N, &pool);
      for (int64_t i = 0; i < M; ++i) {
        REQUIRE(std::isinf(half_to_float(C[i * N])));  // 131072 > 65504
        REQUIRE(half_to_float(C[i * N + 1]) == 0.f);
      }
      // Tiny products land in float16's subnormal range, rounded once.
      std::vector<uint16_t> a2(M * K, float_to_half(1e-3f)), b2(K * N, float_to_half(1e-3f));
      hgemm(M, N, K, a2.data(), K, b2.data(), N, C.data(), N, &pool);
      const double exact = 2.0 * double(half_to_float(a2[0])) * half_to_float(b2[0]);
      for (int64_t i = 0; i < M * N; ++i) REQUIRE(C[i] == float_to_half(static_cast<float>(exact)));
    }
  }
  force_isa(detected_isa());
}

TEST_CASE("hgemv_bt matches float64 for every ISA variant", "[runtime][hgemm]") {
  std::mt19937 rng(9);
  for (Isa isa : kIsas) {
    if (isa > detected_isa()) continue;
    force_isa(isa);
    for (int64_t N : {1, 3, 8, 17, 63})
      for (int64_t K : {1, 3, 16, 17, 63, 64, 128, 257}) {  // 16, 64, 128: the eight-row path
        const int64_t ld = K + 2;
        auto Bt = random_halfs(N * ld, rng), ah = random_halfs(K, rng);
        std::vector<float> a(K), y(N + 1, 5.f);
        for (int64_t k = 0; k < K; ++k) a[k] = half_to_float(ah[k]);
        hgemv_bt(N, K, a.data(), Bt.data(), ld, y.data());
        for (int64_t n = 0; n < N; ++n) {
          double exact = 0, mag = 0;
          for (int64_t k = 0; k < K; ++k) {
            const double p = double(a[k]) * half_to_float(Bt[n * ld + k]);
            exact += p;
            mag += std::fabs(p);
          }
          INFO("N=" << N << " K=" << K << " n=" << n << " isa=" << isa_name(isa));
          REQUIRE(std::fabs(y[n] - exact) <= tolerance(exact, mag, false));
        }
        REQUIRE(y[N] == 5.f);
      }
  }
  force_isa(detected_isa());
}
