// The AVX-512 panel loops of NMSparseMatMul decode (layouts in nm_sparse.h). Each reproduces
// its portable twin in nm_sparse.cpp exactly: float32 columns accumulate with one fused
// multiply-add per kept weight in the same order; int8 sums are exact.
#include <immintrin.h>

#include "runtime/kernels/nm_sparse_panels.h"

namespace llmc::rt::nm_panels {

namespace {

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

template <int kN, bool kHalf>
void float_panels(const Panels& b, const Row& job, int64_t p0, int64_t p1) {
  const float* x = job.x;
  float* y = job.y;
  constexpr int64_t es = kHalf ? 2 : 4;
  constexpr int64_t blk_bytes = float_block_bytes(kN, kHalf);
  const __m512i shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const int64_t groups = b.K / 4;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* blk = b.data + p * b.panel_bytes;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; ++g, blk += blk_bytes) {
      const __m512 xg = _mm512_broadcast_f32x4(_mm_loadu_ps(x + 4 * g));
      const uint8_t* words = blk + kN * kFloatPanel * es;
      for (int s = 0; s < kN; ++s) {
        __m512 v0, v1;
        if constexpr (kHalf) {
          v0 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + s * 64)));
          v1 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + s * 64 + 32)));
        } else {
          v0 = _mm512_loadu_ps(blk + s * 128);
          v1 = _mm512_loadu_ps(blk + s * 128 + 64);
        }
        const __m512i i0 = _mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(load_u32(words + 8 * s))), shifts);
        const __m512i i1 = _mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(load_u32(words + 8 * s + 4))), shifts);
        acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i0, xg), v0, acc0);
        acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i1, xg), v1, acc1);
      }
    }
    const int64_t c0 = p * kFloatPanel, left = b.N - c0;
    if (left >= kFloatPanel) {
      _mm512_storeu_ps(y + c0, acc0);
      _mm512_storeu_ps(y + c0 + 16, acc1);
    } else {
      const int64_t l0 = min64(left, 16), l1 = left - l0;
      _mm512_mask_storeu_ps(y + c0, static_cast<__mmask16>((1u << l0) - 1), acc0);
      if (l1 > 0) _mm512_mask_storeu_ps(y + c0 + 16, static_cast<__mmask16>((1u << l1) - 1), acc1);
    }
  }
}

// MR rows of A against one panel: each row's columns sum exactly as float_panels sums a decode
// row (one fused multiply-add per kept weight, slots then groups in order), so a prefill row
// equals the same row decoded alone; the positions are expanded once per group for all rows.
template <int MR, int kN, bool kHalf>
void float_tile(const Panels& b, const uint8_t* panel, const float* A, int64_t lda, float* C, int64_t ldc,
                int64_t width) {
  constexpr int64_t es = kHalf ? 2 : 4;
  constexpr int64_t blk_bytes = float_block_bytes(kN, kHalf);
  const __m512i shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const uint8_t* blk = panel;
  for (int64_t g = 0; g < b.K / 4; ++g, blk += blk_bytes) {
    const uint8_t* words = blk + kN * kFloatPanel * es;
    __m512 v[kN][2];
    __m512i ix[kN][2];
    for (int s = 0; s < kN; ++s) {
      if constexpr (kHalf) {
        v[s][0] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + s * 64)));
        v[s][1] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + s * 64 + 32)));
      } else {
        v[s][0] = _mm512_loadu_ps(blk + s * 128);
        v[s][1] = _mm512_loadu_ps(blk + s * 128 + 64);
      }
      ix[s][0] = _mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(load_u32(words + 8 * s))), shifts);
      ix[s][1] = _mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(load_u32(words + 8 * s + 4))), shifts);
    }
    for (int r = 0; r < MR; ++r) {
      const __m512 xg = _mm512_broadcast_f32x4(_mm_loadu_ps(A + r * lda + 4 * g));
      for (int s = 0; s < kN; ++s) {
        acc[r][0] = _mm512_fmadd_ps(_mm512_permutexvar_ps(ix[s][0], xg), v[s][0], acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(_mm512_permutexvar_ps(ix[s][1], xg), v[s][1], acc[r][1]);
      }
    }
  }
  const int64_t l0 = min64(width, 16), l1 = width - l0;
  const __mmask16 m0 = static_cast<__mmask16>((1u << l0) - 1), m1 = static_cast<__mmask16>(l1 > 0 ? (1u << l1) - 1 : 0);
  for (int r = 0; r < MR; ++r) {
    _mm512_mask_storeu_ps(C + r * ldc, m0, acc[r][0]);
    if (l1 > 0) _mm512_mask_storeu_ps(C + r * ldc + 16, m1, acc[r][1]);
  }
}

