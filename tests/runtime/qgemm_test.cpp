// qgemm (every ISA variant this CPU has) exactly against an int64 triple loop, and the integer
// MatMul kernels (MatMulInteger, QLinearMatMul, com.microsoft DynamicQuantizeMatMul and
// MatMulIntegerToFloat) against exact / float64 references.
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/qgemm.h"
#include "runtime/kernels/register.h"
#include "tests/support/run_node.h"

using namespace llmc;
using namespace llmc::rt;
using namespace llmc::testing;

namespace {

// Random bytes with ~1/8 of them at the extremes (0/255, i.e. -128/127 when read as int8).
std::vector<uint8_t> random_bytes(size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> u(0, 255), pick(0, 15);
  std::vector<uint8_t> v(n);
  for (auto& x : v) {
    const int p = pick(rng);
    x = static_cast<uint8_t>(p == 0 ? 0 : p == 1 ? 255 : p == 2 ? 127 : p == 3 ? 128 : u(rng));
  }
  return v;
}

// zp_mode: 0 none, 1 scalar, 2 per row / per column; values within each operand's type range.
// pack: B pre-packed by qgemm_pack_b for the variant `pack_isa` (the active one by default;
// another one must be ignored and B read directly).
void check_qgemm(int64_t M, int64_t N, int64_t K, bool a_signed, bool b_signed, int zp_mode, ThreadPool* pool,
                 std::mt19937& rng, bool pack = false, int pack_isa = -1) {
  const int64_t lda = K + 3, ldb = N + 5, ldc = N + 1;  // strided, to catch stride mix-ups
  auto A = random_bytes(M * lda, rng), B = random_bytes(K * ldb, rng);
  std::uniform_int_distribution<int> ua(a_signed ? -128 : 0, a_signed ? 127 : 255);
  std::uniform_int_distribution<int> ub(b_signed ? -128 : 0, b_signed ? 127 : 255);
  std::vector<int32_t> az(M), bz(N);
  for (auto& z : az) z = ua(rng);
  for (auto& z : bz) z = ub(rng);
  if (zp_mode == 1 && M > 0) az[0] = a_signed ? -128 : 255;  // extreme zero points too
  QGemmArgs p;
  p.M = M;
  p.N = N;
  p.K = K;
  p.A = A.data();
  p.lda = lda;
  p.a_signed = a_signed;
  p.B = B.data();
  p.ldb = ldb;
  p.b_signed = b_signed;
  if (zp_mode > 0) {
    p.a_zp = az.data();
    p.b_zp = bz.data();
    p.a_zp_per_row = p.b_zp_per_col = zp_mode == 2;
  }
  p.ldc = ldc;
  std::vector<int32_t> want(M * ldc, -7), got(M * ldc, -7);
  p.C = want.data();
  qgemm_reference(p);
  p.C = got.data();
  std::unique_ptr<QPackedB> packed;
  if (pack) {
    const QIsa active = qgemm_active_isa();
    if (pack_isa >= 0) qgemm_force_isa(static_cast<QIsa>(pack_isa));
    packed = qgemm_pack_b(B.data(), K, N, ldb, b_signed, pool);
    qgemm_force_isa(active);
    p.packed_b = packed.get();
  }
  qgemm(p, pool);
  // One assertion per product (millions otherwise), naming the first cell that differs.
  int64_t bad_i = -1, bad_j = -1;
  for (int64_t i = 0; i < M && bad_i < 0; ++i)
    for (int64_t j = 0; j <= N; ++j)  // j == N: the padding between rows is never written
      if (got[i * ldc + j] != want[i * ldc + j]) {
        bad_i = i, bad_j = j;
        break;
      }
  INFO("M=" << M << " N=" << N << " K=" << K << " a_signed=" << a_signed << " b_signed=" << b_signed
            << " zp_mode=" << zp_mode << " packed=" << pack << " first difference at i=" << bad_i << " j=" << bad_j
            << " isa=" << qgemm_isa_name(qgemm_active_isa()));
  REQUIRE(bad_i == -1);
}

const QIsa kAllIsas[] = {QIsa::kPortable, QIsa::kAvx2, QIsa::kAvx512Vnni};

}  // namespace

