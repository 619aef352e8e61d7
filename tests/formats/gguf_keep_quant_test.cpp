// GGUF blocks packed as MatMulNBits inputs: dequantising them with MatMulNBits' formula
// ((q − zp)·scale in float) gives ggml_dequantize's values, bit for bit for Q4_0 / Q8_0 and within
// a few ulp for Q4_1 (float zero points −m/d); hand-made blocks pin the nibble order. On the real
// SmolLM2 GGUF, the import with keep_quant rewrites every projection (the LM head stays float32).
#include "formats/gguf_keep_quant.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "formats/gguf_import.h"
#include "tests/support/test_data.h"

namespace llmc {
namespace {

uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
void put_u16(std::vector<uint8_t>& b, size_t at, uint16_t v) { std::memcpy(&b[at], &v, 2); }

constexpr uint16_t kHalfOne = 0x3c00, kHalfTwo = 0x4000, kHalfMinusHalf = 0xb800, kHalfInf = 0x7c00;

std::vector<float> ggml_values(GgmlType type, const std::vector<uint8_t>& blocks, int64_t numel) {
  std::vector<float> out(static_cast<size_t>(numel));
  ggml_dequantize(type, blocks.data(), out.data(), numel);
  return out;
}

MatMulNBitsWeight pack(GgmlType type, const std::vector<uint8_t>& blocks, int64_t k, int64_t n) {
  auto packed = pack_matmul_nbits(type, blocks.data(), k, n, "w");
  REQUIRE(packed.is_ok());
  REQUIRE(packed.value().has_value());
  return std::move(*packed.value());
}

// Random blocks of `type` for n rows of k: random bytes, finite fp16 scales (and mins) of random
// sign and exponent; a few Q4_1 blocks get d = 0 or m = 0.
std::vector<uint8_t> random_blocks(GgmlType type, int64_t k, int64_t n, uint32_t seed) {
  const GgmlTypeInfo info = *ggml_type_info(static_cast<uint32_t>(type));
  const int64_t count = k / 32 * n;
  std::vector<uint8_t> b(static_cast<size_t>(count * info.block_bytes));
  std::mt19937 rng(seed);
  for (auto& byte : b) byte = static_cast<uint8_t>(rng());
  auto half = [&rng] {  // sign, exponent 1..29 (normal, |x| < 2^15), any mantissa
    return static_cast<uint16_t>((rng() & 0x8000u) | ((1 + rng() % 29) << 10) | (rng() & 0x3ffu));
  };
  for (int64_t i = 0; i < count; ++i) {
    const size_t at = static_cast<size_t>(i * info.block_bytes);
    put_u16(b, at, i % 17 == 5 && type == GgmlType::kQ4_1 ? 0 : half());
    if (type == GgmlType::kQ4_1) put_u16(b, at + 2, i % 13 == 3 ? 0 : half());
  }
  return b;
}

TEST_CASE("Q4_0 blocks become 4-bit MatMulNBits without zero points, bit for bit", "[gguf][keepquant]") {
  SECTION("a hand-made block: GGML's j / j+16 nibbles become pairs (2i, 2i+1)") {
    std::vector<uint8_t> blk(18);
    put_u16(blk, 0, kHalfTwo);
    for (int j = 0; j < 16; ++j) blk[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));  // e_j = j, e_(16+j) = 15-j
    const MatMulNBitsWeight w = pack(GgmlType::kQ4_0, blk, 32, 1);
    CHECK(w.bits == 4);
    CHECK(w.block_size == 32);
    CHECK(w.b.name() == "w_Q4");
    CHECK(w.b.dtype() == DType::kU8);
    CHECK(w.b.dims() == std::vector<int64_t>{1, 1, 16});
    CHECK(w.scales.dims() == std::vector<int64_t>{1, 1});
    CHECK(w.scales.data_as<float>()[0] == 2.0f);
    CHECK_FALSE(w.zero_points.has_value());
    const uint8_t* q = w.b.data();
    CHECK(q[0] == 0x10);  // elements 0, 1
    CHECK(q[7] == 0xfe);  // elements 14, 15
    CHECK(q[8] == 0xef);  // elements 16, 17 = 15, 14
    CHECK(q[15] == 0x01); // elements 30, 31 = 1, 0
    const std::vector<float> got = matmul_nbits_dequantize(w);
    CHECK(got[0] == -16.0f);
    CHECK(got[15] == 14.0f);
    CHECK(got[16] == 14.0f);
    CHECK(got[31] == -16.0f);
  }
  SECTION("random blocks, several rows") {
    const int64_t k = 96, n = 7;
    const auto blocks = random_blocks(GgmlType::kQ4_0, k, n, 1);
    const std::vector<float> want = ggml_values(GgmlType::kQ4_0, blocks, k * n);
    const std::vector<float> got = matmul_nbits_dequantize(pack(GgmlType::kQ4_0, blocks, k, n));
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) REQUIRE(float_bits(got[i]) == float_bits(want[i]));
  }
}

