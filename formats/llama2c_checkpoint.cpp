#include "formats/llama2c_checkpoint.h"

#include <cstdint>
#include <cstring>

namespace llmc {

namespace {
constexpr size_t kHeaderBytes = 7 * sizeof(int32_t);


// Float count the header implies, or an error describing the bad header.
Result<size_t> expected_floats(const Llama2cConfig& c) {
  if (c.dim <= 0 || c.hidden_dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 ||
      c.n_kv_heads <= 0 || c.vocab_size <= 0 || c.seq_len <= 0)
    return invalid_input("header has a non-positive field (dim=", c.dim, " hidden_dim=",
                         c.hidden_dim, " n_layers=", c.n_layers, " n_heads=", c.n_heads,
                         " n_kv_heads=", c.n_kv_heads, " vocab_size=", c.vocab_size,
                         " seq_len=", c.seq_len, ")");
  if (c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0 || c.head_size() % 2 != 0)
    return invalid_input("header is inconsistent: dim=", c.dim, " n_heads=", c.n_heads,
                         " n_kv_heads=", c.n_kv_heads,
                         " (need dim divisible by n_heads, n_heads by n_kv_heads, even head size)");
  const size_t dim = c.dim, hidden = c.hidden_dim, L = c.n_layers, vocab = c.vocab_size;
  const size_t kv = c.kv_dim(), seq = c.seq_len, hs = c.head_size();
  if (dim > (1u << 20) || hidden > (1u << 22) || L > 4096 || vocab > (1u << 24) || seq > (1u << 24))
    return invalid_input("header values are implausibly large (dim=", dim, " hidden_dim=", hidden,
                         " n_layers=", L, " vocab_size=", vocab, " seq_len=", seq, ")");
  size_t n = vocab * dim;                        // token embedding
  n += L * dim * 2;                              // rms_att, rms_ffn
  n += L * (dim * dim * 2 + kv * dim * 2);       // wq, wo, wk, wv
  n += L * hidden * dim * 3;                     // w1, w2, w3
  n += dim;                                      // rms_final
  n += seq * hs;                                 // freq_cis_real + freq_cis_imag (seq * hs/2 each)
  if (!c.shared_classifier) n += vocab * dim;
  return n;
}

Llama2cConfig parse_header(const uint8_t* p) {
  int32_t h[7];
  std::memcpy(h, p, sizeof h);
  Llama2cConfig c;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.shared_classifier = h[5] > 0;
  // Negative: an unshared classifier. INT32_MIN has no positive counterpart: 0, refused below.
  c.vocab_size = h[5] > 0 ? h[5] : h[5] == INT32_MIN ? 0 : -h[5];
  c.seq_len = h[6];
  return c;
}
}  // namespace

bool looks_like_llama2c_checkpoint(const MappedFile& file) {
  if (file.size() < kHeaderBytes) return false;
  auto n = expected_floats(parse_header(file.data()));
  return n.is_ok() && kHeaderBytes + n.value() * sizeof(float) == file.size();
}

Result<Llama2cCheckpoint> read_llama2c_checkpoint(const std::string& path) {
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  if (file->size() == 0) return invalid_input(path, ": file is empty");
  if (file->size() < kHeaderBytes)
    return invalid_input(path, ": file is ", file->size(),
                         " bytes, shorter than the 28-byte llama2.c header");
  Llama2cCheckpoint ck;
  ck.config = parse_header(file->data());
  auto floats = expected_floats(ck.config);
  if (!floats.is_ok()) return floats.status().with_context(path + ": not a llama2.c checkpoint");
  const size_t expected = kHeaderBytes + floats.value() * sizeof(float);
  if (file->size() != expected) {
    const auto& c = ck.config;
    return invalid_input(path, ": file is ", file->size(), " bytes but its llama2.c header (dim=",
                         c.dim, " hidden_dim=", c.hidden_dim, " n_layers=", c.n_layers,
                         " n_heads=", c.n_heads, " n_kv_heads=", c.n_kv_heads, " vocab_size=",
                         c.vocab_size, " seq_len=", c.seq_len, ") implies ", expected, " bytes");
  }
  const auto& c = ck.config;
  const size_t dim = c.dim, hidden = c.hidden_dim, L = c.n_layers, kv = c.kv_dim();
  const float* p = reinterpret_cast<const float*>(file->data() + kHeaderBytes);
  auto take = [&p](size_t n) { const float* q = p; p += n; return q; };
  ck.token_embedding = take(size_t(c.vocab_size) * dim);
  ck.rms_att = take(L * dim);
  ck.wq = take(L * dim * dim);
  ck.wk = take(L * kv * dim);
  ck.wv = take(L * kv * dim);
  ck.wo = take(L * dim * dim);
  ck.rms_ffn = take(L * dim);
  ck.w1 = take(L * hidden * dim);
  ck.w2 = take(L * dim * hidden);
  ck.w3 = take(L * hidden * dim);
  ck.rms_final = take(dim);
  take(size_t(c.seq_len) * c.head_size());  // legacy freq_cis tables, unused
  ck.classifier = c.shared_classifier ? ck.token_embedding : take(size_t(c.vocab_size) * dim);
  ck.owner = std::move(file);
  return ck;
}

}  // namespace llmc
