#include "formats/gguf_import.h"

#include <algorithm>
#include <limits>

#include "formats/llama_graph.h"
#include "ir/metadata_keys.h"

namespace llmc {

namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

// Rows of `rows` per step: dequantising a few rows and writing them transposed keeps both the
// scratch and the scattered writes in cache.
constexpr int64_t kRowTile = 16;

class GgufWeights {
 public:
  explicit GgufWeights(const GgufFile& g) : g_(g) {}

  // (name, GGUF name) of every matrix get() returned transposed: the MatMul weights.
  const std::vector<std::pair<std::string, std::string>>& matrices() const { return matrices_; }

  // The tensor named `gguf_name`, which must have GGML shape `ne`, as float32 named `name`:
  // either as stored ([rows][ne0]) or transposed to [ne0][rows] (a MatMul B of y = x W).
  Result<Tensor> get(const std::string& gguf_name, const std::string& name, std::vector<int64_t> ne,
                     bool transpose) {
    const GgufTensorInfo* t = g_.find_tensor(gguf_name);
    if (!t) return invalid_input(g_.path(), ": tensor '", gguf_name, "' is missing");
    if (t->ne != ne)
      return invalid_input(g_.path(), ": tensor '", gguf_name, "' has GGML shape ", shape_str(t->ne), ", expected ",
                           shape_str(ne));
    const int64_t cols = ne[0];
    const int64_t rows = t->numel() / std::max<int64_t>(cols, 1);
    const int64_t row_bytes = *ggml_row_bytes(t->type, cols);
    const uint8_t* src = g_.tensor_data(*t);
    if (transpose) matrices_.emplace_back(name, gguf_name);
    if (!transpose || rows == 1) {
      std::vector<int64_t> dims(ne.rbegin(), ne.rend());
      if (t->type == GgmlType::kF32)  // no conversion: a view of the mapping
        return Tensor::view(name, DType::kF32, std::move(dims), g_.mapping(), src, static_cast<size_t>(t->nbytes));
      Tensor out = Tensor::uninitialized(name, DType::kF32, std::move(dims));
      ggml_dequantize(t->type, src, reinterpret_cast<float*>(out.mutable_data()), t->numel());
      return out;
    }
    Tensor out = Tensor::uninitialized(name, DType::kF32, {cols, rows});
    float* dst = reinterpret_cast<float*>(out.mutable_data());
    std::vector<float> tile(static_cast<size_t>(kRowTile * cols));
    for (int64_t r0 = 0; r0 < rows; r0 += kRowTile) {
      const int64_t n = std::min(kRowTile, rows - r0);
      ggml_dequantize(t->type, src + r0 * row_bytes, tile.data(), n * cols);
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t r = 0; r < n; ++r) dst[c * rows + r0 + r] = tile[static_cast<size_t>(r * cols + c)];
    }
    return out;
  }

 private:
  const GgufFile& g_;
  std::vector<std::pair<std::string, std::string>> matrices_;
};

