// The AVX-512 panel loops of NMSparseMatMul decode (layouts in nm_sparse.h). Each reproduces
// its portable twin in nm_sparse.cpp exactly: float32 columns accumulate with one fused
// multiply-add per kept weight in the same order; int8 sums are exact.
#include <immintrin.h>

#include <cstring>

#include "runtime/kernels/nm_sparse.h"

namespace llmc::rt::nm_detail {

namespace {

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <int kN, bool kHalf>
void float_panels(const NMGemv& job, int64_t p0, int64_t p1) {
  const NMPacked& b = *job.b;
  const float* x = job.x;
  float* y = job.y;
  constexpr int64_t es = kHalf ? 2 : 4;
  constexpr int64_t blk_bytes = kN * (kNMFloatPanel * es + 8);
  const __m512i shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const int64_t groups = b.shape.K / 4;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* blk = b.data.data() + p * b.panel_bytes;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; ++g, blk += blk_bytes) {
      const __m512 xg = _mm512_broadcast_f32x4(_mm_loadu_ps(x + 4 * g));
      const uint8_t* words = blk + kN * kNMFloatPanel * es;
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
    const int64_t c0 = p * kNMFloatPanel, left = b.shape.N - c0;
    if (left >= kNMFloatPanel) {
      _mm512_storeu_ps(y + c0, acc0);
      _mm512_storeu_ps(y + c0 + 16, acc1);
    } else {
      const int64_t l0 = std::min<int64_t>(left, 16), l1 = left - l0;
      _mm512_mask_storeu_ps(y + c0, static_cast<__mmask16>((1u << l0) - 1), acc0);
      if (l1 > 0) _mm512_mask_storeu_ps(y + c0 + 16, static_cast<__mmask16>((1u << l1) - 1), acc1);
    }
  }
}

template <int kN>
void int8_panels(const NMGemv& job, int64_t p0, int64_t p1) {
  const NMPacked& b = *job.b;
  const uint8_t* xq = job.xq;
  // Byte k of each 64-bit word of positions (lanes 2i, 2i + 1) starts at bit 2k.
  const __m512i ctrl = _mm512_set1_epi64(0x0E0C0A0806040200LL);
  const __m512i three = _mm512_set1_epi8(3);
  // Window offset of each lane byte's group: 2:4 has groups (0, 0, 1, 1), 1:4 (0, 1, 2, 3).
  const __m512i offs = _mm512_set1_epi32(kN == 2 ? 0x04040000 : 0x0C080400);
  const __m512i zp = _mm512_set1_epi32(job.a_zp);
  const __m512 a_scale = _mm512_set1_ps(job.a_scale);
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* blk = b.data.data() + p * b.panel_bytes;
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int64_t q = 0; q < b.blocks; ++q, blk += 320) {
      const __m512i win = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xq + 4 * (4 * q / kN))));
      for (int z = 0; z < 4; ++z) {
        const __m512i w = _mm512_loadu_si512(blk + 64 * z);
        const __m512i bits = _mm512_cvtepu16_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 256 + 16 * z)));
        const __m512i sel = _mm512_ternarylogic_epi32(_mm512_multishift_epi64_epi8(ctrl, bits), three, offs, 0xEA);
        acc[z] = _mm512_dpbusd_epi32(acc[z], _mm512_permutexvar_epi8(sel, win), w);
      }
    }
    const int64_t c0 = p * kNMInt8Panel;
    for (int z = 0; z < 4; ++z) {
      const int64_t c = c0 + 16 * z, left = b.shape.N - c;
      if (left <= 0) break;
      const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
      const __m512i cs = _mm512_maskz_loadu_epi32(m, b.colsum.data() + c);
      const __m512 ws = job.per_col ? _mm512_maskz_loadu_ps(m, job.scales + c) : _mm512_set1_ps(job.scales[0]);
      const __m512 sum = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[z], _mm512_mullo_epi32(zp, cs)));
      // float(sum) · (a_scale · scale): the dense epilogue's two roundings, in its order.
      _mm512_mask_storeu_ps(job.y + c, m, _mm512_mul_ps(sum, _mm512_mul_ps(a_scale, ws)));
    }
  }
}

}  // namespace

void gemv_float_panels(const NMGemv& job, int64_t p0, int64_t p1) {
  const bool half = job.b->dtype == DType::kF16;
  if (job.b->shape.n == 2) half ? float_panels<2, true>(job, p0, p1) : float_panels<2, false>(job, p0, p1);
  else half ? float_panels<1, true>(job, p0, p1) : float_panels<1, false>(job, p0, p1);
}

void gemv_int8_panels(const NMGemv& job, int64_t p0, int64_t p1) {
  if (job.b->shape.n == 2) int8_panels<2>(job, p0, p1);
  else int8_panels<1>(job, p0, p1);
}

}  // namespace llmc::rt::nm_detail