TEST_CASE("Q8_0 blocks become 8-bit MatMulNBits with q + 128, bit for bit", "[gguf][keepquant]") {
  SECTION("a hand-made block") {
    std::vector<uint8_t> blk(34);
    put_u16(blk, 0, kHalfMinusHalf);
    for (int j = 0; j < 32; ++j) blk[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j * 8 - 128));
    blk[2 + 31] = 127;
    const MatMulNBitsWeight w = pack(GgmlType::kQ8_0, blk, 32, 1);
    CHECK(w.bits == 8);
    CHECK(w.b.name() == "w_Q8");
    CHECK(w.b.dims() == std::vector<int64_t>{1, 1, 32});
    CHECK_FALSE(w.zero_points.has_value());
    CHECK(w.b.data()[0] == 0);     // -128
    CHECK(w.b.data()[16] == 128);  // 0
    CHECK(w.b.data()[31] == 255);  // 127
    const std::vector<float> got = matmul_nbits_dequantize(w);
    CHECK(got[0] == 64.0f);
    CHECK(got[31] == -63.5f);
  }
  SECTION("random blocks, several rows") {
    const int64_t k = 128, n = 5;
    const auto blocks = random_blocks(GgmlType::kQ8_0, k, n, 2);
    const std::vector<float> want = ggml_values(GgmlType::kQ8_0, blocks, k * n);
    const std::vector<float> got = matmul_nbits_dequantize(pack(GgmlType::kQ8_0, blocks, k, n));
    for (size_t i = 0; i < got.size(); ++i) REQUIRE(float_bits(got[i]) == float_bits(want[i]));
  }
}

TEST_CASE("Q4_1 blocks become 4-bit MatMulNBits with float zero points -m/d", "[gguf][keepquant]") {
  SECTION("a hand-made block, and one with d = 0 (every element m)") {
    std::vector<uint8_t> blk(40);
    put_u16(blk, 0, kHalfOne);
    put_u16(blk, 2, kHalfMinusHalf);
    for (int j = 0; j < 16; ++j) blk[4 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
    put_u16(blk, 20, 0);
    put_u16(blk, 22, kHalfTwo);
    const MatMulNBitsWeight w = pack(GgmlType::kQ4_1, blk, 64, 1);
    REQUIRE(w.zero_points.has_value());
    CHECK(w.zero_points->name() == "w_zero_points");
    CHECK(w.zero_points->dtype() == DType::kF32);
    CHECK(w.zero_points->dims() == std::vector<int64_t>{1, 2});
    CHECK(w.zero_points->data_as<float>()[0] == 0.5f);
    CHECK(w.b.data()[0] == 0x10);
    const std::vector<float> got = matmul_nbits_dequantize(w);
    const std::vector<float> want = ggml_values(GgmlType::kQ4_1, blk, 64);
    for (int i = 0; i < 64; ++i) CHECK(got[i] == want[i]);  // exact here: -m/d and q - zp are exact
    CHECK(got[40] == 2.0f);
  }
  SECTION("random blocks: within 2^-21 (15 |d| + |m|)") {
    // Roundings: -m/d, q - zp, (q - zp) d here and d q + m in ggml, each at most 2^-24 of a value
    // no larger than 15 |d| + |m|: 2^-22 (15 |d| + |m|), doubled for the higher-order terms. The
    // worst error measured is a quarter of the bound (about one ulp of 15 |d| + |m|).
    const int64_t k = 160, n = 9;
    const auto blocks = random_blocks(GgmlType::kQ4_1, k, n, 3);
    const std::vector<float> want = ggml_values(GgmlType::kQ4_1, blocks, k * n);
    const std::vector<float> got = matmul_nbits_dequantize(pack(GgmlType::kQ4_1, blocks, k, n));
    for (size_t i = 0; i < got.size(); ++i) {
      const uint8_t* blk = blocks.data() + i / 32 * 20;
      float dm[2];
      ggml_dequantize(GgmlType::kF16, blk, dm, 2);  // d, m
      const double bound = std::ldexp(15 * std::fabs(dm[0]) + std::fabs(dm[1]), -21);
      const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
      INFO("element " << i << ": got " << got[i] << ", ggml " << want[i] << ", d " << dm[0] << ", m " << dm[1]);
      REQUIRE(err <= bound);
    }
  }
}

TEST_CASE("Blocks MatMulNBits cannot hold are not kept", "[gguf][keepquant]") {
  std::vector<uint8_t> blk(40, 0);
  SECTION("other GGML types") {
    for (GgmlType t : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ5_0, GgmlType::kQ4_K, GgmlType::kQ6_K}) {
      CHECK_FALSE(ggml_type_keepable(t));
      auto r = pack_matmul_nbits(t, blk.data(), 32, 1, "w");
      REQUIRE(r.is_ok());
      CHECK_FALSE(r.value().has_value());
    }
  }
  SECTION("a non-finite scale or min") {
    put_u16(blk, 0, kHalfInf);
    for (GgmlType t : {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ8_0}) {
      auto r = pack_matmul_nbits(t, blk.data(), 32, 1, "w");
      REQUIRE(r.is_ok());
      CHECK_FALSE(r.value().has_value());
    }
    put_u16(blk, 0, kHalfOne);
    put_u16(blk, 2, 0x7e00);  // NaN min
    auto r = pack_matmul_nbits(GgmlType::kQ4_1, blk.data(), 32, 1, "w");
    REQUIRE(r.is_ok());
    CHECK_FALSE(r.value().has_value());
  }
  SECTION("rows that are not whole blocks, and sizes that overflow, are errors") {
    auto partial = pack_matmul_nbits(GgmlType::kQ4_0, blk.data(), 48, 1, "w");
    REQUIRE_FALSE(partial.is_ok());
    CHECK_THAT(partial.status().message(), Catch::Contains("w"));
    auto huge = pack_matmul_nbits(GgmlType::kQ4_0, nullptr, 64, std::numeric_limits<int64_t>::max() / 2, "w");
    REQUIRE_FALSE(huge.is_ok());
    CHECK_THAT(huge.status().message(), Catch::Contains("overflow"));
  }
}

