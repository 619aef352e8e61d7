// GGML dequantisation against the gguf Python package (scripts/gguf_dequant_reference.py) bit for
// bit on random blocks, plus a few blocks worked out by hand and the type table's arithmetic.
#include "formats/gguf_quants.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "tests/support/test_data.h"

namespace llmc {
namespace {

using testing::read_text;
using testing::run_shell;
using testing::scratch_dir;
using testing::shell_quote;
using testing::venv_python;

uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

std::vector<float> dequantize(GgmlType type, const std::vector<uint8_t>& blocks) {
  const GgmlTypeInfo info = *ggml_type_info(static_cast<uint32_t>(type));
  std::vector<float> out(blocks.size() / info.block_bytes * info.block_size);
  ggml_dequantize(type, blocks.data(), out.data(), static_cast<int64_t>(out.size()));
  return out;
}

void put_u16(std::vector<uint8_t>& b, size_t at, uint16_t v) { std::memcpy(&b[at], &v, 2); }

constexpr uint16_t kHalfOne = 0x3c00, kHalfTwo = 0x4000, kHalfHalf = 0x3800, kHalfMinusOne = 0xbc00;

// Dequantises `dir`/`name`.bin and requires the bits of `dir`/`name`.f32 (NaN signs and
// payloads included).
void check_against_gguf(const std::string& dir, GgmlType type, const std::string& name) {
  INFO(name);
  const GgmlTypeInfo info = *ggml_type_info(static_cast<uint32_t>(type));
  const std::string raw = read_text(dir + "/" + name + ".bin");
  const std::string expected_raw = read_text(dir + "/" + name + ".f32");
  const std::vector<uint8_t> blocks(raw.begin(), raw.end());
  std::vector<float> expected(expected_raw.size() / 4);
  std::memcpy(expected.data(), expected_raw.data(), expected.size() * 4);
  REQUIRE(!blocks.empty());
  REQUIRE(ggml_row_bytes(type, static_cast<int64_t>(expected.size())) == static_cast<int64_t>(blocks.size()));

  const std::vector<float> got = dequantize(type, blocks);
  size_t mismatches = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (float_bits(got[i]) != float_bits(expected[i]) && mismatches++ == 0) first = i;
  }
  INFO("first mismatch at element " << first << " (block " << first / info.block_size << "): got 0x"
                                    << std::hex << float_bits(got[first]) << ", gguf 0x"
                                    << float_bits(expected[first]));
  CHECK(mismatches == 0);
}

TEST_CASE("ggml_dequantize matches the gguf package bit for bit on random blocks", "[gguf]") {
  const std::string python = venv_python();
  if (python.empty()) return;
  const std::string dir = scratch_dir("gguf_quants");
  const auto gen = run_shell(shell_quote(python) + " " +
                             shell_quote(std::string(LLMC_SOURCE_DIR) + "/scripts/gguf_dequant_reference.py") +
                             " " + shell_quote(dir) + " 7");
  INFO(gen.output << gen.errors);
  REQUIRE(gen.exit_code == 0);

  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16})
    check_against_gguf(dir, type, ggml_type_info(static_cast<uint32_t>(type))->name);
  // Quantised types twice: finite scales (the real test of the arithmetic), then Inf/NaN scales.
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1,
                        GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    const std::string name = ggml_type_info(static_cast<uint32_t>(type))->name;
    check_against_gguf(dir, type, name);
    check_against_gguf(dir, type, name + ".nonfinite");
  }
}

