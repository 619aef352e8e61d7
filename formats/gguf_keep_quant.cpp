#include "formats/gguf_keep_quant.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>

#include "ir/graph_rewrite.h"

namespace llmc {

namespace {

constexpr int64_t kBlock = 32;  // elements in a Q4_0 / Q4_1 / Q8_0 block, and MatMulNBits' block_size

float load_fp16(const uint8_t* p) {  // exact, through the reference F16 dequantiser
  float f;
  ggml_dequantize(GgmlType::kF16, p, &f, 1);
  return f;
}

// GGML's 16 bytes (element j low, j+16 high in qs[j]) -> MatMulNBits' (2i low, 2i+1 high).
void repack_q4(const uint8_t* qs, uint8_t* out) {
  auto element = [qs](int j) { return j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4; };
  for (int i = 0; i < kBlock / 2; ++i) out[i] = static_cast<uint8_t>(element(2 * i) | (element(2 * i + 1) << 4));
}

std::string join_counts(const std::map<std::string, int>& counts) {
  std::ostringstream s;
  for (auto it = counts.begin(); it != counts.end(); ++it) s << (it == counts.begin() ? "" : ", ") << it->second << " " << it->first;
  return s.str();
}

}  // namespace

bool ggml_type_keepable(GgmlType type) {
  return type == GgmlType::kQ4_0 || type == GgmlType::kQ4_1 || type == GgmlType::kQ8_0;
}

Result<std::optional<MatMulNBitsWeight>> pack_matmul_nbits(GgmlType type, const uint8_t* data, int64_t k,
                                                           int64_t n, const std::string& name) {
  const std::optional<MatMulNBitsWeight> not_kept;
  if (!ggml_type_keepable(type)) return not_kept;
  if (k <= 0 || n <= 0 || k % kBlock != 0)
    return invalid_input(name, ": ", n, " rows of ", k, " elements cannot be blocks of ", kBlock);
  const int bits = type == GgmlType::kQ8_0 ? 8 : 4;
  const int64_t blob = kBlock * bits / 8, k_blocks = k / kBlock;
  const int64_t src_block = ggml_type_info(static_cast<uint32_t>(type))->block_bytes;
  int64_t blocks = 0, bytes = 0, src_bytes = 0;
  if (__builtin_mul_overflow(n, k_blocks, &blocks) || __builtin_mul_overflow(blocks, blob, &bytes) ||
      __builtin_mul_overflow(blocks, src_block, &src_bytes) || blocks > INT64_MAX / 4)
    return invalid_input(name, ": ", n, " x ", k, " blocks overflow");

  MatMulNBitsWeight w;
  w.k = k;
  w.n = n;
  w.bits = bits;
  w.block_size = static_cast<int>(kBlock);
  w.b = Tensor::uninitialized(name + (bits == 4 ? "_Q4" : "_Q8"), DType::kU8, {n, k_blocks, blob});
  w.scales = Tensor::uninitialized(name + "_scales", DType::kF32, {n, k_blocks});
  float* zp = nullptr;
  if (type == GgmlType::kQ4_1) {
    w.zero_points = Tensor::uninitialized(name + "_zero_points", DType::kF32, {n, k_blocks});
    zp = reinterpret_cast<float*>(w.zero_points->mutable_data());
  }
  uint8_t* out = w.b.mutable_data();
  float* scale = reinterpret_cast<float*>(w.scales.mutable_data());
  for (int64_t i = 0; i < blocks; ++i) {
    const uint8_t* blk = data + i * src_block;
    uint8_t* o = out + i * blob;
    const float d = load_fp16(blk);
    if (!std::isfinite(d)) return not_kept;
    scale[i] = d;
    switch (type) {
      case GgmlType::kQ8_0:  // int8 q -> q + 128
        for (int j = 0; j < kBlock; ++j) o[j] = static_cast<uint8_t>(blk[2 + j] ^ 0x80);
        break;
      case GgmlType::kQ4_0:
        repack_q4(blk + 2, o);
        break;
      default: {  // Q4_1
        const float m = load_fp16(blk + 2);
        if (!std::isfinite(m)) return not_kept;
        if (d == 0) {  // every element is m: q = 1, scale m (+0 for a zero m, as 0·q + m gives)
          scale[i] = m == 0 ? 0.0f : m;
          zp[i] = 0;
          std::memset(o, 0x11, static_cast<size_t>(blob));
        } else {
          zp[i] = -m / d;
          repack_q4(blk + 4, o);
        }
      }
    }
  }
  return std::optional<MatMulNBitsWeight>(std::move(w));
}

std::vector<float> matmul_nbits_dequantize(const MatMulNBitsWeight& w) {
  const int64_t k_blocks = (w.k + w.block_size - 1) / w.block_size, blob = w.block_size * w.bits / 8;
  const uint8_t* b = w.b.data();
  const float* scales = w.scales.data_as<float>();
  const float* zps = w.zero_points ? w.zero_points->data_as<float>() : nullptr;
  const int mask = (1 << w.bits) - 1;
  std::vector<float> out(static_cast<size_t>(w.n * w.k));
  for (int64_t r = 0; r < w.n; ++r)
    for (int64_t c = 0; c < w.k; ++c) {
      const int64_t blk = r * k_blocks + c / w.block_size, e = c % w.block_size;
      const int64_t bit = e * w.bits;
      const int q = (b[blk * blob + bit / 8] >> (bit % 8)) & mask;
      const float zp = zps ? zps[blk] : static_cast<float>(1 << (w.bits - 1));
      out[static_cast<size_t>(r * w.k + c)] = (static_cast<float>(q) - zp) * scales[blk];
    }
  return out;
}

std::string KeepQuantReport::summary() const {
  int none = 0;
  for (const auto& [type, n] : dequantised) none += n;
  std::string s = "kept " + (kept.empty() ? std::string("no") : join_counts(kept)) + " tensors as MatMulNBits, ";
  s += std::to_string(none) + " dequantised";
  if (!dequantised.empty()) s += " (" + join_counts(dequantised) + ")";
  return s;
}

Result<KeepQuantReport> keep_gguf_quant(const GgufFile& gguf,
                                        const std::vector<std::pair<std::string, std::string>>& weights,
                                        Model& model) {
  KeepQuantReport report;
  std::map<std::string, MatMulNBitsWeight> packed;  // by initializer (Hugging Face) name
  for (const auto& [hf_name, gguf_name] : weights) {
    const GgufTensorInfo* t = gguf.find_tensor(gguf_name);
    if (!t || t->ne.size() != 2)
      return invalid_input(gguf.path(), ": tensor '", gguf_name, "' is missing or not a matrix");
    LLMC_ASSIGN_OR_RETURN(auto p, pack_matmul_nbits(t->type, gguf.tensor_data(*t), t->ne[0], t->ne[1], hf_name));
    const std::string type = ggml_type_name(static_cast<uint32_t>(t->type));
    if (!p) {
      ++report.dequantised[type];
      continue;
    }
    ++report.kept[type];
    packed.insert_or_assign(hf_name, std::move(*p));
  }
  if (packed.empty()) return report;

  GraphRewrite rw(model.graph);
  std::map<std::string, std::vector<std::string>> inputs;  // packed initializers, added on first use
  for (Node& node : model.graph.nodes) {
    auto it = node.op_type == "MatMul" && node.domain.empty() && node.inputs.size() == 2
                  ? packed.find(node.inputs[1]) : packed.end();
    if (it == packed.end()) {
      rw.keep(std::move(node));
      continue;
    }
    MatMulNBitsWeight& w = it->second;
    auto& names = inputs[it->first];
    if (names.empty()) {
      names.push_back(rw.initializer(std::move(w.b)));
      names.push_back(rw.initializer(std::move(w.scales)));
      if (w.zero_points) names.push_back(rw.initializer(std::move(*w.zero_points)));
    }
    node.op_type = "MatMulNBits";
    node.domain = "com.microsoft";
    node.inputs.resize(1);
    node.inputs.insert(node.inputs.end(), names.begin(), names.end());
    node.attributes = {Attribute::make_int("K", w.k), Attribute::make_int("N", w.n),
                       Attribute::make_int("bits", w.bits), Attribute::make_int("block_size", w.block_size)};
    rw.keep(std::move(node));
  }
  rw.commit();
  model.set_opset("com.microsoft", 1);
  return report;
}

}  // namespace llmc
