// com.microsoft MatMulNBits: the packed block-wise int4/int8 products (every ISA variant, one
// and two threads) against float64 references, the op kernel's shapes and hostile inputs, and
// the session's group fold (bit-identical to the ungrouped nodes).
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "runtime/kernels/nbits_gemm.h"
#include "runtime/session.h"
#include "tests/support/run_node.h"
#include "tests/support/session_models.h"

using namespace llmc;
using namespace llmc::rt;
using namespace llmc::testing;

namespace {

enum ZpMode { kNoZp = 0, kPackedZp = 1, kFloatZp = 2 };

// Random MatMulNBits tensors in ONNX Runtime's layout: B [N, k_blocks, blob], scales [N, kb],
// zero points packed uint8 [N, ceil(kb·bits/8)] or float [N, kb].
struct NBitsCase {
  int64_t K, N, bits, bs, kb;
  std::vector<uint8_t> B, zp_u8;
  std::vector<float> scales, zp_f, bias;
  ZpMode zp;

  NBitsCase(int64_t K_, int64_t N_, int64_t bits_, int64_t bs_, ZpMode zp_, bool with_bias, std::mt19937& rng)
      : K(K_), N(N_), bits(bits_), bs(bs_), kb((K_ + bs_ - 1) / bs_), zp(zp_) {
    std::uniform_int_distribution<int> byte(0, 255);
    B.resize(static_cast<size_t>(N * kb * bs * bits / 8));
    for (auto& b : B) b = static_cast<uint8_t>(byte(rng));
    scales = random_floats(N * kb, rng, 0.01f, 0.05f);
    if (zp == kPackedZp) {
      zp_u8.resize(static_cast<size_t>(N * ((kb * bits + 7) / 8)));
      for (auto& z : zp_u8) z = static_cast<uint8_t>(byte(rng));
    }
    if (zp == kFloatZp) zp_f = random_floats(N * kb, rng, 0.f, bits == 4 ? 15.f : 255.f);
    if (with_bias) bias = random_floats(N, rng);
  }
  int64_t q(int64_t n, int64_t k) const {
    const int64_t b = k / bs, i = k % bs;
    const uint8_t byte = B[static_cast<size_t>((n * kb + b) * (bs * bits / 8) + i * bits / 8)];
    return bits == 4 ? ((i & 1) ? byte >> 4 : byte & 0x0F) : byte;
  }
  double zero(int64_t n, int64_t b) const {
    if (zp == kFloatZp) return zp_f[static_cast<size_t>(n * kb + b)];
    if (zp == kNoZp) return bits == 4 ? 8 : 128;
    const uint8_t byte = zp_u8[static_cast<size_t>(n * ((kb * bits + 7) / 8) + b * bits / 8)];
    return bits == 4 ? ((b & 1) ? byte >> 4 : byte & 0x0F) : byte;
  }
  // The exactly dequantised weight.
  double w(int64_t n, int64_t k) const {
    return (static_cast<double>(q(n, k)) - zero(n, k / bs)) * scales[static_cast<size_t>(n * kb + k / bs)];
  }
  NBitsWeights weights() const {
    NBitsWeights ws;
    ws.K = K;
    ws.N = N;
    ws.bits = bits;
    ws.block_size = bs;
    ws.B = B.data();
    ws.scales = scales.data();
    ws.zp_u8 = zp == kPackedZp ? zp_u8.data() : nullptr;
    ws.zp_f = zp == kFloatZp ? zp_f.data() : nullptr;
    return ws;
  }
};

// A's rows quantised per block as MLAS does (the int8 mode's activation), dequantised.
std::vector<double> quantized_a(const std::vector<float>& A, int64_t M, int64_t K, int64_t bs) {
  std::vector<double> out(A.size());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k0 = 0; k0 < K; k0 += bs) {
      const int64_t n = std::min(bs, K - k0);
      float amax = 0;
      for (int64_t k = 0; k < n; ++k) amax = std::max(amax, std::fabs(A[m * K + k0 + k]));
      const float inv = amax != 0 ? 127.0f / amax : 0.0f, scale = amax / 127.0f;
      for (int64_t k = 0; k < n; ++k)
        out[m * K + k0 + k] = static_cast<double>(std::nearbyint(A[m * K + k0 + k] * inv)) * scale;
    }
  return out;
}