Result<LlamaHyperparams> llama_hyperparams(const GgufFile& g) {
  LlamaHyperparams hp;
  const std::string a = "llama.";
  LLMC_ASSIGN_OR_RETURN(int64_t layers, g.get_int(a + "block_count", 1, 10000));
  LLMC_ASSIGN_OR_RETURN(int64_t dim, g.get_int(a + "embedding_length", 1, kMaxInt));
  LLMC_ASSIGN_OR_RETURN(int64_t hidden, g.get_int(a + "feed_forward_length", 1, kMaxInt));
  LLMC_ASSIGN_OR_RETURN(int64_t heads, g.get_int(a + "attention.head_count", 1, kMaxInt));
  int64_t kv_heads = heads;
  if (g.find(a + "attention.head_count_kv")) {
    LLMC_ASSIGN_OR_RETURN(kv_heads, g.get_int(a + "attention.head_count_kv", 1, kMaxInt));
  }
  LLMC_ASSIGN_OR_RETURN(int64_t context, g.get_int(a + "context_length", 1, 1 << 20));
  hp.n_layers = static_cast<int>(layers);
  hp.dim = static_cast<int>(dim);
  hp.hidden_dim = static_cast<int>(hidden);
  hp.n_heads = static_cast<int>(heads);
  hp.n_kv_heads = static_cast<int>(kv_heads);
  hp.max_seq_len = static_cast<int>(context);
  if (g.find(a + "rope.freq_base")) {
    LLMC_ASSIGN_OR_RETURN(hp.rope_theta, g.get_float(a + "rope.freq_base"));
  }
  if (g.find(a + "attention.layer_norm_rms_epsilon")) {
    LLMC_ASSIGN_OR_RETURN(double eps, g.get_float(a + "attention.layer_norm_rms_epsilon"));
    hp.norm_eps = static_cast<float>(eps);
  }
  if (dim % heads != 0) return invalid_input(g.path(), ": ", heads, " heads do not divide width ", dim);
  if (g.find(a + "rope.dimension_count")) {
    LLMC_ASSIGN_OR_RETURN(int64_t rot, g.get_int(a + "rope.dimension_count", 1, kMaxInt));
    if (rot != dim / heads)
      return unsupported(g.path(), ": rotary embedding over ", rot, " of ", dim / heads,
                         " head dimensions (partial rotary is not supported)");
  }
  for (const char* scaling : {"rope.scaling.type", "rope.scaling.factor"})
    if (const GgufValue* v = g.find(a + scaling); v && !(v->kind == GgufValue::Kind::kString && v->s == "none") &&
                                                  !(v->kind == GgufValue::Kind::kFloat && (v->f == 0 || v->f == 1)))
      return unsupported(g.path(), ": rope scaling ('", a, scaling, "' = ", gguf_value_to_string(*v),
                         ") is not supported");
  const GgufTensorInfo* embd = g.find_tensor("token_embd.weight");
  if (!embd) return invalid_input(g.path(), ": tensor 'token_embd.weight' is missing");
  if (embd->ne.size() != 2 || embd->ne[1] > kMaxInt)
    return invalid_input(g.path(), ": tensor 'token_embd.weight' has GGML shape ", shape_str(embd->ne),
                         ", expected [", dim, ", vocab]");
  hp.vocab_size = static_cast<int>(embd->ne[1]);
  return hp;
}

Result<LlamaWeights> llama_weights(const GgufFile& g, const LlamaHyperparams& hp, GgufWeights& src) {
  const int64_t d = hp.dim, kv = hp.kv_dim(), hid = hp.hidden_dim, v = hp.vocab_size;
  LlamaWeights w;
  LLMC_ASSIGN_OR_RETURN(w.embedding, src.get("token_embd.weight", "model.embed_tokens.weight", {d, v}, false));
  for (int l = 0; l < hp.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LlamaLayerWeights lw;
    LLMC_ASSIGN_OR_RETURN(lw.attn_norm, src.get(b + "attn_norm.weight", p + "input_layernorm.weight", {d}, false));
    LLMC_ASSIGN_OR_RETURN(lw.wq, src.get(b + "attn_q.weight", p + "self_attn.q_proj.weight", {d, d}, true));
    LLMC_ASSIGN_OR_RETURN(lw.wk, src.get(b + "attn_k.weight", p + "self_attn.k_proj.weight", {d, kv}, true));
    LLMC_ASSIGN_OR_RETURN(lw.wv, src.get(b + "attn_v.weight", p + "self_attn.v_proj.weight", {d, kv}, true));
    LLMC_ASSIGN_OR_RETURN(lw.wo, src.get(b + "attn_output.weight", p + "self_attn.o_proj.weight", {d, d}, true));
    LLMC_ASSIGN_OR_RETURN(lw.ffn_norm,
                          src.get(b + "ffn_norm.weight", p + "post_attention_layernorm.weight", {d}, false));
    LLMC_ASSIGN_OR_RETURN(lw.w_gate, src.get(b + "ffn_gate.weight", p + "mlp.gate_proj.weight", {d, hid}, true));
    LLMC_ASSIGN_OR_RETURN(lw.w_up, src.get(b + "ffn_up.weight", p + "mlp.up_proj.weight", {d, hid}, true));
    LLMC_ASSIGN_OR_RETURN(lw.w_down, src.get(b + "ffn_down.weight", p + "mlp.down_proj.weight", {hid, d}, true));
    w.layers.push_back(std::move(lw));
  }
  LLMC_ASSIGN_OR_RETURN(w.final_norm, src.get("output_norm.weight", "model.norm.weight", {d}, false));
  const bool tied = g.find_tensor("output.weight") == nullptr;
  LLMC_ASSIGN_OR_RETURN(w.lm_head, src.get(tied ? "token_embd.weight" : "output.weight", "lm_head.weight", {d, v}, true));
  return w;
}

}  // namespace

