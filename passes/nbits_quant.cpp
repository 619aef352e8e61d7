#include "passes/nbits_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace llmc {

std::string NBitsFormat::describe() const {
  return str_cat("int", bits, symmetric ? " symmetric" : " asymmetric", ", block ", block);
}

std::string block_size_problem(int64_t block) {
  if (block < 16 || (block & (block - 1)) != 0)
    return str_cat("block size ", block, " is not a power of two >= 16 (MatMulNBits takes 16, 32, 64, 128, ...)");
  return "";
}

namespace {

// In float arithmetic, as ONNX Runtime's quantiser (MLAS) computes it: the same scales and zero
// points to the bit.
template <typename T>
BlockRange range_of(const T* w, int64_t count, const NBitsFormat& f) {
  float lo = std::numeric_limits<float>::max(), hi = -lo;
  for (int64_t i = 0; i < count; ++i) {
    lo = std::min(lo, float(w[i]));
    hi = std::max(hi, float(w[i]));
  }
  BlockRange r;
  if (f.symmetric) {
    const float v = std::fabs(hi) > std::fabs(lo) ? hi : lo;  // largest magnitude, sign kept; a tie takes the min
    r.zero_point = 1 << (f.bits - 1);
    r.scale = v / -float(1 << (f.bits - 1));
  } else {
    lo = std::min(lo, 0.0f);  // the range always holds 0, so zero weights stay exactly zero
    hi = std::max(hi, 0.0f);
    r.scale = (hi - lo) / float(f.max_code());
    const float zp = r.scale != 0 ? -lo / r.scale : lo;
    r.zero_point = zp < 0 ? 0 : zp > float(f.max_code()) ? f.max_code() : int(std::roundf(zp));
  }
  r.reciprocal = r.scale != 0 ? 1.0f / r.scale : 0.0f;
  return r;
}

}  // namespace

BlockRange block_range(const float* w, int64_t count, const NBitsFormat& f) { return range_of(w, count, f); }
BlockRange block_range(const double* w, int64_t count, const NBitsFormat& f) { return range_of(w, count, f); }

NBitsCodes rtn_codes(const float* w_nk, int64_t N, int64_t K, const NBitsFormat& f, rt::ThreadPool* pool) {
  NBitsCodes c;
  c.K = K;
  c.N = N;
  c.format = f;
  const int64_t blocks = f.blocks(K);
  c.q.resize(size_t(N * K));
  c.ranges.resize(size_t(N * blocks));
  auto rows = [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t k0 = b * f.block, count = std::min(f.block, K - k0);
        const float* w = w_nk + n * K + k0;
        const BlockRange r = block_range(w, count, f);
        c.ranges[size_t(n * blocks + b)] = r;
        uint8_t* q = c.q.data() + n * K + k0;
        for (int64_t i = 0; i < count; ++i) q[i] = uint8_t(quantize_code(w[i], r, f.max_code()));
      }
  };
  if (pool) pool->parallel_for(N, 16, rows);
  else rows(0, N);
  return c;
}

Result<NBitsTensors> pack_nbits(const NBitsCodes& c, const std::string& name, rt::ThreadPool* pool) {
  const NBitsFormat& f = c.format;
  const int64_t blocks = f.blocks(c.K), blob = f.block * f.bits / 8;
  const int64_t zp_bytes = (blocks * f.bits + 7) / 8;
  int64_t nb = 0, bytes = 0;
  if (c.N <= 0 || c.K <= 0 || __builtin_mul_overflow(c.N, blocks, &nb) || __builtin_mul_overflow(nb, blob, &bytes))
    return invalid_input(name, ": ", c.N, " x ", c.K, " weight cannot be packed in blocks of ", f.block);
  NBitsTensors t;
  t.b = Tensor::uninitialized(name + (f.bits == 4 ? "_Q4" : "_Q8"), DType::kU8, {c.N, blocks, blob});
  t.scales = Tensor::uninitialized(name + "_scales", DType::kF32, {c.N, blocks});
  uint8_t* out = t.b.mutable_data();
  float* scales = reinterpret_cast<float*>(t.scales.mutable_data());
  uint8_t* zps = nullptr;
  if (!f.symmetric) {
    t.zero_points = Tensor::zeros(name + "_zero_points", DType::kU8, {c.N, zp_bytes});
    zps = t.zero_points->mutable_data();
  }
  auto rows = [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t b = 0; b < blocks; ++b) {
        const BlockRange& r = c.ranges[size_t(n * blocks + b)];
        scales[n * blocks + b] = r.scale;
        if (zps) {
          if (f.bits == 8) zps[n * zp_bytes + b] = uint8_t(r.zero_point);
          else zps[n * zp_bytes + b / 2] |= uint8_t(r.zero_point << (4 * (b % 2)));
        }
        uint8_t* o = out + (n * blocks + b) * blob;
        const int64_t k0 = b * f.block, count = std::min(f.block, c.K - k0);
        const uint8_t* q = c.q.data() + n * c.K + k0;
        if (f.bits == 8) {
          std::memcpy(o, q, size_t(count));
          std::memset(o + count, 0, size_t(f.block - count));
        } else {
          for (int64_t i = 0; i < f.block; i += 2) {
            const int lo = i < count ? q[i] : 0, hi = i + 1 < count ? q[i + 1] : 0;
            o[i / 2] = uint8_t(lo | (hi << 4));
          }
        }
      }
  };
  if (pool) pool->parallel_for(c.N, 16, rows);
  else rows(0, c.N);
  return t;
}

std::vector<float> dequantize_codes(const NBitsCodes& c) {
  const int64_t blocks = c.format.blocks(c.K);
  std::vector<float> w(c.q.size());
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t k = 0; k < c.K; ++k)
      w[size_t(n * c.K + k)] =
          float(dequantize_code(c.q[size_t(n * c.K + k)], c.ranges[size_t(n * blocks + k / c.format.block)]));
  return w;
}

}  // namespace llmc