TEST_CASE("qgemm is exact on odd sizes for every ISA variant", "[runtime][qgemm]") {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  const int sizes[] = {1, 3, 17, 63, 257};
  for (QIsa isa : kAllIsas) {
    if (isa > qgemm_detected_isa()) continue;
    qgemm_force_isa(isa);
    int combo = 0;
    for (int M : sizes)
      for (int N : sizes)
        for (int K : {1, 3, 17, 63, 257, 300}) {
          if (M * N * K > 257 * 63 * 63) continue;  // keep the test quick
          const int c = combo++;
          check_qgemm(M, N, K, c & 1, (c >> 1) & 1, c % 3, c % 2 ? &pool : nullptr, rng);
        }
    // Every sign combination and zero-point mode on a multi-panel, multi-tile shape.
    for (int c = 0; c < 12; ++c) check_qgemm(19, 131, 70, c & 1, (c >> 1) & 1, c / 4, &pool, rng);
    // Decode (M == 1): threaded column split, K not a multiple of 8, N not of 64.
    for (int c = 0; c < 12; ++c) check_qgemm(1, 2001, 301, c & 1, (c >> 1) & 1, c / 4, &pool, rng);
    check_qgemm(1, 1500, 4, true, true, 1, nullptr, rng);
    check_qgemm(2, 70, 0, false, true, 1, &pool, rng);  // K == 0: all zeros
  }
  qgemm_force_isa(qgemm_detected_isa());
}

TEST_CASE("qgemm with B pre-packed is exact for every ISA variant", "[runtime][qgemm]") {
  std::mt19937 rng(12);
  ThreadPool pool(2);
  for (QIsa isa : kAllIsas) {
    if (isa > qgemm_detected_isa()) continue;
    qgemm_force_isa(isa);
    int combo = 0;
    for (int M : {1, 3, 17, 63})
      for (int N : {1, 17, 63, 65, 257})
        for (int K : {1, 3, 17, 63, 257}) {
          const int c = combo++;
          check_qgemm(M, N, K, c & 1, (c >> 1) & 1, c % 3, c % 2 ? &pool : nullptr, rng, true);
        }
    // Decode over many panels, threaded, every sign and zero-point mode.
    for (int c = 0; c < 12; ++c) check_qgemm(1, 2001, 301, c & 1, (c >> 1) & 1, c / 4, &pool, rng, true);
    // Packed for another variant: ignored, B read as given.
    for (QIsa other : kAllIsas)
      if (other != isa && other <= qgemm_detected_isa())
        check_qgemm(5, 70, 33, true, true, 2, &pool, rng, true, static_cast<int>(other));
  }
  qgemm_force_isa(qgemm_detected_isa());
}