// Checks Y against the float64 product of `a` (as doubles) and the dequantised weights, within
// tol · sum_k |a·w| + slack[m, n] (slack: a bound of A's int8 quantisation error, or 0).
void check_product(const NBitsCase& c, int64_t M, const std::vector<double>& a, const std::vector<float>& Y,
                   double tol, const std::vector<double>* slack = nullptr) {
  int64_t bad = -1;
  double got_bad = 0, want_bad = 0;
  for (int64_t m = 0; m < M && bad < 0; ++m)
    for (int64_t n = 0; n < c.N; ++n) {
      double want = c.bias.empty() ? 0 : c.bias[n], mag = std::fabs(want);
      for (int64_t k = 0; k < c.K; ++k) {
        const double p = a[m * c.K + k] * c.w(n, k);
        want += p;
        mag += std::fabs(p);
      }
      const double got = Y[m * c.N + n];
      if (!(std::fabs(got - want) <= tol * mag + 1e-30 + (slack ? (*slack)[m * c.N + n] : 0.0))) {
        bad = m * c.N + n, got_bad = got, want_bad = want;
        break;
      }
    }
  INFO("first bad output " << bad << ": got " << got_bad << ", want " << want_bad);
  CHECK(bad < 0);
}

// Bound of |A·W - Aq·W| per output: each quantised a is within half a step (scale_a / 2).
std::vector<double> quantization_slack(const NBitsCase& c, int64_t M, const std::vector<float>& A) {
  std::vector<double> s(static_cast<size_t>(M * c.N), 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k0 = 0; k0 < c.K; k0 += c.bs) {
      float amax = 0;
      for (int64_t k = k0; k < std::min(c.K, k0 + c.bs); ++k) amax = std::max(amax, std::fabs(A[m * c.K + k]));
      const double half = 0.5 * amax / 127.0 * 1.0001;
      for (int64_t n = 0; n < c.N; ++n)
        for (int64_t k = k0; k < std::min(c.K, k0 + c.bs); ++k) s[m * c.N + n] += half * std::fabs(c.w(n, k));
    }
  return s;
}

}  // namespace

// Float mode: float32 sums of dequantised blocks, so within 1e-5 of sum |a·w| (K <= 300 terms).
// int8 mode: against the same int8-quantised A in float64, within 1e-5 of sum |a·w| (the block
// products are exact; float32 scaling and accumulation only); and against the unquantised
// product within the quantisation error bound.
TEST_CASE("nbits_gemm matches float64 references for every ISA, block size, width and zero point",
          "[matmul_nbits]") {
  std::mt19937 rng(7);
  const int64_t shapes[][2] = {{40, 17}, {300, 40}, {77, 33}, {256, 16}, {129, 1}};
  const int64_t rows[] = {1, 2, 5, 33};
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    // Every ISA variant, and AVX-512 VNNI once more with AMX prefill tiles (when available).
    for (int variant = 0; variant <= static_cast<int>(qgemm_detected_isa()) + 1; ++variant) {
      const int isa = std::min(variant, static_cast<int>(qgemm_detected_isa()));
      nbits_force_isa(static_cast<QIsa>(isa));
      nbits_use_amx(variant > static_cast<int>(QIsa::kAvx512Vnni));
      if (variant > isa && !nbits_amx_active()) continue;
      int shape_i = 0;
      for (int64_t bs : {16, 32, 64, 128, 256})
        for (int64_t bits : {4, 8})
          for (ZpMode zp : {kNoZp, kPackedZp, kFloatZp})
            for (bool bias : {false, true}) {
              const auto& sh = shapes[shape_i++ % 5];
              const NBitsCase c(sh[0], sh[1], bits, bs, zp, bias, rng);
              const auto packed = nbits_pack(c.weights(), &pool);
              for (int64_t M : rows) {
                INFO("threads " << threads << " isa " << qgemm_isa_name(static_cast<QIsa>(isa)) << " amx "
                                << nbits_amx_active() << " bs " << bs
                                << " bits " << bits << " zp " << zp << " bias " << bias << " M " << M << " K "
                                << c.K << " N " << c.N);
                const auto A = random_floats(M * c.K, rng, -2.f, 2.f);
                std::vector<float> Y(static_cast<size_t>(M * c.N), -1.f);
                NBitsProduct p{packed.get(), c.bias.empty() ? nullptr : c.bias.data(), Y.data(), c.N};
                nbits_gemm_float(A.data(), M, c.K, &p, 1, &pool);
                check_product(c, M, std::vector<double>(A.begin(), A.end()), Y, 1e-5);
                NBitsQuantA qa;
                nbits_quantize_a(A.data(), M, c.K, c.K, bs, qa, &pool);
                std::fill(Y.begin(), Y.end(), -1.f);
                nbits_gemm_int8(qa, &p, 1, &pool);
                check_product(c, M, quantized_a(A, M, c.K, bs), Y, 1e-5);
                const auto slack = quantization_slack(c, M, A);
                check_product(c, M, std::vector<double>(A.begin(), A.end()), Y, 1e-5, &slack);
              }
            }
    }
  }
  nbits_force_isa(qgemm_detected_isa());
  nbits_use_amx(true);
}

