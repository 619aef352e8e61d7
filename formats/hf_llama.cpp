// Llama, Mistral and Qwen2 checkpoints into the shared Llama graph. Hugging Face applies rotary
// embedding to the two halves of each head (rotate_half); the graph, like llama.cpp, rotates
// interleaved pairs, so q/k rows (and Qwen2's q/k biases) are permuted on import as llama.cpp's
// convert_hf_to_gguf.py does: attention scores, and so the logits, are unchanged; the cached keys
// hold the same numbers in pair order.
#include <algorithm>
#include <limits>

#include "formats/hf_import.h"
#include "formats/hf_weights.h"
#include "formats/llama_graph.h"
#include "ir/metadata_keys.h"

namespace llmc {

namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

// Row order that turns rotate-half heads into interleaved pairs: new row h*hd + 2i + s comes
// from old row h*hd + s*hd/2 + i.
std::vector<int64_t> interleave_rows(int64_t heads, int64_t head_size) {
  std::vector<int64_t> rows(static_cast<size_t>(heads * head_size));
  const int64_t half = head_size / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t s = 0; s < 2; ++s) rows[h * head_size + 2 * i + s] = h * head_size + s * half + i;
  return rows;
}

Result<LlamaHyperparams> hyperparams(const HfConfig& c, const std::string& arch) {
  LlamaHyperparams hp;
  LLMC_ASSIGN_OR_RETURN(int64_t layers, c.get_int("num_hidden_layers", 1, 10000));
  LLMC_ASSIGN_OR_RETURN(int64_t dim, c.get_int("hidden_size", 1, kMaxInt));
  LLMC_ASSIGN_OR_RETURN(int64_t hidden, c.get_int("intermediate_size", 1, kMaxInt));
  LLMC_ASSIGN_OR_RETURN(int64_t heads, c.get_int("num_attention_heads", 1, kMaxInt));
  LLMC_ASSIGN_OR_RETURN(int64_t kv_heads, c.get_int_or("num_key_value_heads", 1, kMaxInt, heads));
  LLMC_ASSIGN_OR_RETURN(int64_t vocab, c.get_int("vocab_size", 1, kMaxInt));
  LLMC_ASSIGN_OR_RETURN(int64_t context, c.get_int("max_position_embeddings", 1, 1 << 20));
  LLMC_ASSIGN_OR_RETURN(hp.rope_theta, c.get_float_or("rope_theta", 10000.0));
  LLMC_ASSIGN_OR_RETURN(double eps, c.get_float_or("rms_norm_eps", 1e-6));
  if (c.has("rope_scaling")) return unsupported(c.path(), ": rope_scaling is not supported (", arch, ")");
  if (dim % heads != 0) return invalid_input(c.path(), ": ", heads, " heads do not divide hidden_size ", dim);
  if (c.has("head_dim")) {
    LLMC_ASSIGN_OR_RETURN(int64_t hd, c.get_int("head_dim", 1, kMaxInt));
    if (hd != dim / heads)
      return unsupported(c.path(), ": head_dim ", hd, " differs from hidden_size / num_attention_heads");
  }
  if (c.has("hidden_act")) {
    LLMC_ASSIGN_OR_RETURN(std::string act, c.get_string("hidden_act"));
    if (act != "silu") return unsupported(c.path(), ": hidden_act '", act, "' (the graph's FFN is SwiGLU)");
  }
  // Mistral's sliding window: full attention is exact up to that many tokens, so it caps the
  // sequence length the artifact declares.
  bool windowed = c.has("sliding_window");
  if (arch == "Qwen2ForCausalLM") {
    LLMC_ASSIGN_OR_RETURN(bool use, c.get_bool_or("use_sliding_window", false));
    windowed = windowed && use;
  }
  if (windowed) {
    LLMC_ASSIGN_OR_RETURN(int64_t window, c.get_int("sliding_window", 1, 1 << 30));
    context = std::min(context, window);
  }
  hp.n_layers = static_cast<int>(layers);
  hp.dim = static_cast<int>(dim);
  hp.hidden_dim = static_cast<int>(hidden);
  hp.n_heads = static_cast<int>(heads);
  hp.n_kv_heads = static_cast<int>(kv_heads);
  hp.vocab_size = static_cast<int>(vocab);
  hp.max_seq_len = static_cast<int>(context);
  hp.norm_eps = static_cast<float>(eps);
  return hp;
}

}  // namespace

