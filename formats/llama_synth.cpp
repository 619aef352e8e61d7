#include "formats/llama_synth.h"

#include <memory>
#include <random>

#include "formats/llama2c_import.h"

namespace llmc {

namespace {
Llama2cConfig cfg(int dim, int hidden, int layers, int heads, int kv_heads, int vocab, int seq) {
  Llama2cConfig c;
  c.dim = dim;
  c.hidden_dim = hidden;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.vocab_size = vocab;
  c.seq_len = seq;
  c.shared_classifier = true;
  return c;
}
}  // namespace

const std::vector<SynthPreset>& synth_presets() {
  static const std::vector<SynthPreset> presets = {
      {"llama-110m", cfg(768, 2048, 12, 12, 12, 32000, 1024)},
      {"llama-42m", cfg(512, 1376, 8, 8, 8, 32000, 1024)},
      {"llama-15m", cfg(288, 768, 6, 6, 6, 32000, 256)},
      {"llama-tiny", cfg(64, 172, 2, 8, 4, 512, 128)},
  };
  return presets;
}

Result<Llama2cConfig> synth_preset(const std::string& name) {
  std::string names;
  for (const auto& p : synth_presets()) {
    if (p.name == name) return p.config;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  return invalid_input("unknown preset '", name, "' (known: ", names, ")");
}

Result<Model> synth_llama(const Llama2cConfig& c, uint64_t seed) {
  if (c.dim <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.dim % c.n_heads || c.n_heads % c.n_kv_heads ||
      c.head_size() % 2 || c.hidden_dim <= 0 || c.n_layers <= 0 || c.vocab_size <= 0 || c.seq_len <= 0)
    return invalid_input("inconsistent model shape: dim=", c.dim, " heads=", c.n_heads, " kv_heads=", c.n_kv_heads,
                         " hidden=", c.hidden_dim, " layers=", c.n_layers, " vocab=", c.vocab_size);
  const size_t dim = c.dim, hid = c.hidden_dim, L = c.n_layers, kv = c.kv_dim();
  const size_t sizes[] = {size_t(c.vocab_size) * dim, L * dim, L * dim * dim, L * kv * dim, L * kv * dim,
                          L * dim * dim, L * dim, L * hid * dim, L * dim * hid, L * hid * dim, dim};
  size_t total = 0;
  for (size_t s : sizes) total += s;
  auto storage = std::make_shared<std::vector<float>>(total);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 0.02f);
  float* p = storage->data();
  Llama2cCheckpoint ck;
  ck.config = c;
  const float** fields[] = {&ck.token_embedding, &ck.rms_att, &ck.wq, &ck.wk, &ck.wv, &ck.wo,
                            &ck.rms_ffn, &ck.w1, &ck.w2, &ck.w3, &ck.rms_final};
  for (int f = 0; f < 11; ++f) {
    const bool norm = f == 1 || f == 6 || f == 10;
    for (size_t i = 0; i < sizes[f]; ++i) p[i] = norm ? 1.0f : normal(rng);
    *fields[f] = p;
    p += sizes[f];
  }
  ck.classifier = ck.token_embedding;
  ck.owner = storage;
  Model m = llama2c_to_model(ck);
  m.set_metadata(kMetaSource, "llmcompress synth (seed " + std::to_string(seed) + ")");
  return m;
}

}  // namespace llmc