TEST_CASE("qgemm_batch runs several products exactly, in one loop when all are packed decode rows",
          "[runtime][qgemm]") {
  std::mt19937 rng(13);
  ThreadPool pool(2);
  struct Product {
    std::vector<uint8_t> A, B;
    std::vector<int32_t> az, bz, want, got;
    std::unique_ptr<QPackedB> packed;
    QGemmArgs p;
  };
  for (QIsa isa : kAllIsas) {
    if (isa > qgemm_detected_isa()) continue;
    qgemm_force_isa(isa);
    // M, N, K per product; the third case mixes in an unpacked B and M > 1 (one after another);
    // the last has int8 weights with no zero point or a per-tensor 0 (the shared-zeros shortcut),
    // each wider than the one before.
    const std::vector<std::vector<std::array<int64_t, 3>>> cases = {
        {{1, 700, 301}, {1, 65, 301}, {1, 1, 301}, {1, 2001, 301}},
        {{1, 130, 17}},
        {{1, 70, 33}, {3, 70, 33}, {1, 129, 33}},
        {{1, 65, 40}, {1, 700, 40}, {1, 2001, 40}}};
    for (size_t ci = 0; ci < cases.size(); ++ci) {
      std::vector<Product> prods(cases[ci].size());
      std::vector<QGemmArgs> args;
      for (size_t i = 0; i < prods.size(); ++i) {
        auto [M, N, K] = cases[ci][i];
        Product& q = prods[i];
        const bool zero_zp = ci == 3;
        const bool a_signed = i % 2, b_signed = zero_zp || (i / 2) % 2 == 0;
        q.A = random_bytes(M * K, rng);
        q.B = random_bytes(K * N, rng);
        std::uniform_int_distribution<int> ua(a_signed ? -128 : 0, a_signed ? 127 : 255);
        std::uniform_int_distribution<int> ub(b_signed ? -128 : 0, b_signed ? 127 : 255);
        q.az.assign(M, 0);
        q.bz.assign(N, 0);
        for (auto& z : q.az) z = ua(rng);
        for (auto& z : q.bz) z = ub(rng);
        q.p.M = M;
        q.p.N = N;
        q.p.K = K;
        q.p.A = q.A.data();
        q.p.lda = K;
        q.p.a_signed = a_signed;
        q.p.a_zp = q.az.data();
        q.p.B = q.B.data();
        q.p.ldb = N;
        q.p.b_signed = b_signed;
        q.p.b_zp = q.bz.data();
        q.p.b_zp_per_col = i % 3 != 0;
        if (zero_zp) {
          q.bz.assign(N, 0);
          q.p.b_zp = i % 2 ? nullptr : q.bz.data();
          q.p.b_zp_per_col = false;
        }
        q.p.ldc = N;
        q.want.assign(M * N, -7);
        q.got.assign(M * N, -7);
        q.p.C = q.want.data();
        qgemm_reference(q.p);
        q.p.C = q.got.data();
        if (!(ci == 2 && i == 2)) {
          q.packed = qgemm_pack_b(q.B.data(), K, N, N, b_signed, &pool);
          q.p.packed_b = q.packed.get();
        }
        args.push_back(q.p);
      }
      qgemm_batch(args.data(), args.size(), ci == 1 ? nullptr : &pool);
      for (size_t i = 0; i < prods.size(); ++i) {
        INFO("case " << ci << " product " << i << " isa=" << qgemm_isa_name(isa));
        REQUIRE(prods[i].got == prods[i].want);
      }
    }
  }
  qgemm_force_isa(qgemm_detected_isa());
}

TEST_CASE("qgemm saturating extremes stay exact (no int16 intermediate)", "[runtime][qgemm]") {
  // All-255 activations against all -128 weights: every u8·s8 pair sum is -65280, beyond int16.
  for (QIsa isa : kAllIsas) {
    if (isa > qgemm_detected_isa()) continue;
    qgemm_force_isa(isa);
    for (int64_t M : {1, 7}) {
      const int64_t N = 33, K = 129;
      std::vector<uint8_t> A(M * K, 255), B(K * N, 0x80);
      std::vector<int32_t> C(M * N);
      QGemmArgs p;
      p.M = M;
      p.N = N;
      p.K = K;
      p.A = A.data();
      p.lda = K;
      p.B = B.data();
      p.ldb = N;
      p.C = C.data();
      p.ldc = N;
      qgemm(p, nullptr);
      for (int32_t c : C) REQUIRE(c == -255 * 128 * K);
    }
  }
  qgemm_force_isa(qgemm_detected_isa());
}