TEST_CASE("SmolLM2 imported with keep_quant: every projection is MatMulNBits, the tied LM head float32",
          "[gguf][keepquant]") {
  const std::string path = testing::model_path(testing::kSmolLm2Gguf);
  if (path.empty()) return;
  auto gguf = GgufFile::open(path);
  REQUIRE(gguf.is_ok());
  KeepQuantReport report;
  GgufImportOptions options;
  options.keep_quant = true;
  options.keep_quant_report = &report;
  auto kept = gguf_to_model(gguf.value(), options);
  REQUIRE(kept.is_ok());
  CHECK(report.kept == std::map<std::string, int>{{"Q4_1", 210}});
  CHECK(report.dequantised.empty());
  CHECK(report.summary() == "kept 210 Q4_1 tensors as MatMulNBits, 0 dequantised");
  const Model& m = kept.value();
  CHECK(m.opset("com.microsoft") == 1);
  CHECK(m.opset("") == 17);
  int nbits = 0, weight_matmuls = 0;
  for (const Node& node : m.graph.nodes) {
    if (node.op_type == "MatMulNBits") {
      ++nbits;
      CHECK(node.domain == "com.microsoft");
      CHECK(node.attr_int("block_size", 0) == 32);
    }
    if (node.op_type == "MatMul" && m.graph.find_initializer(node.inputs[1])) ++weight_matmuls;
  }
  CHECK(nbits == 210);
  CHECK(weight_matmuls == 1);
  CHECK(m.graph.find_initializer("model.layers.0.self_attn.q_proj.weight") == nullptr);
  const Node* head = nullptr;
  for (const Node& node : m.graph.nodes)
    if (node.name == "/lm_head/MatMul") head = &node;
  REQUIRE(head);
  CHECK(head->op_type == "MatMul");
  CHECK(head->outputs == std::vector<std::string>{"logits"});
  REQUIRE(m.graph.find_initializer("lm_head.weight"));
  CHECK(m.graph.find_initializer("lm_head.weight")->dtype() == DType::kF32);
  const Node* q = nullptr;
  for (const Node& node : m.graph.nodes)
    if (node.name == "/model/layers.0/self_attn/q_proj/MatMul") q = &node;
  REQUIRE(q);
  CHECK(q->op_type == "MatMulNBits");
  CHECK(q->attr_int("bits", 0) == 4);
  CHECK(q->attr_int("K", 0) == 576);
  CHECK(q->attr_int("N", 0) == 576);
  CHECK(q->inputs == std::vector<std::string>{q->inputs[0], "model.layers.0.self_attn.q_proj.weight_Q4",
                                              "model.layers.0.self_attn.q_proj.weight_scales",
                                              "model.layers.0.self_attn.q_proj.weight_zero_points"});
  // The embedding Gather stays float32 and the default import is unchanged.
  const Tensor* embed = m.graph.find_initializer("model.embed_tokens.weight");
  REQUIRE(embed);
  CHECK(embed->dtype() == DType::kF32);
  auto plain = gguf_to_model(gguf.value());
  REQUIRE(plain.is_ok());
  CHECK(plain.value().opset("com.microsoft") == -1);
  CHECK(plain.value().graph.find_initializer("model.layers.0.self_attn.q_proj.weight") != nullptr);
}

}  // namespace
}  // namespace llmc