Result<Model> hf_llama_to_model(const HfConfig& c, const std::string& dir) {
  LLMC_ASSIGN_OR_RETURN(std::string arch, c.architecture());
  LLMC_ASSIGN_OR_RETURN(LlamaHyperparams hp, hyperparams(c, arch));
  LLMC_ASSIGN_OR_RETURN(SafetensorsCheckpoint ck, open_safetensors_checkpoint(dir));
  const HfWeights src(ck, c.path());
  const int64_t d = hp.dim, kv = hp.kv_dim(), hid = hp.hidden_dim, v = hp.vocab_size, hs = hp.head_size();
  const auto q_rows = interleave_rows(hp.n_heads, hs), k_rows = interleave_rows(hp.n_kv_heads, hs);
  const bool qkv_bias = arch == "Qwen2ForCausalLM";
  LlamaWeights w;
  LLMC_ASSIGN_OR_RETURN(w.embedding, src.plain("model.embed_tokens.weight", {v, d}, "model.embed_tokens.weight"));
  for (int l = 0; l < hp.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const std::string a = p + "self_attn.";
    LlamaLayerWeights lw;
    LLMC_ASSIGN_OR_RETURN(lw.attn_norm, src.plain(p + "input_layernorm.weight", {d}, p + "input_layernorm.weight"));
    LLMC_ASSIGN_OR_RETURN(lw.wq, src.linear(a + "q_proj.weight", d, d, a + "q_proj.weight", q_rows));
    LLMC_ASSIGN_OR_RETURN(lw.wk, src.linear(a + "k_proj.weight", kv, d, a + "k_proj.weight", k_rows));
    LLMC_ASSIGN_OR_RETURN(lw.wv, src.linear(a + "v_proj.weight", kv, d, a + "v_proj.weight"));
    LLMC_ASSIGN_OR_RETURN(lw.wo, src.linear(a + "o_proj.weight", d, d, a + "o_proj.weight"));
    if (qkv_bias) {
      LLMC_ASSIGN_OR_RETURN(lw.bq, src.bias(a + "q_proj.bias", d, a + "q_proj.bias", q_rows));
      LLMC_ASSIGN_OR_RETURN(lw.bk, src.bias(a + "k_proj.bias", kv, a + "k_proj.bias", k_rows));
      LLMC_ASSIGN_OR_RETURN(lw.bv, src.bias(a + "v_proj.bias", kv, a + "v_proj.bias", {}));
    }
    LLMC_ASSIGN_OR_RETURN(lw.ffn_norm, src.plain(p + "post_attention_layernorm.weight", {d},
                                                 p + "post_attention_layernorm.weight"));
    LLMC_ASSIGN_OR_RETURN(lw.w_gate, src.linear(p + "mlp.gate_proj.weight", hid, d, p + "mlp.gate_proj.weight"));
    LLMC_ASSIGN_OR_RETURN(lw.w_up, src.linear(p + "mlp.up_proj.weight", hid, d, p + "mlp.up_proj.weight"));
    LLMC_ASSIGN_OR_RETURN(lw.w_down, src.linear(p + "mlp.down_proj.weight", d, hid, p + "mlp.down_proj.weight"));
    w.layers.push_back(std::move(lw));
  }
  LLMC_ASSIGN_OR_RETURN(w.final_norm, src.plain("model.norm.weight", {d}, "model.norm.weight"));
  // transformers' PretrainedConfig defaults tie_word_embeddings to true; Llama's config class to
  // false. A stored lm_head wins either way.
  LLMC_ASSIGN_OR_RETURN(bool tied, c.get_bool_or("tie_word_embeddings", arch != "LlamaForCausalLM"));
  const bool has_head = src.has("lm_head.weight");
  if (!has_head && !tied)
    return invalid_input(c.path(), ": tensor 'lm_head.weight' is missing and tie_word_embeddings is false");
  LLMC_ASSIGN_OR_RETURN(w.lm_head, src.linear(has_head ? "lm_head.weight" : "model.embed_tokens.weight", v, d,
                                              "lm_head.weight"));
  LLMC_RETURN_IF_ERROR(check_llama_weights(hp, w, c.path()));
  Model m = build_llama_model(hp, std::move(w), "hf_" + arch);
  m.set_metadata(kMetaSource, "Hugging Face " + arch);
  return m;
}

}  // namespace llmc