namespace {

Value bytes_value(DType t, std::vector<int64_t> shape, std::mt19937& rng) {
  const int64_t n = shape_numel(shape);
  return make_value<uint8_t>(t, std::move(shape), random_bytes(n, rng));
}

int32_t byte_as(DType t, uint8_t b) { return t == DType::kI8 ? static_cast<int8_t>(b) : b; }

// Exact numpy-style batched matmul of (A - az) (B - bz) on int64, for shapes a [.., M, K] and
// b [.., K, N] (no 1-D operands); az per row when it has M values, bz per column when N.
std::vector<int64_t> ref_matmul_integer(const Value& a, const Value& b, const std::vector<int32_t>& az,
                                        const std::vector<int32_t>& bz, const std::vector<int64_t>& out_shape) {
  const int64_t M = a.dim(-2), K = a.dim(-1), N = b.dim(-1);
  const int64_t nb = shape_numel(out_shape) / (M * N);
  const int r = static_cast<int>(out_shape.size());
  std::vector<int64_t> out(static_cast<size_t>(nb * M * N));
  for (int64_t t = 0; t < nb; ++t) {
    // Batch index -> offsets with broadcasting (dims of size 1 repeat).
    int64_t rem = t, ao = 0, bo = 0, as = 1, bs = 1;
    for (int d = r - 3; d >= 0; --d) {
      const int64_t od = out_shape[d], i = rem % od;
      rem /= od;
      const int da = d - (r - a.rank()), db = d - (r - b.rank());
      if (da >= 0) { ao += (a.dim(da) == 1 ? 0 : i) * as; as *= a.dim(da); }
      if (db >= 0) { bo += (b.dim(db) == 1 ? 0 : i) * bs; bs *= b.dim(db); }
    }
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        int64_t s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += (byte_as(a.dtype(), a.data<uint8_t>()[(ao * M + m) * K + k]) - az[az.size() > 1 ? m : 0]) *
               (byte_as(b.dtype(), b.data<uint8_t>()[(bo * K + k) * N + n]) - bz[bz.size() > 1 ? n : 0]);
        out[(t * M + m) * N + n] = s;
      }
  }
  return out;
}

}  // namespace

TEST_CASE("MatMulInteger: batch broadcasting, zero points, types", "[runtime][qgemm]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(5);
  struct Case { std::vector<int64_t> a, b, y; };
  const Case cases[] = {
      {{17, 63}, {63, 3}, {17, 3}},       {{2, 3, 5, 7}, {7, 9}, {2, 3, 5, 9}}, {{3, 1, 4, 17}, {1, 2, 17, 5}, {3, 2, 4, 5}},
      {{4, 1, 6}, {4, 6, 257}, {4, 1, 257}}, {{1, 9, 8}, {3, 8, 2}, {3, 9, 2}}};
  for (const auto& c : cases)
    for (int types = 0; types < 4; ++types)
      for (int zp_mode = 0; zp_mode < 3; ++zp_mode) {
        const DType at = types & 1 ? DType::kI8 : DType::kU8, bt = types & 2 ? DType::kI8 : DType::kU8;
        const Value a = bytes_value(at, c.a, rng), b = bytes_value(bt, c.b, rng);
        const int64_t M = c.a[c.a.size() - 2], N = c.b.back();
        std::vector<int32_t> az{0}, bz{0};
        std::vector<Value> in = {a, b};
        if (zp_mode > 0) {
          const Value azv = bytes_value(at, zp_mode == 2 ? std::vector<int64_t>{M} : std::vector<int64_t>{}, rng);
          const Value bzv = bytes_value(bt, zp_mode == 2 ? std::vector<int64_t>{N} : std::vector<int64_t>{1}, rng);
          az.assign(azv.numel(), 0);
          bz.assign(bzv.numel(), 0);
          for (int64_t i = 0; i < azv.numel(); ++i) az[i] = byte_as(at, azv.data<uint8_t>()[i]);
          for (int64_t i = 0; i < bzv.numel(); ++i) bz[i] = byte_as(bt, bzv.data<uint8_t>()[i]);
          in.push_back(azv);
          in.push_back(bzv);
        }
        auto out = run_node(r, make_node("MatMulInteger", in.size(), 1), in, 10);
        REQUIRE(out.is_ok());
        const Value& y = out.value()[0];
        REQUIRE(y.dtype() == DType::kI32);
        REQUIRE(y.shape() == c.y);
        const auto want = ref_matmul_integer(a, b, az, bz, c.y);
        for (int64_t i = 0; i < y.numel(); ++i) REQUIRE(y.data<int32_t>()[i] == want[i]);
      }
  // 1-D operands are promoted like MatMul: [K] x [K, N] -> [N]; [M, K] x [K] -> [M].
  const Value v = bytes_value(DType::kU8, {5}, rng), w = bytes_value(DType::kI8, {5, 3}, rng);
  auto y1 = run_node(r, make_node("MatMulInteger", 2, 1), {v, w}, 10);
  REQUIRE(y1.is_ok());
  CHECK(y1.value()[0].shape() == std::vector<int64_t>{3});
  auto y2 = run_node(r, make_node("MatMulInteger", 2, 1), {bytes_value(DType::kU8, {4, 5}, rng), v}, 10);
  REQUIRE(y2.is_ok());
  CHECK(y2.value()[0].shape() == std::vector<int64_t>{4});
}