Result<Model> gguf_to_model(const GgufFile& g, const GgufImportOptions& options) {
  LLMC_ASSIGN_OR_RETURN(std::string arch, g.get_string("general.architecture"));
  if (arch != "llama")
    return unsupported(g.path(), ": architecture '", arch, "' is not supported (GGUF import reads 'llama')");
  LLMC_ASSIGN_OR_RETURN(LlamaHyperparams hp, llama_hyperparams(g));
  GgufWeights src(g);
  LLMC_ASSIGN_OR_RETURN(LlamaWeights w, llama_weights(g, hp, src));
  LLMC_RETURN_IF_ERROR(check_llama_weights(hp, w, g.path()));
  Model m = build_llama_model(hp, std::move(w), "gguf_llama");
  if (options.keep_quant) {
    // The LM head stays float32: it is the largest matrix (vocab x dim), and ONNX Runtime 1.31's
    // CPU MatMulNBits is fast only at 4 bits with integer zero points; SmolLM2's tied Q8_0 head
    // as 8-bit MatMulNBits took 177 ms a token against 3 ms as a float32 MatMul.
    auto matrices = src.matrices();
    std::erase_if(matrices, [](const auto& named) { return named.first == "lm_head.weight"; });
    LLMC_ASSIGN_OR_RETURN(KeepQuantReport report, keep_gguf_quant(g, matrices, m));
    if (options.keep_quant_report) *options.keep_quant_report = std::move(report);
  }
  std::string name = "GGUF";
  if (const GgufValue* n = g.find("general.name"); n && n->kind == GgufValue::Kind::kString) name += " " + n->s;
  m.set_metadata(kMetaSource, name);
  if (const GgufValue* t = g.find("tokenizer.chat_template"); t && t->kind == GgufValue::Kind::kString)
    m.set_metadata(kMetaChatTemplate, t->s);
  return m;
}

Result<BpeVocabulary> gguf_bpe_vocabulary(const GgufFile& g) {
  LLMC_ASSIGN_OR_RETURN(std::string model, g.get_string("tokenizer.ggml.model"));
  if (model != "gpt2")
    return unsupported(g.path(), ": tokenizer.ggml.model '", model, "' is not byte-level BPE ('gpt2')");
  BpeVocabulary v;
  LLMC_ASSIGN_OR_RETURN(v.tokens, g.get_strings("tokenizer.ggml.tokens"));
  LLMC_ASSIGN_OR_RETURN(v.merges, g.get_strings("tokenizer.ggml.merges"));
  if (g.find("tokenizer.ggml.token_type")) {
    LLMC_ASSIGN_OR_RETURN(auto types, g.get_ints("tokenizer.ggml.token_type"));
    if (types.size() != v.tokens.size())
      return invalid_input(g.path(), ": tokenizer.ggml.token_type has ", types.size(), " entries for ",
                           v.tokens.size(), " tokens");
    v.token_types.assign(types.begin(), types.end());
  }
  v.pre = "gpt2";
  if (g.find("tokenizer.ggml.pre")) {
    LLMC_ASSIGN_OR_RETURN(v.pre, g.get_string("tokenizer.ggml.pre"));
  }
  const int64_t n = static_cast<int64_t>(v.tokens.size()) - 1;
  if (g.find("tokenizer.ggml.bos_token_id")) {
    LLMC_ASSIGN_OR_RETURN(int64_t bos, g.get_int("tokenizer.ggml.bos_token_id", 0, n));
    v.bos_id = static_cast<int>(bos);
  }
  if (g.find("tokenizer.ggml.eos_token_id")) {
    LLMC_ASSIGN_OR_RETURN(int64_t eos, g.get_int("tokenizer.ggml.eos_token_id", 0, n));
    v.eos_id = static_cast<int>(eos);
  }
  if (const GgufValue* b = g.find("tokenizer.ggml.add_bos_token"); b && b->kind == GgufValue::Kind::kBool)
    v.add_bos = b->b;
  return v;
}

}  // namespace llmc
