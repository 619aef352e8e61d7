// GGML block layouts (ggml-common.h) and their reference dequantisers (ggml-quants.c
// dequantize_row_*), one scalar function per type, doing the same float operations in the same
// order so each output float has the same bits as llama.cpp's C code and the gguf Python package.
//
// Fused multiply-adds cannot change a finite result here: every product that is later added to
// (q*d in Q4_1/Q5_1, (d*scale)*q and dmin*min in Q4_K/Q5_K) is exact in float32, an 11-bit fp16
// significand times integers of at most 6 + 5 bits. They can change which NaN comes out of an
// Inf or NaN scale, so this file is built with -ffp-contract=off (CMakeLists.txt). The one
// product that rounds, Q6_K's (d*scale)*q, is never added to, but its order matters:
// d * (scale*q) differs in the last bit and in the sign of zero.
#include "formats/gguf_quants.h"

#include <cstring>

#include "ir/status.h"

namespace llmc {
namespace {

// IEEE binary16 -> binary32, exact for every bit pattern: subnormals are normalised, and NaN
// payloads are shifted across unchanged (signalling NaNs stay signalling, as numpy's astype keeps
// them). runtime/ has its own copy; formats/ may not depend on runtime/.
float fp16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  if (exp == 0 && mant == 0) {
    bits = sign;
  } else if (exp == 0) {  // subnormal: shift the leading one up to the implicit bit
    exp = 127 - 15 + 1;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
  } else if (exp == 31) {  // inf / NaN
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// GGUF is little-endian, as is every host we build for.
uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
float load_fp16(const uint8_t* p) { return fp16_to_float(load_u16(p)); }

constexpr int kQK = 32;    // elements in a Q4_0 ... Q8_0 block
constexpr int kQK_K = 256; // elements in a K-quant super-block

void dequantize_f32(const uint8_t* b, float* y) { std::memcpy(y, b, 4); }
void dequantize_f16(const uint8_t* b, float* y) { *y = load_fp16(b); }
void dequantize_bf16(const uint8_t* b, float* y) { *y = bf16_to_float(load_u16(b)); }

// block_q4_0 { fp16 d; u8 qs[16] }: element j is the low nibble of qs[j], element j+16 the high
// nibble, both offset by 8.
void dequantize_q4_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = ((qs[j] & 0x0F) - 8) * d;
    y[j + kQK / 2] = ((qs[j] >> 4) - 8) * d;
  }
}

// block_q4_1 { fp16 d, m; u8 qs[16] }: unsigned nibbles, y = q*d + m.
void dequantize_q4_1(const uint8_t* b, float* y) {
  const float d = load_fp16(b), m = load_fp16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = (qs[j] & 0x0F) * d + m;
    y[j + kQK / 2] = (qs[j] >> 4) * d + m;
  }
}

// Bit j of the 32-bit qh is the fifth bit of element j (Q5_0 / Q5_1).
uint32_t load_qh(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// block_q5_0 { fp16 d; u8 qh[4]; u8 qs[16] }: 5-bit values offset by 16.
void dequantize_q5_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const uint32_t qh = load_qh(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < kQK / 2; ++j) {
    const int high0 = ((qh >> j) << 4) & 0x10, high1 = (qh >> (j + 12)) & 0x10;
    y[j] = (((qs[j] & 0x0F) | high0) - 16) * d;
    y[j + kQK / 2] = (((qs[j] >> 4) | high1) - 16) * d;
  }
}

// block_q5_1 { fp16 d, m; u8 qh[4]; u8 qs[16] }: unsigned 5-bit values, y = q*d + m.
void dequantize_q5_1(const uint8_t* b, float* y) {
  const float d = load_fp16(b), m = load_fp16(b + 2);
  const uint32_t qh = load_qh(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < kQK / 2; ++j) {
    const int high0 = ((qh >> j) << 4) & 0x10, high1 = (qh >> (j + 12)) & 0x10;
    y[j] = ((qs[j] & 0x0F) | high0) * d + m;
    y[j + kQK / 2] = ((qs[j] >> 4) | high1) * d + m;
  }
}

// block_q8_0 { fp16 d; i8 qs[32] }.
void dequantize_q8_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<int8_t>(b[2 + j]) * d;
}

// get_scale_min_k4: the 6-bit scale and min of sub-block j packed in 12 bytes. Sub-blocks 0..3
// keep theirs in the low 6 bits of bytes j and j+4; 4..7 split theirs between a nibble of byte
// j+4 and the top two bits of bytes j-4 (scale) and j (min).
void scale_min_k4(int j, const uint8_t* q, int& scale, int& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// block_q4_K { fp16 d, dmin; u8 scales[12]; u8 qs[128] }: eight sub-blocks of 32; each group of
// 32 bytes holds two sub-blocks (low nibbles, then high). y = (d*scale) * q - (dmin*min).
void dequantize_q4_k(const uint8_t* b, float* y) {
  const float d = load_fp16(b), dmin = load_fp16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int sub = 0; sub < 8; sub += 2, q += 32) {
    int sc, m;
    scale_min_k4(sub, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(sub + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0x0F) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
  }
}

// block_q5_K { fp16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] }: as Q4_K, plus bit `sub` of
// qh[l] adds 16 to element l of sub-block `sub`.
void dequantize_q5_k(const uint8_t* b, float* y) {
  const float d = load_fp16(b), dmin = load_fp16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  for (int sub = 0; sub < 8; sub += 2, ql += 32) {
    int sc, m;
    scale_min_k4(sub, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(sub + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    const int u1 = 1 << sub, u2 = 2 << sub;
    for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0x0F) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
  }
}

// block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; fp16 d }: two halves of 128 elements; in
// each, element l + 32*k (k = 0..3) takes a nibble of ql (k even: low, odd: high; k >= 2 from
// ql[l + 32]) and two bits of qh[l] at 2k, offset by 32, scaled by scales[l/16 + 2k].
// y = d * scale * q, multiplied left to right.
void dequantize_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = load_fp16(b + 208);
  for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * sc[is] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
  }
}