TEST_CASE("MatMulInteger rejects bad inputs", "[runtime][qgemm]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(6);
  const Value a = bytes_value(DType::kU8, {3, 4}, rng), b = bytes_value(DType::kI8, {4, 2}, rng);
  auto node = make_node("MatMulInteger", 4, 1);
  CHECK(!run_node(r, make_node("MatMulInteger", 2, 1), {a, bytes_value(DType::kI8, {5, 2}, rng)}, 10).is_ok());
  CHECK(!run_node(r, make_node("MatMulInteger", 2, 1), {a, make_value<float>(DType::kF32, {4, 2}, std::vector<float>(8))}, 10).is_ok());
  CHECK(!run_node(r, make_node("MatMulInteger", 2, 1), {bytes_value(DType::kU8, {2, 3, 4}, rng), bytes_value(DType::kI8, {3, 4, 2}, rng)}, 10).is_ok());
  CHECK(!run_node(r, node, {a, b, bytes_value(DType::kI8, {}, rng), Value()}, 10).is_ok());    // a_zp type
  CHECK(!run_node(r, node, {a, b, bytes_value(DType::kU8, {2}, rng), Value()}, 10).is_ok());   // a_zp size
  CHECK(!run_node(r, node, {a, b, Value(), bytes_value(DType::kI8, {3}, rng)}, 10).is_ok());   // b_zp size
  CHECK(run_node(r, node, {a, b, Value(), bytes_value(DType::kI8, {1, 2}, rng)}, 10).is_ok());  // per column
}

namespace {

float half_round(float v) { return half_to_float(float_to_half(v)); }

}  // namespace

TEST_CASE("QLinearMatMul matches the float64 reference (float32 and float16 scales)", "[runtime][qgemm]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(8);
  for (bool f16 : {false, true})
    for (int types = 0; types < 4; ++types) {
      const DType at = types & 1 ? DType::kI8 : DType::kU8, bt = types & 2 ? DType::kI8 : DType::kU8;
      const DType yt = at;
      const int64_t M = 17, K = 63, N = 3;
      const Value a = bytes_value(at, {2, M, K}, rng), b = bytes_value(bt, {K, N}, rng);
      const Value azp = bytes_value(at, {}, rng), bzp = bytes_value(bt, {N}, rng), yzp = bytes_value(yt, {}, rng);
      const float as = 0.0123f, ys = 0.71f;
      const std::vector<float> bs = {0.004f, 0.0071f, 0.0093f};
      auto scale = [&](std::vector<int64_t> shape, std::vector<float> v) {
        if (!f16) return make_value<float>(DType::kF32, std::move(shape), v);
        std::vector<uint16_t> h;
        for (float x : v) h.push_back(float_to_half(x));
        return make_value<uint16_t>(DType::kF16, std::move(shape), h);
      };
      auto out = run_node(r, make_node("QLinearMatMul", 8, 1),
                          {a, scale({}, {as}), azp, b, scale({N}, bs), bzp, scale({}, {ys}), yzp}, 10);
      REQUIRE(out.is_ok());
      const Value& y = out.value()[0];
      REQUIRE(y.shape() == std::vector<int64_t>{2, M, N});
      const auto acc = ref_matmul_integer(a, b, {byte_as(at, azp.data<uint8_t>()[0])},
                                          {byte_as(bt, bzp.data<uint8_t>()[0]), byte_as(bt, bzp.data<uint8_t>()[1]),
                                           byte_as(bt, bzp.data<uint8_t>()[2])},
                                          {2, M, N});
      const int lo = yt == DType::kU8 ? 0 : -128, hi = yt == DType::kU8 ? 255 : 127;
      for (int64_t i = 0; i < y.numel(); ++i) {
        const int64_t n = i % N;
        float s_a = f16 ? half_round(as) : as, s_b = f16 ? half_round(bs[n]) : bs[n], s_y = f16 ? half_round(ys) : ys;
        float mult = s_a * s_b;
        if (f16) mult = half_round(mult);
        mult /= s_y;
        if (f16) mult = half_round(mult);
        const double v = std::nearbyint(double(acc[i]) * mult + byte_as(yt, yzp.data<uint8_t>()[0]));
        const int want = static_cast<int>(std::min<double>(hi, std::max<double>(lo, v)));
        REQUIRE(byte_as(yt, y.data<uint8_t>()[i]) == want);
      }
    }
}