// AMX prefill tiles give the bits of the AVX-512 VNNI tiles (same exact block sums, same
// float epilogue), so a session's results do not depend on the row count's path.
TEST_CASE("nbits_gemm AMX prefill tiles are bit-identical to the VNNI tiles", "[matmul_nbits]") {
  nbits_force_isa(QIsa::kAvx512Vnni);
  nbits_use_amx(true);
  if (!nbits_amx_active()) {
    WARN("no AMX here: nothing to compare");
    return;
  }
  std::mt19937 rng(8);
  ThreadPool pool(2);
  for (int64_t bs : {16, 32, 128})
    for (int64_t bits : {4, 8})
      for (ZpMode zp : {kNoZp, kPackedZp, kFloatZp}) {
        const NBitsCase c(200, 45, bits, bs, zp, true, rng);
        const auto packed = nbits_pack(c.weights(), &pool);
        for (int64_t M : {8, 17, 40}) {
          const auto A = random_floats(M * c.K, rng, -2.f, 2.f);
          NBitsQuantA qa;
          nbits_quantize_a(A.data(), M, c.K, c.K, bs, qa, &pool);
          std::vector<float> with(static_cast<size_t>(M * c.N)), without(with.size());
          NBitsProduct p{packed.get(), c.bias.data(), with.data(), c.N};
          nbits_gemm_int8(qa, &p, 1, &pool);
          nbits_use_amx(false);
          p.Y = without.data();
          nbits_gemm_int8(qa, &p, 1, &pool);
          nbits_use_amx(true);
          INFO("bs " << bs << " bits " << bits << " zp " << zp << " M " << M);
          CHECK(with == without);
        }
      }
  nbits_force_isa(qgemm_detected_isa());
}

// Row slices start at multiples of 8 and AMX reads 16-row tiles from there: with few panels
// (N = 48: 3 panels for 2 threads) 16 rows are cut in two slices, and the second slice's tile
// must stay inside A's quantised rows (the sanitizer build checks the bounds).
TEST_CASE("nbits_gemm prefill row slices stay inside the quantised A", "[matmul_nbits][hostile]") {
  std::mt19937 rng(21);
  ThreadPool pool(2);
  const NBitsCase c(96, 48, 4, 32, kPackedZp, false, rng);
  const auto packed = nbits_pack(c.weights(), &pool);
  for (bool amx : {true, false}) {
    nbits_use_amx(amx);
    for (int64_t M : {16, 24, 32}) {
      const auto A = random_floats(M * c.K, rng, -2.f, 2.f);
      NBitsQuantA qa;
      nbits_quantize_a(A.data(), M, c.K, c.K, 32, qa, &pool);
      std::vector<float> pooled(static_cast<size_t>(M * c.N)), single(pooled.size());
      NBitsProduct p{packed.get(), nullptr, pooled.data(), c.N};
      nbits_gemm_int8(qa, &p, 1, &pool);
      p.Y = single.data();
      nbits_gemm_int8(qa, &p, 1, nullptr);
      INFO("amx " << amx << " M " << M);
      CHECK(pooled == single);
    }
  }
  nbits_use_amx(true);
}

