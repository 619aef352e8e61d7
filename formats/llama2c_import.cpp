#include "formats/llama2c_import.h"

#include "formats/llama_graph.h"

namespace llmc {

namespace {

Tensor view_f32(const std::string& name, std::vector<int64_t> dims, const float* p,
                const std::shared_ptr<const void>& owner) {
  const size_t n = static_cast<size_t>(shape_numel(dims)) * sizeof(float);
  return Tensor::view(name, DType::kF32, std::move(dims), owner, p, n);
}

// llama2.c stores W as [out][in] for y = W x; ONNX MatMul wants B as [in][out].
Tensor transposed_f32(const std::string& name, const float* w, int64_t out, int64_t in) {
  std::vector<float> t(static_cast<size_t>(out * in));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) t[i * out + o] = w[o * in + i];
  return Tensor::from_vector(name, DType::kF32, {in, out}, t);
}

}  // namespace

Model llama2c_to_model(const Llama2cCheckpoint& ck) {
  const auto& c = ck.config;
  LlamaHyperparams hp;
  hp.dim = c.dim;
  hp.hidden_dim = c.hidden_dim;
  hp.n_layers = c.n_layers;
  hp.n_heads = c.n_heads;
  hp.n_kv_heads = c.n_kv_heads;
  hp.vocab_size = c.vocab_size;
  hp.max_seq_len = c.seq_len;
  hp.rope_float_arithmetic = true;
  const int64_t dim = c.dim, kv = c.kv_dim(), hid = c.hidden_dim;
  LlamaWeights w;
  w.embedding = view_f32("model.embed_tokens.weight", {c.vocab_size, dim}, ck.token_embedding, ck.owner);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l);
    LlamaLayerWeights lw;
    lw.attn_norm = view_f32(p + ".input_layernorm.weight", {dim}, ck.rms_att + l * dim, ck.owner);
    lw.wq = transposed_f32(p + ".self_attn.q_proj.weight", ck.wq + l * dim * dim, dim, dim);
    lw.wk = transposed_f32(p + ".self_attn.k_proj.weight", ck.wk + l * kv * dim, kv, dim);
    lw.wv = transposed_f32(p + ".self_attn.v_proj.weight", ck.wv + l * kv * dim, kv, dim);
    lw.wo = transposed_f32(p + ".self_attn.o_proj.weight", ck.wo + l * dim * dim, dim, dim);
    lw.ffn_norm = view_f32(p + ".post_attention_layernorm.weight", {dim}, ck.rms_ffn + l * dim, ck.owner);
    lw.w_gate = transposed_f32(p + ".mlp.gate_proj.weight", ck.w1 + l * hid * dim, hid, dim);
    lw.w_up = transposed_f32(p + ".mlp.up_proj.weight", ck.w3 + l * hid * dim, hid, dim);
    lw.w_down = transposed_f32(p + ".mlp.down_proj.weight", ck.w2 + l * dim * hid, dim, hid);
    w.layers.push_back(std::move(lw));
  }
  w.final_norm = view_f32("model.norm.weight", {dim}, ck.rms_final, ck.owner);
  w.lm_head = transposed_f32("lm_head.weight", ck.classifier, c.vocab_size, dim);
  Model m = build_llama_model(hp, std::move(w), "llama2c");
  m.set_metadata(kMetaSource, "llama2.c");
  m.set_metadata("llmcompress.llama2c.config",
                 str_cat("{\"dim\":", c.dim, ",\"hidden_dim\":", c.hidden_dim, ",\"n_layers\":",
                         c.n_layers, ",\"n_heads\":", c.n_heads, ",\"n_kv_heads\":", c.n_kv_heads,
                         ",\"vocab_size\":", c.vocab_size, ",\"seq_len\":", c.seq_len,
                         ",\"shared_classifier\":", c.shared_classifier ? "true" : "false", "}"));
  return m;
}

Result<Model> import_llama2c(const std::string& path) {
  LLMC_ASSIGN_OR_RETURN(auto ck, read_llama2c_checkpoint(path));
  return llama2c_to_model(ck);
}

}  // namespace llmc