TEST_CASE("com.microsoft DynamicQuantizeMatMul and MatMulIntegerToFloat", "[runtime][qgemm]") {
  const KernelRegistry& r = builtin_kernels();
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-2.f, 3.f);
  const int64_t M = 17, K = 63, N = 5;
  std::vector<float> av(2 * M * K);
  for (auto& x : av) x = u(rng);
  const Value a = make_value<float>(DType::kF32, {2, M, K}, av);
  for (DType bt : {DType::kI8, DType::kU8}) {
    const Value b = bytes_value(bt, {K, N}, rng), bzp = bytes_value(bt, {N}, rng);
    const std::vector<float> bs = {0.01f, 0.02f, 0.005f, 0.03f, 0.011f}, bias = {0.5f, -1.f, 0.f, 2.f, 0.25f};
    const Value bsv = make_value<float>(DType::kF32, {N}, bs), biasv = make_value<float>(DType::kF32, {N}, bias);
    auto dq = run_node(r, make_node("DynamicQuantizeMatMul", 5, 1, {}, "com.microsoft"), {a, b, bsv, bzp, biasv}, 1);
    REQUIRE(dq.is_ok());
    // Reference: DynamicQuantizeLinear(A) then exact integer products, scaled in float64.
    auto q = run_node(r, make_node("DynamicQuantizeLinear", 1, 3), {a}, 11);
    REQUIRE(q.is_ok());
    const Value& aq = q.value()[0];
    const float a_scale = q.value()[1].data<float>()[0];
    const int32_t a_zp = q.value()[2].data<uint8_t>()[0];
    std::vector<int32_t> bz(N);
    for (int64_t n = 0; n < N; ++n) bz[n] = byte_as(bt, bzp.data<uint8_t>()[n]);
    const auto acc = ref_matmul_integer(aq, b, {a_zp}, bz, {2, M, N});
    const Value& y = dq.value()[0];
    REQUIRE(y.shape() == std::vector<int64_t>{2, M, N});
    for (int64_t i = 0; i < y.numel(); ++i) {
      const double want = double(acc[i]) * a_scale * bs[i % N] + bias[i % N];
      REQUIRE(std::fabs(y.data<float>()[i] - want) <= 1e-5 * std::fabs(want) + 1e-5);
    }
    // MatMulIntegerToFloat on the same quantized A gives the same numbers.
    auto mf = run_node(r, make_node("MatMulIntegerToFloat", 7, 1, {}, "com.microsoft"),
                       {aq, b, q.value()[1], bsv, q.value()[2], bzp, biasv}, 1);
    REQUIRE(mf.is_ok());
    for (int64_t i = 0; i < y.numel(); ++i) REQUIRE(mf.value()[0].data<float>()[i] == y.data<float>()[i]);
    // Errors: per-row a_scale, bias of the wrong size.
    CHECK(!run_node(r, make_node("MatMulIntegerToFloat", 4, 1, {}, "com.microsoft"),
                    {aq, b, make_value<float>(DType::kF32, {2}, {1.f, 2.f}), bsv}, 1).is_ok());
    CHECK(!run_node(r, make_node("DynamicQuantizeMatMul", 5, 1, {}, "com.microsoft"),
                    {a, b, bsv, bzp, make_value<float>(DType::kF32, {2}, {1.f, 2.f})}, 1).is_ok());
  }
}