TEST_CASE("ggml_dequantize on hand-built blocks", "[gguf]") {
  SECTION("Q4_0: nibble - 8, times d; low nibbles first") {
    std::vector<uint8_t> b(18, 0);
    put_u16(b, 0, kHalfTwo);
    b[2] = 0xF0;  // element 0 = 0 - 8, element 16 = 15 - 8
    const auto y = dequantize(GgmlType::kQ4_0, b);
    CHECK(y[0] == -16.0f);
    CHECK(y[16] == 14.0f);
    CHECK(y[1] == -16.0f);
  }
  SECTION("Q4_1: nibble * d + m") {
    std::vector<uint8_t> b(20, 0);
    put_u16(b, 0, kHalfHalf);
    put_u16(b, 2, kHalfMinusOne);
    b[4 + 3] = 0x7A;  // element 3 = 10, element 19 = 7
    const auto y = dequantize(GgmlType::kQ4_1, b);
    CHECK(y[3] == 4.0f);
    CHECK(y[19] == 2.5f);
    CHECK(y[0] == -1.0f);
  }
  SECTION("Q5_0: qh bit j is the fifth bit of element j") {
    std::vector<uint8_t> b(22, 0);
    put_u16(b, 0, kHalfTwo);
    const uint32_t qh = 1u << 16;
    std::memcpy(&b[2], &qh, 4);
    b[6] = 0x3F;  // element 0: 15 - 16; element 16: (3 | 16) - 16
    const auto y = dequantize(GgmlType::kQ5_0, b);
    CHECK(y[0] == -2.0f);
    CHECK(y[16] == 6.0f);
    CHECK(y[1] == -32.0f);
  }
  SECTION("Q8_0: signed bytes times d") {
    std::vector<uint8_t> b(34, 0);
    put_u16(b, 0, kHalfHalf);
    b[2] = 0x80;  // -128
    b[33] = 0x7F;
    const auto y = dequantize(GgmlType::kQ8_0, b);
    CHECK(y[0] == -64.0f);
    CHECK(y[31] == 63.5f);
  }
  SECTION("Q4_K: 6-bit scales and mins, the upper four split across bytes") {
    std::vector<uint8_t> b(144, 0);
    put_u16(b, 0, kHalfOne);
    put_u16(b, 2, kHalfOne);
    b[4 + 0] = 2 | 0x40;  // sub-block 0 scale 2; its top bits are sub-block 4's scale bits 4-5
    b[4 + 4] = 1;         // sub-block 0 min 1
    b[4 + 8] = 0x31;      // sub-block 4: scale low nibble 1, min 3
    for (int i = 0; i < 128; ++i) b[16 + i] = 0x21;
    const auto y = dequantize(GgmlType::kQ4_K, b);
    CHECK(y[0] == 2.0f * 1 - 1);    // sub-block 0, low nibbles
    CHECK(y[32] == 0.0f);           // sub-block 1: scale and min 0
    CHECK(y[128] == 17.0f * 1 - 3); // sub-block 4: scale 1 | 1 << 4
  }
  SECTION("Q6_K: d * scale * (6-bit value - 32), per-16 scales") {
    std::vector<uint8_t> b(210, 0);
    put_u16(b, 208, kHalfOne);
    for (int i = 0; i < 16; ++i) b[192 + i] = 1;
    b[192 + 2] = static_cast<uint8_t>(-2);  // scale of elements 32..47
    b[0] = 0x05;
    b[128] = 0x01;  // element 0: 5 | 1 << 4 = 21
    const auto y = dequantize(GgmlType::kQ6_K, b);
    CHECK(y[0] == -11.0f);
    CHECK(y[32] == 64.0f);
    CHECK(y[255] == -32.0f);
  }
}

TEST_CASE("ggml_row_bytes multiplies whole blocks and refuses the rest", "[gguf]") {
  CHECK(ggml_row_bytes(GgmlType::kQ4_0, 64) == 36);
  CHECK(ggml_row_bytes(GgmlType::kQ4_K, 512) == 288);
  CHECK(ggml_row_bytes(GgmlType::kQ6_K, 256) == 210);
  CHECK(ggml_row_bytes(GgmlType::kF32, 3) == 12);
  CHECK(ggml_row_bytes(GgmlType::kBF16, 0) == 0);
  CHECK_FALSE(ggml_row_bytes(GgmlType::kQ4_0, 33));
  CHECK_FALSE(ggml_row_bytes(GgmlType::kQ5_K, 128));
  CHECK_FALSE(ggml_row_bytes(GgmlType::kF16, -2));
  CHECK_FALSE(ggml_row_bytes(GgmlType::kQ8_0, -32));
  const int64_t max = std::numeric_limits<int64_t>::max();
  CHECK_FALSE(ggml_row_bytes(GgmlType::kF32, max / 4 + 1));
  CHECK(ggml_row_bytes(GgmlType::kF32, max / 4) == max / 4 * 4);
  CHECK_FALSE(ggml_row_bytes(GgmlType::kQ8_0, (max / 32) * 32));  // 34 bytes per 32 elements
  CHECK_FALSE(ggml_row_bytes(static_cast<GgmlType>(15), 256));     // Q8_K: no table entry
}

TEST_CASE("GGML type table and names", "[gguf]") {
  const struct {
    uint32_t id;
    const char* name;
    int64_t block_size, block_bytes;
  } known[] = {{0, "F32", 1, 4},     {1, "F16", 1, 2},     {30, "BF16", 1, 2},   {2, "Q4_0", 32, 18},
               {3, "Q4_1", 32, 20},  {6, "Q5_0", 32, 22},  {7, "Q5_1", 32, 24},  {8, "Q8_0", 32, 34},
               {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176}, {14, "Q6_K", 256, 210}};
  for (const auto& k : known) {
    INFO(k.name);
    const auto info = ggml_type_info(k.id);
    REQUIRE(info);
    CHECK(std::string(info->name) == k.name);
    CHECK(ggml_type_name(k.id) == k.name);
    CHECK(info->block_size == k.block_size);
    CHECK(info->block_bytes == k.block_bytes);
  }
  for (uint32_t unsupported : {4u, 5u, 9u, 10u, 11u, 15u, 16u, 23u, 28u, 29u, 31u, 41u, 42u, 1000u})
    CHECK_FALSE(ggml_type_info(unsupported));
  CHECK(ggml_type_name(9) == "Q8_1");
  CHECK(ggml_type_name(10) == "Q2_K");
  CHECK(ggml_type_name(11) == "Q3_K");
  CHECK(ggml_type_name(15) == "Q8_K");
  CHECK(ggml_type_name(16) == "IQ2_XXS");
  CHECK(ggml_type_name(23) == "IQ4_XS");
  CHECK(ggml_type_name(29) == "IQ1_M");
  CHECK(ggml_type_name(35) == "TQ2_0");
  CHECK(ggml_type_name(39) == "MXFP4");
  CHECK(ggml_type_name(99) == "type 99");
  CHECK(ggml_type_name(0xFFFFFFFFu) == "type 4294967295");
}

}  // namespace
}  // namespace llmc