// The extremes: every 8-bit weight 255 or 0 against activations at ±127 (AVX2 must not
// saturate int16), zero amax blocks (q = 0) and ties of the rounding.
TEST_CASE("nbits_gemm int8 mode is exact at the extremes", "[matmul_nbits]") {
  std::mt19937 rng(9);
  ThreadPool pool(2);
  for (int isa = 0; isa <= static_cast<int>(qgemm_detected_isa()); ++isa) {
    nbits_force_isa(static_cast<QIsa>(isa));
    for (int64_t bits : {4, 8}) {
      NBitsCase c(256, 20, bits, 64, kPackedZp, false, rng);
      for (size_t i = 0; i < c.B.size(); ++i) c.B[i] = (i / 3) % 2 ? 0xFF : 0x00;
      std::fill(c.zp_u8.begin(), c.zp_u8.end(), 0);
      const int64_t M = 3;
      std::vector<float> A(static_cast<size_t>(M * c.K));
      for (size_t i = 0; i < A.size(); ++i) A[i] = (i / 2) % 2 ? 1.0f : -1.0f;
      for (int64_t k = 64; k < 128; ++k) A[k] = 0;          // a block of zeros: amax 0
      for (int64_t k = 128; k < 192; ++k) A[k] = 0.5f * ((k % 3) - 1) * (k == 128 ? 254 : 1);  // ties
      const auto packed = nbits_pack(c.weights(), &pool);
      std::vector<float> Y(static_cast<size_t>(M * c.N));
      NBitsProduct p{packed.get(), nullptr, Y.data(), c.N};
      NBitsQuantA qa;
      nbits_quantize_a(A.data(), M, c.K, c.K, c.bs, qa, &pool);
      nbits_gemm_int8(qa, &p, 1, &pool);
      INFO("isa " << isa << " bits " << bits);
      check_product(c, M, quantized_a(A, M, c.K, c.bs), Y, 1e-6);
    }
  }
  nbits_force_isa(qgemm_detected_isa());
}

namespace {

Node nbits_node(int64_t K, int64_t N, int64_t bits, int64_t bs, int64_t level, size_t inputs) {
  return make_node("MatMulNBits", inputs, 1,
                   {Attribute::make_int("K", K), Attribute::make_int("N", N), Attribute::make_int("bits", bits),
                    Attribute::make_int("block_size", bs), Attribute::make_int("accuracy_level", level)},
                   "com.microsoft");
}

std::vector<Value> nbits_inputs(const NBitsCase& c, const Value& a) {
  std::vector<Value> in = {a, make_value(DType::kU8, {c.N, c.kb, c.bs * c.bits / 8}, c.B),
                           make_value(DType::kF32, {c.N, c.kb}, c.scales)};
  if (c.zp == kPackedZp) in.push_back(make_value(DType::kU8, {c.N, (c.kb * c.bits + 7) / 8}, c.zp_u8));
  else if (c.zp == kFloatZp) in.push_back(make_value(DType::kF32, {c.N, c.kb}, c.zp_f));
  else in.push_back(Value());
  in.push_back(Value());  // g_idx
  if (!c.bias.empty()) in.push_back(make_value(DType::kF32, {c.N}, c.bias));
  return in;
}

}  // namespace

