// MatMulNBits int8 mode for many rows (prefill) with AMX (compiled with -mamx-tile -mamx-int8
// and the AVX-512 flags): per 16-row tile and block, one TDPBSUD (signed activations x
// unsigned weights, exact int32) replaces 16·block_size/4 vpdpbusd, so what remains is the
// per-block float epilogue. The panel's weights are unpacked once per call into int8 k-group
// rows (the B tile layout is the packed layout's 64-byte chunks, nibbles split). Block sums and
// epilogue are the AVX-512 VNNI variant's, operation for operation, so results are
// bit-identical to it. Only intrinsics and file-local functions are used (see
// nbits_gemm_kernels.inc for why).
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#include "runtime/kernels/nbits_layout.h"

namespace llmc::rt::nbits_amx {

namespace {

struct alignas(64) TileConfig {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

constexpr int kZpUniform = static_cast<int>(NBitsZp::kUniform), kZpInt = static_cast<int>(NBitsZp::kInt),
              kZpFloat = static_cast<int>(NBitsZp::kFloat);

bool detect() {
  unsigned a, b, c, d;
  __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
  if (!((d >> 24) & 1) || !((d >> 25) & 1)) return false;  // AMX-TILE, AMX-INT8
  // Linux hands out the tile data state only on request (ARCH_REQ_XCOMP_PERM, XTILEDATA).
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

}  // namespace

bool available() {
  static const bool ok = detect();
  return ok;
}

// Rows [0, M) of one panel; qa must hold rows up to M rounded up to 16 (zeros past M). wbuf:
// Kp·16 bytes, cbuf: 4·256 int32, both 64-byte aligned.
void int8_rows(const NBitsLayout& L, const uint8_t* panel, int64_t M, const int8_t* qa, int64_t Kp, const float* sa,
               const int32_t* asum, const int32_t* corr, const float* bias, float* Y, int64_t ldy, int64_t width,
               uint8_t* wbuf, int32_t* cbuf) {
  const int64_t bs = L.block_size, sub = bs < 64 ? bs : 64;  // k per tile product
  // The weights as B tiles: k-group rows of 16 columns x 4 bytes, block after block.
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < L.k_blocks; ++b) {
    const uint8_t* blk = panel + b * L.block_bytes;
    uint8_t* dst = wbuf + b * bs * 16;
    if (L.bits == 4) {
      for (int64_t c = 0; c < bs / 8; ++c) {
        const __m512i v = _mm512_loadu_si512(blk + 64 * c);
        _mm512_store_si512(dst + 128 * c, _mm512_and_si512(v, low));
        _mm512_store_si512(dst + 128 * c + 64, _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
      }
    } else {
      for (int64_t c = 0; c < bs / 4; ++c) _mm512_store_si512(dst + 64 * c, _mm512_loadu_si512(blk + 64 * c));
    }
  }
  // Tiles 0-3: the sums of four consecutive blocks (independent products, so their latencies
  // overlap); 4-5: activations; 6-7: weights.
  TileConfig cfg = {};
  cfg.palette = 1;
  for (int t = 0; t < 4; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;                   // 16 rows x 16 int32
  for (int t = 4; t < 6; ++t) cfg.rows[t] = 16, cfg.colsb[t] = static_cast<uint16_t>(sub);  // 16 rows x sub int8
  for (int t = 6; t < 8; ++t) cfg.rows[t] = static_cast<uint8_t>(sub / 4), cfg.colsb[t] = 64;  // sub/4 k-groups
  _tile_loadconfig(&cfg);
  const __mmask16 mask = static_cast<__mmask16>((1u << width) - 1);
  const __m512 bv = bias ? _mm512_maskz_loadu_ps(mask, bias) : _mm512_setzero_ps();
  for (int64_t m0 = 0; m0 < M; m0 += 16) {
    const int64_t rows = M - m0 < 16 ? M - m0 : 16;
    const int8_t* a = qa + m0 * Kp;
    __m512 y[16];
    for (int r = 0; r < 16; ++r) y[r] = _mm512_setzero_ps();
    for (int64_t b0 = 0; b0 < L.k_blocks; b0 += 4) {
      const int64_t nb = L.k_blocks - b0 < 4 ? L.k_blocks - b0 : 4;
#define NBITS_AMX_BLOCK(j, ta, tb)                                       \
  if (j < nb) {                                                          \
    _tile_zero(j);                                                       \
    for (int64_t s0 = (b0 + j) * bs; s0 < (b0 + j + 1) * bs; s0 += sub) { \
      _tile_loadd(ta, a + s0, Kp);                                       \
      _tile_loadd(tb, wbuf + s0 * 16, 64);                               \
      _tile_dpbsud(j, ta, tb);                                           \
    }                                                                    \
    _tile_stored(j, cbuf + 256 * j, 64);                                 \
  }
      NBITS_AMX_BLOCK(0, 4, 6)
      NBITS_AMX_BLOCK(1, 5, 7)
      NBITS_AMX_BLOCK(2, 4, 6)
      NBITS_AMX_BLOCK(3, 5, 7)
#undef NBITS_AMX_BLOCK
      for (int64_t j = 0; j < nb; ++j) {
        const int64_t b = b0 + j;
        const uint8_t* tail = panel + b * L.block_bytes + L.weight_bytes;
        const __m512 s = _mm512_loadu_ps(tail);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t at = (m0 + r) * L.k_blocks + b;
          __m512i i = _mm512_load_si512(cbuf + 256 * j + 16 * r);
          if (L.zp_mode == kZpUniform) {
            i = _mm512_add_epi32(_mm512_set1_epi32(corr[at]), i);
          } else if (L.zp_mode == kZpInt) {
            const __m512i zp = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tail + 64)));
            i = _mm512_add_epi32(_mm512_mullo_epi32(zp, _mm512_set1_epi32(-asum[at])), i);
          }
          y[r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i), _mm512_set1_ps(sa[at])), s, y[r]);
          if (L.zp_mode == kZpFloat)
            y[r] = _mm512_fmadd_ps(_mm512_loadu_ps(tail + 64),
                                   _mm512_set1_ps(-(sa[at] * static_cast<float>(asum[at]))), y[r]);
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) _mm512_mask_storeu_ps(Y + (m0 + r) * ldy, mask, _mm512_add_ps(y[r], bv));
  }
  _tile_release();
}

}  // namespace llmc::rt::nbits_amx