template <int kN, bool kHalf>
void float_gemm(const Panels& b, const float* A, int64_t M, float* C, int64_t p0, int64_t p1) {
  constexpr int MR = 6;
  const int64_t K = b.K, N = b.N;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* panel = b.data + p * b.panel_bytes;
    const int64_t c0 = p * kFloatPanel, width = min64(kFloatPanel, N - c0);
    int64_t m = 0;
    for (; m + MR <= M; m += MR) float_tile<MR, kN, kHalf>(b, panel, A + m * K, K, C + m * N + c0, N, width);
    const float* a = A + m * K;
    float* c = C + m * N + c0;
    switch (M - m) {
      case 5: float_tile<5, kN, kHalf>(b, panel, a, K, c, N, width); break;
      case 4: float_tile<4, kN, kHalf>(b, panel, a, K, c, N, width); break;
      case 3: float_tile<3, kN, kHalf>(b, panel, a, K, c, N, width); break;
      case 2: float_tile<2, kN, kHalf>(b, panel, a, K, c, N, width); break;
      case 1: float_tile<1, kN, kHalf>(b, panel, a, K, c, N, width); break;
      default: break;
    }
  }
}

// One decode row against int8 panels [p0, p1) (kept apart from int8_tile: the row-major form
// of the same loop streams ~10% slower, measured).
template <int kN>
void int8_panels(const Panels& b, const Row& job, int64_t p0, int64_t p1) {
  const uint8_t* xq = job.xq;
  // Byte k of each 64-bit word of positions (lanes 2i, 2i + 1) starts at bit 2k.
  const __m512i ctrl = _mm512_set1_epi64(0x0E0C0A0806040200LL);
  const __m512i three = _mm512_set1_epi8(3);
  // Window offset of each lane byte's group: 2:4 has groups (0, 0, 1, 1), 1:4 (0, 1, 2, 3).
  const __m512i offs = _mm512_set1_epi32(kN == 2 ? 0x04040000 : 0x0C080400);
  const __m512i zp = _mm512_set1_epi32(job.a_zp);
  const __m512 a_scale = _mm512_set1_ps(job.a_scale);
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* blk = b.data + p * b.panel_bytes;
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int64_t q = 0; q < b.blocks; ++q, blk += kInt8BlockBytes) {
      const __m512i win = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xq + 4 * (4 * q / kN))));
      for (int z = 0; z < 4; ++z) {
        const __m512i w = _mm512_loadu_si512(blk + 64 * z);
        const __m512i bits = _mm512_cvtepu16_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 256 + 16 * z)));
        const __m512i sel = _mm512_ternarylogic_epi32(_mm512_multishift_epi64_epi8(ctrl, bits), three, offs, 0xEA);
        acc[z] = _mm512_dpbusd_epi32(acc[z], _mm512_permutexvar_epi8(sel, win), w);
      }
    }
    const int64_t c0 = p * kInt8Panel;
    for (int z = 0; z < 4; ++z) {
      const int64_t c = c0 + 16 * z, left = b.N - c;
      if (left <= 0) break;
      const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
      const __m512i cs = _mm512_maskz_loadu_epi32(m, b.colsum + c);
      const __m512 ws = job.per_col ? _mm512_maskz_loadu_ps(m, job.scales + c) : _mm512_set1_ps(job.scales[0]);
      const __m512 sum = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[z], _mm512_mullo_epi32(zp, cs)));
      // float(sum) · (a_scale · scale): the dense epilogue's two roundings, in its order.
      _mm512_mask_storeu_ps(job.y + c, m, _mm512_mul_ps(sum, _mm512_mul_ps(a_scale, ws)));
    }
  }
}