TEST_CASE("MatMulNBits op: batch dims, both modes, flattened scales", "[matmul_nbits]") {
  std::mt19937 rng(11);
  for (int64_t level : {0, 4}) {
    const NBitsCase c(70, 19, 4, 32, kPackedZp, true, rng);
    const auto A = random_floats(2 * 3 * c.K, rng);
    const Value a = make_value(DType::kF32, {2, 3, c.K}, A);
    auto in = nbits_inputs(c, a);
    in[2] = make_value(DType::kF32, {c.N * c.kb}, c.scales);  // older exporters: flattened
    const Value y = run1(nbits_node(c.K, c.N, 4, 32, level, in.size()), in, 1);
    REQUIRE(y.shape() == std::vector<int64_t>{2, 3, c.N});
    const std::vector<float> Y(y.data<float>(), y.data<float>() + y.numel());
    check_product(c, 6, level == 4 ? quantized_a(A, 6, c.K, c.bs) : std::vector<double>(A.begin(), A.end()), Y, 1e-5);
  }
}

TEST_CASE("MatMulNBits op rejects hostile inputs with an error", "[matmul_nbits][hostile]") {
  std::mt19937 rng(12);
  const NBitsCase c(64, 8, 4, 32, kNoZp, false, rng);
  const Value a = make_value(DType::kF32, {2, c.K}, random_floats(2 * c.K, rng));
  const auto good = nbits_inputs(c, a);
  REQUIRE_FALSE(fails(nbits_node(c.K, c.N, 4, 32, 4, good.size()), good, 1));
  auto with = [&](size_t i, Value v) {
    auto in = good;
    in[i] = std::move(v);
    return in;
  };
  const Node n = nbits_node(c.K, c.N, 4, 32, 4, good.size());
  CHECK(fails(n, with(1, make_value(DType::kU8, {c.N, 2, 8}, std::vector<uint8_t>(c.N * 16))), 1));   // B blob
  CHECK(fails(n, with(1, make_value(DType::kU8, {c.N * 2, 16}, c.B)), 1));                              // B rank
  CHECK(fails(n, with(2, make_value(DType::kF32, {c.N, 1}, std::vector<float>(c.N, 1.f))), 1));         // scales
  CHECK(fails(n, with(3, make_value(DType::kU8, {c.N, 3}, std::vector<uint8_t>(c.N * 3))), 1));         // zp size
  CHECK(fails(n, with(3, make_value(DType::kI32, {c.N, 2}, std::vector<int32_t>(c.N * 2))), 1));        // zp type
  CHECK(fails(n, with(4, make_value(DType::kI32, {c.K}, std::vector<int32_t>(c.K))), 1));               // g_idx
  CHECK(fails(n, with(0, make_value(DType::kF32, {2, 63}, std::vector<float>(126))), 1));              // A's K
  CHECK(fails(n, with(0, make_value(DType::kI32, {2, c.K}, std::vector<int32_t>(2 * c.K))), 1));        // A type
  auto in6 = good;
  in6.push_back(make_value(DType::kF32, {c.N + 1}, std::vector<float>(c.N + 1)));  // bias size
  CHECK(fails(nbits_node(c.K, c.N, 4, 32, 4, in6.size()), in6, 1));
  CHECK(fails(nbits_node(c.K, c.N, 3, 32, 4, good.size()), good, 1));   // bits 3
  CHECK(fails(nbits_node(c.K, c.N, 4, 24, 4, good.size()), good, 1));   // block_size 24
  CHECK(fails(nbits_node(c.K, c.N, 4, 8, 4, good.size()), good, 1));    // block_size 8
  CHECK(fails(nbits_node(c.K, c.N + 1, 4, 32, 4, good.size()), good, 1));  // N vs B
  CHECK(fails(nbits_node(c.K + 32, c.N, 4, 32, 4, good.size()), good, 1));  // K vs B
  CHECK(fails(nbits_node(int64_t{1} << 40, c.N, 4, 32, 4, good.size()), good, 1));  // overflowing K
  CHECK(fails(nbits_node(c.K, int64_t{1} << 62, 4, 32, 4, good.size()), good, 1));  // overflowing N
  CHECK(fails(make_node("MatMulNBits", 3, 1, {Attribute::make_int("K", c.K)}, "com.microsoft"),
              {good[0], good[1], good[2]}, 1));  // no N, block_size
}