struct TypeEntry {
  GgmlType type;
  GgmlTypeInfo info;
  void (*dequantize_block)(const uint8_t* block, float* out);
};

constexpr TypeEntry kTypes[] = {
    {GgmlType::kF32, {"F32", 1, 4}, dequantize_f32},
    {GgmlType::kF16, {"F16", 1, 2}, dequantize_f16},
    {GgmlType::kBF16, {"BF16", 1, 2}, dequantize_bf16},
    {GgmlType::kQ4_0, {"Q4_0", kQK, 2 + 16}, dequantize_q4_0},
    {GgmlType::kQ4_1, {"Q4_1", kQK, 2 + 2 + 16}, dequantize_q4_1},
    {GgmlType::kQ5_0, {"Q5_0", kQK, 2 + 4 + 16}, dequantize_q5_0},
    {GgmlType::kQ5_1, {"Q5_1", kQK, 2 + 2 + 4 + 16}, dequantize_q5_1},
    {GgmlType::kQ8_0, {"Q8_0", kQK, 2 + 32}, dequantize_q8_0},
    {GgmlType::kQ4_K, {"Q4_K", kQK_K, 2 + 2 + 12 + 128}, dequantize_q4_k},
    {GgmlType::kQ5_K, {"Q5_K", kQK_K, 2 + 2 + 12 + 32 + 128}, dequantize_q5_k},
    {GgmlType::kQ6_K, {"Q6_K", kQK_K, 128 + 64 + 16 + 2}, dequantize_q6_k},
};

const TypeEntry* find_type(uint32_t id) {
  for (const TypeEntry& e : kTypes)
    if (static_cast<uint32_t>(e.type) == id) return &e;
  return nullptr;
}

// ggml.h enum ggml_type, including ids whose support ggml has since removed (Q4_2, Q4_3, the
// repacked Q4_0_x_y / IQ4_NL_x_y), so old files still get a name in messages.
constexpr const char* kTypeNames[] = {
    "F32",     "F16",      "Q4_0",     "Q4_1",     "Q4_2",       "Q4_3",       "Q5_0",
    "Q5_1",    "Q8_0",     "Q8_1",     "Q2_K",     "Q3_K",       "Q4_K",       "Q5_K",
    "Q6_K",    "Q8_K",     "IQ2_XXS",  "IQ2_XS",   "IQ3_XXS",    "IQ1_S",      "IQ4_NL",
    "IQ3_S",   "IQ2_S",    "IQ4_XS",   "I8",       "I16",        "I32",        "I64",
    "F64",     "IQ1_M",    "BF16",     "Q4_0_4_4", "Q4_0_4_8",   "Q4_0_8_8",   "TQ1_0",
    "TQ2_0",   "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4", "NVFP4",   "Q1_0",
};

}  // namespace

std::optional<GgmlTypeInfo> ggml_type_info(uint32_t type) {
  const TypeEntry* e = find_type(type);
  if (!e) return std::nullopt;
  return e->info;
}

std::string ggml_type_name(uint32_t type) {
  if (type < std::size(kTypeNames)) return kTypeNames[type];
  return "type " + std::to_string(type);
}

std::optional<int64_t> ggml_row_bytes(GgmlType type, int64_t n_elements) {
  const TypeEntry* e = find_type(static_cast<uint32_t>(type));
  if (!e || n_elements < 0 || n_elements % e->info.block_size != 0) return std::nullopt;
  int64_t bytes;
  if (__builtin_mul_overflow(n_elements / e->info.block_size, e->info.block_bytes, &bytes))
    return std::nullopt;
  return bytes;
}

void ggml_dequantize(GgmlType type, const void* src, float* dst, int64_t n_elements) {
  const TypeEntry* e = find_type(static_cast<uint32_t>(type));
  LLMC_CHECK(e, "ggml_dequantize: unsupported GGML type ", ggml_type_name(static_cast<uint32_t>(type)));
  LLMC_CHECK(n_elements >= 0 && n_elements % e->info.block_size == 0, "ggml_dequantize: ",
             n_elements, " elements is not a whole number of ", e->info.name, " blocks");
  const auto* block = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n_elements; i += e->info.block_size, block += e->info.block_bytes)
    e->dequantize_block(block, dst + i);
}

}  // namespace llmc