// MR rows against one int8 panel: rows r of activations at job.xq + r·lda, of results at
// job.y + r·ldc. Byte indices are built once per block for all rows; sums are exact, so every
// row equals the dense product's, decoded alone or in a prefill.
template <int MR, int kN>
void int8_tile(const Panels& b, const Row& job, int64_t p, int64_t lda, int64_t ldc) {
  // Byte k of each 64-bit word of positions (lanes 2i, 2i + 1) starts at bit 2k.
  const __m512i ctrl = _mm512_set1_epi64(0x0E0C0A0806040200LL);
  const __m512i three = _mm512_set1_epi8(3);
  // Window offset of each lane byte's group: 2:4 has groups (0, 0, 1, 1), 1:4 (0, 1, 2, 3).
  const __m512i offs = _mm512_set1_epi32(kN == 2 ? 0x04040000 : 0x0C080400);
  const uint8_t* blk = b.data + p * b.panel_bytes;
  __m512i acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int z = 0; z < 4; ++z) acc[r][z] = _mm512_setzero_si512();
  for (int64_t q = 0; q < b.blocks; ++q, blk += kInt8BlockBytes) {
    __m512i w[4], sel[4];
    for (int z = 0; z < 4; ++z) {
      w[z] = _mm512_loadu_si512(blk + 64 * z);
      const __m512i bits = _mm512_cvtepu16_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 256 + 16 * z)));
      sel[z] = _mm512_ternarylogic_epi32(_mm512_multishift_epi64_epi8(ctrl, bits), three, offs, 0xEA);
    }
    const uint8_t* x = job.xq + 4 * (4 * q / kN);
    for (int r = 0; r < MR; ++r) {
      const __m512i win = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + r * lda)));
      for (int z = 0; z < 4; ++z) acc[r][z] = _mm512_dpbusd_epi32(acc[r][z], _mm512_permutexvar_epi8(sel[z], win), w[z]);
    }
  }
  const __m512i zp = _mm512_set1_epi32(job.a_zp);
  const __m512 a_scale = _mm512_set1_ps(job.a_scale);
  const int64_t c0 = p * kInt8Panel;
  for (int z = 0; z < 4; ++z) {
    const int64_t c = c0 + 16 * z, left = b.N - c;
    if (left <= 0) break;
    const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    const __m512i cs = _mm512_mullo_epi32(zp, _mm512_maskz_loadu_epi32(m, b.colsum + c));
    const __m512 ws = job.per_col ? _mm512_maskz_loadu_ps(m, job.scales + c) : _mm512_set1_ps(job.scales[0]);
    const __m512 scale = _mm512_mul_ps(a_scale, ws);
    for (int r = 0; r < MR; ++r) {
      const __m512 sum = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][z], cs));
      // float(sum) · (a_scale · scale): the dense epilogue's two roundings, in its order.
      _mm512_mask_storeu_ps(job.y + r * ldc + c, m, _mm512_mul_ps(sum, scale));
    }
  }
}

template <int kN>
void int8_gemm(const Panels& b, const Row& job, int64_t M, int64_t lda, int64_t ldc, int64_t p0, int64_t p1) {
  constexpr int MR = 4;
  for (int64_t p = p0; p < p1; ++p) {
    Row rows = job;
    int64_t m = 0;
    for (; m + MR <= M; m += MR, rows.xq += MR * lda, rows.y += MR * ldc) int8_tile<MR, kN>(b, rows, p, lda, ldc);
    switch (M - m) {
      case 3: int8_tile<3, kN>(b, rows, p, lda, ldc); break;
      case 2: int8_tile<2, kN>(b, rows, p, lda, ldc); break;
      case 1: int8_tile<1, kN>(b, rows, p, lda, ldc); break;
      default: break;
    }
  }
}

}  // namespace

void gemv_float(const Panels& b, const Row& row, int64_t p0, int64_t p1) {
  if (b.n == 2) b.half ? float_panels<2, true>(b, row, p0, p1) : float_panels<2, false>(b, row, p0, p1);
  else b.half ? float_panels<1, true>(b, row, p0, p1) : float_panels<1, false>(b, row, p0, p1);
}

void gemm_float(const Panels& b, const float* A, int64_t M, float* C, int64_t p0, int64_t p1) {
  if (b.n == 2) b.half ? float_gemm<2, true>(b, A, M, C, p0, p1) : float_gemm<2, false>(b, A, M, C, p0, p1);
  else b.half ? float_gemm<1, true>(b, A, M, C, p0, p1) : float_gemm<1, false>(b, A, M, C, p0, p1);
}

void gemv_int8(const Panels& b, const Row& row, int64_t p0, int64_t p1) {
  if (b.n == 2) int8_panels<2>(b, row, p0, p1);
  else int8_panels<1>(b, row, p0, p1);
}

void gemm_int8(const Panels& b, const Row& row, int64_t M, int64_t lda, int64_t ldc, int64_t p0, int64_t p1) {
  if (b.n == 2) int8_gemm<2>(b, row, M, lda, ldc, p0, p1);
  else int8_gemm<1>(b, row, M, lda, ldc, p0, p1);
}

}  // namespace llmc::rt::nm_panels