// Three MatMulNBits of one activation (Q, K, V) run as one step in a session: each output is
// bit-identical to its node run alone, for decode and prefill rows, both modes. A fourth product
// of another activation stays its own step.
TEST_CASE("session: MatMulNBits of one activation run as one step, bit-exact", "[matmul_nbits][session]") {
  std::mt19937 rng(21);
  const int64_t K = 96;
  for (int64_t level : {0, 4}) {
    const NBitsCase cs[] = {NBitsCase(K, 70, 4, 32, kNoZp, false, rng), NBitsCase(K, 33, 4, 32, kPackedZp, true, rng),
                            NBitsCase(K, 64, 4, 32, kFloatZp, false, rng), NBitsCase(K, 20, 4, 32, kNoZp, false, rng)};
    Model m;
    m.opset_imports = {{"", 17}, {"com.microsoft", 1}};
    std::vector<Node> nodes;
    for (int i = 0; i < 4; ++i) {
      const NBitsCase& c = cs[i];
      const std::string s = std::to_string(i);
      m.graph.initializers.push_back(Tensor::from_vector("B" + s, DType::kU8, {c.N, c.kb, c.bs / 2}, c.B));
      m.graph.initializers.push_back(Tensor::from_vector("S" + s, DType::kF32, {c.N, c.kb}, c.scales));
      std::vector<std::string> ins = {i == 3 ? "X2" : "X", "B" + s, "S" + s};
      if (c.zp == kPackedZp)
        m.graph.initializers.push_back(Tensor::from_vector("Z" + s, DType::kU8, {c.N, (c.kb + 1) / 2}, c.zp_u8));
      if (c.zp == kFloatZp) m.graph.initializers.push_back(Tensor::from_vector("Z" + s, DType::kF32, {c.N, c.kb}, c.zp_f));
      ins.push_back(c.zp == kNoZp ? "" : "Z" + s);
      if (!c.bias.empty()) {
        m.graph.initializers.push_back(Tensor::from_vector("BI" + s, DType::kF32, {c.N}, c.bias));
        ins.push_back("");
        ins.push_back("BI" + s);
      }
      Node n = node("mm" + s, "MatMulNBits", ins, {"Y" + s}, "com.microsoft");
      n.attributes = nbits_node(K, c.N, 4, 32, level, 0).attributes;
      nodes.push_back(n);
      m.graph.outputs.push_back(tensor_info("Y" + s, DType::kF32, {-1, c.N}));
    }
    m.graph.nodes = nodes;
    m.graph.inputs = {tensor_info("X", DType::kF32, {-1, K}), tensor_info("X2", DType::kF32, {-1, K})};
    auto session = session_for(m);
    session->set_profiling(true);
    for (int64_t M : {1, 7, 1}) {
      const Value x = make_value(DType::kF32, {M, K}, random_floats(M * K, rng, -2.f, 2.f));
      const Value x2 = make_value(DType::kF32, {M, K}, random_floats(M * K, rng));
      auto got = session->run({{"X", x}, {"X2", x2}});
      REQUIRE(got.is_ok());
      for (int i = 0; i < 4; ++i) {
        const Value want = run1(nodes[i], nbits_inputs(cs[i], i == 3 ? x2 : x), 1);
        INFO("level " << level << " M " << M << " product " << i);
        REQUIRE(got.value()[i].shape() == want.shape());
        for (int64_t j = 0; j < want.numel(); ++j) REQUIRE(got.value()[i].data<float>()[j] == want.data<float>()[j]);
      }
    }
    // The three products of X ran as one step, the product of X2 alone: two steps a run.
    CHECK(session->profile().at("MatMulNBits").calls == 3 * 2);
  }
}
