// GPT2LMHeadModel checkpoints into a GPT-2 decoder graph (opset 17, standard ops), named as
// Hugging Face's ONNX export names it:
//   inputs  input_ids [batch, seq] i64, past_key_values.{i}.key/.value [batch, heads, past, head]
//   outputs logits [batch, seq, vocab], present.{i}.key/.value [batch, heads, past+seq, head]
// Token (wte) plus learned position (wpe) embeddings at positions past .. past+seq-1, pre-norm
// blocks of LayerNormalization, fused q/k/v projection (Conv1D weights are stored [in, out],
// MatMul's B as is) split three ways, causal softmax attention over past+seq, MLP with gelu_new
// (tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))) or exact gelu (Erf),
// final LayerNormalization and the tied head (wte transposed, or a stored lm_head.weight).
// Weight names may carry the "transformer." prefix (save_pretrained) or not (the original
// checkpoints); the attn.bias / attn.masked_bias buffers are ignored. Config: n_embd, n_layer,
// n_head, vocab_size, n_positions (or n_ctx) required; n_inner, layer_norm_epsilon,
// activation_function, scale_attn_weights, scale_attn_by_inverse_layer_idx honoured;
// add_cross_attention refused.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "formats/hf_import.h"
#include "formats/hf_weights.h"
#include "ir/graph_builder.h"
#include "ir/metadata_keys.h"

namespace llmc {

namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

struct Gpt2Config {
  int64_t dim = 0, layers = 0, heads = 0, inner = 0, vocab = 0, positions = 0;
  float eps = 1e-5f;
  bool exact_gelu = false;      // "gelu" (Erf) rather than the tanh approximation
  bool scale_attn = true;       // scores / sqrt(head)
  bool scale_by_layer = false;  // scores / (layer + 1) as well
  int64_t head_size() const { return dim / heads; }
};

Result<Gpt2Config> read_config(const HfConfig& c) {
  Gpt2Config g;
  LLMC_ASSIGN_OR_RETURN(g.dim, c.get_int("n_embd", 1, kMaxInt));
  LLMC_ASSIGN_OR_RETURN(g.layers, c.get_int("n_layer", 1, 10000));
  LLMC_ASSIGN_OR_RETURN(g.heads, c.get_int("n_head", 1, kMaxInt));
  LLMC_ASSIGN_OR_RETURN(g.vocab, c.get_int("vocab_size", 1, kMaxInt));
  // n_positions (older configs also carry n_ctx, the same number).
  const char* positions_key = c.has("n_positions") || !c.has("n_ctx") ? "n_positions" : "n_ctx";
  LLMC_ASSIGN_OR_RETURN(g.positions, c.get_int(positions_key, 1, 1 << 20));
  LLMC_ASSIGN_OR_RETURN(g.inner, c.get_int_or("n_inner", 1, kMaxInt, 4 * g.dim));
  LLMC_ASSIGN_OR_RETURN(double eps, c.get_float_or("layer_norm_epsilon", 1e-5));
  std::string act = "gelu_new";
  if (c.has("activation_function")) {
    LLMC_ASSIGN_OR_RETURN(act, c.get_string("activation_function"));
  }
  LLMC_ASSIGN_OR_RETURN(g.scale_attn, c.get_bool_or("scale_attn_weights", true));
  LLMC_ASSIGN_OR_RETURN(g.scale_by_layer, c.get_bool_or("scale_attn_by_inverse_layer_idx", false));
  LLMC_ASSIGN_OR_RETURN(bool cross, c.get_bool_or("add_cross_attention", false));
  if (g.dim % g.heads != 0)
    return invalid_input(c.path(), ": n_head ", g.heads, " does not divide n_embd ", g.dim);
  if (!(eps >= 0) || !std::isfinite(eps)) return invalid_input(c.path(), ": layer_norm_epsilon ", eps, " is invalid");
  g.eps = static_cast<float>(eps);
  if (act == "gelu") {
    g.exact_gelu = true;
  } else if (act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "gelu_fast") {
    return unsupported(c.path(), ": activation_function '", act,
                       "' is not supported (gelu_new, gelu_pytorch_tanh, gelu_fast and gelu are)");
  }
  if (cross) return unsupported(c.path(), ": add_cross_attention is not supported (GPT2LMHeadModel decoder only)");
  return g;
}

// The checkpoint's tensors under one prefix, as float32 tensors named "transformer.<name>".
class Gpt2Weights {
 public:
  Gpt2Weights(const SafetensorsCheckpoint& ck, std::string source) : src_(ck, std::move(source)) {
    prefix_ = src_.has("transformer.wte.weight") ? "transformer." : "";
  }

  bool has(const std::string& name) const { return src_.has(name); }

  // `name` (without the prefix) as float32 of shape `dims`: a view when stored as float32.
  Result<Tensor> get(const std::string& name, const std::vector<int64_t>& dims) const {
    return src_.plain(prefix_ + name, dims, "transformer." + name);
  }

  // A tensor stored under exactly `name`.
  Result<Tensor> get_exact(const std::string& name, const std::vector<int64_t>& dims) const {
    return src_.plain(name, dims, name);
  }

 private:
  HfWeights src_;
  std::string prefix_;
};

struct LayerWeights {
  Tensor ln1_w, ln1_b, attn_w, attn_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b;
};
struct Weights {
  Tensor wte, wpe, lnf_w, lnf_b, lm_head;
  std::vector<LayerWeights> layers;
};

Result<Weights> read_weights(const Gpt2Config& g, const HfConfig& c, const SafetensorsCheckpoint& ck,
                             const std::string& dir) {
  // Missing tensors are reported against the one weights file, or the directory of the shards.
  const Gpt2Weights src(ck, ck.files().size() == 1 ? ck.files()[0] : dir);
  const int64_t d = g.dim, v = g.vocab;
  Weights w;
  LLMC_ASSIGN_OR_RETURN(w.wte, src.get("wte.weight", {v, d}));
  LLMC_ASSIGN_OR_RETURN(w.wpe, src.get("wpe.weight", {g.positions, d}));
  for (int64_t l = 0; l < g.layers; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    LayerWeights lw;
    LLMC_ASSIGN_OR_RETURN(lw.ln1_w, src.get(p + "ln_1.weight", {d}));
    LLMC_ASSIGN_OR_RETURN(lw.ln1_b, src.get(p + "ln_1.bias", {d}));
    LLMC_ASSIGN_OR_RETURN(lw.attn_w, src.get(p + "attn.c_attn.weight", {d, 3 * d}));
    LLMC_ASSIGN_OR_RETURN(lw.attn_b, src.get(p + "attn.c_attn.bias", {3 * d}));
    LLMC_ASSIGN_OR_RETURN(lw.proj_w, src.get(p + "attn.c_proj.weight", {d, d}));
    LLMC_ASSIGN_OR_RETURN(lw.proj_b, src.get(p + "attn.c_proj.bias", {d}));
    LLMC_ASSIGN_OR_RETURN(lw.ln2_w, src.get(p + "ln_2.weight", {d}));
    LLMC_ASSIGN_OR_RETURN(lw.ln2_b, src.get(p + "ln_2.bias", {d}));
    LLMC_ASSIGN_OR_RETURN(lw.fc_w, src.get(p + "mlp.c_fc.weight", {d, g.inner}));
    LLMC_ASSIGN_OR_RETURN(lw.fc_b, src.get(p + "mlp.c_fc.bias", {g.inner}));
    LLMC_ASSIGN_OR_RETURN(lw.out_w, src.get(p + "mlp.c_proj.weight", {g.inner, d}));
    LLMC_ASSIGN_OR_RETURN(lw.out_b, src.get(p + "mlp.c_proj.bias", {d}));
    w.layers.push_back(std::move(lw));
  }
  LLMC_ASSIGN_OR_RETURN(w.lnf_w, src.get("ln_f.weight", {d}));
  LLMC_ASSIGN_OR_RETURN(w.lnf_b, src.get("ln_f.bias", {d}));
  // The head is wte unless a separate lm_head.weight [vocab, dim] is stored and not tied.
  LLMC_ASSIGN_OR_RETURN(bool tied, c.get_bool_or("tie_word_embeddings", true));
  const bool own_head = !tied && src.has("lm_head.weight");
  if (!tied && !own_head)
    return invalid_input(c.path(), ": tensor 'lm_head.weight' is missing and tie_word_embeddings is false");
  Tensor head = w.wte;
  if (own_head) {
    LLMC_ASSIGN_OR_RETURN(head, src.get_exact("lm_head.weight", {v, d}));
  }
  w.lm_head = Tensor::uninitialized("lm_head.weight", DType::kF32, {d, v});
  const float* s = head.data_as<float>();
  float* t = reinterpret_cast<float*>(w.lm_head.mutable_data());
  for (int64_t r = 0; r < v; ++r)
    for (int64_t i = 0; i < d; ++i) t[i * v + r] = s[r * d + i];
  return w;
}

std::string past_name(int64_t l, const char* kv) { return "past_key_values." + std::to_string(l) + "." + kv; }
std::string present_name(int64_t l, const char* kv) { return "present." + std::to_string(l) + "." + kv; }

class Gpt2Graph {
 public:
  Gpt2Graph(const Gpt2Config& c, Weights& w, Graph& g) : c_(c), w_(w), g_(g), b_(g) {}

  void build() {
    const int64_t hs = c_.head_size();
    g_.name = "hf_GPT2LMHeadModel";
    g_.inputs.push_back(tensor_value("input_ids", DType::kI64, {sym("batch_size"), sym("sequence_length")}));
    for (int64_t l = 0; l < c_.layers; ++l)
      for (const char* kv : {"key", "value"})
        g_.inputs.push_back(tensor_value(past_name(l, kv), DType::kF32,
                                        {sym("batch_size"), num(c_.heads), sym("past_sequence_length"), num(hs)}));
    g_.outputs.push_back(tensor_value("logits", DType::kF32, {sym("batch_size"), sym("sequence_length"), num(c_.vocab)}));
    for (int64_t l = 0; l < c_.layers; ++l)
      for (const char* kv : {"key", "value"})
        g_.outputs.push_back(tensor_value(present_name(l, kv), DType::kF32,
                                         {sym("batch_size"), num(c_.heads), sym("total_sequence_length"), num(hs)}));
    const std::string positions = positions_and_mask();
    const std::string tok = b_.op("Gather", "/transformer/wte/Gather", {b_.initializer(std::move(w_.wte)), "input_ids"},
                                  {Attribute::make_int("axis", 0)});
    const std::string pos = b_.op("Gather", "/transformer/wpe/Gather", {b_.initializer(std::move(w_.wpe)), positions},
                                  {Attribute::make_int("axis", 0)});
    std::string h = b_.op("Add", "/transformer/Add", {tok, pos});
    for (int64_t l = 0; l < c_.layers; ++l) h = block(l, h);
    const std::string x = layer_norm("/transformer/ln_f", h, std::move(w_.lnf_w), std::move(w_.lnf_b));
    rename_output(b_.op("MatMul", "/lm_head/MatMul", {x, b_.initializer(std::move(w_.lm_head))}), "logits");
  }

 private:
  void rename_output(const std::string& value, const std::string& name) {
    for (auto& out : g_.nodes.back().outputs)
      if (out == value) out = name;
  }

  // Positions past .. past+seq-1 of the new tokens; the causal mask "key position > query
  // position" [seq, past+seq], shared by all blocks.
  std::string positions_and_mask() {
    const std::string seq = b_.op("Gather", "/transformer/Gather_seq",
                                  {b_.op("Shape", "/transformer/Shape", {"input_ids"}),
                                   b_.scalar_i64("/transformer/Constant_1", 1)},
                                  {Attribute::make_int("axis", 0)});
    const std::string past = b_.op("Gather", "/transformer/Gather_past",
                                   {b_.op("Shape", "/transformer/Shape_past", {past_name(0, "key")}),
                                    b_.scalar_i64("/transformer/Constant_2", 2)},
                                   {Attribute::make_int("axis", 0)});
    const std::string total = b_.op("Add", "/transformer/Add_total", {past, seq});
    const std::string one = b_.scalar_i64("/transformer/Constant_one", 1);
    const std::string positions = b_.op("Range", "/transformer/Range_positions", {past, total, one});
    const std::string keys = b_.op("Range", "/transformer/Range_keys",
                                   {b_.scalar_i64("/transformer/Constant_zero", 0), total, one});
    const std::string query_col = b_.op("Unsqueeze", "/transformer/Unsqueeze_positions",
                                        {positions, b_.const_i64("/transformer/Constant_axes1", {1}, {1})});
    future_ = b_.op("Greater", "/transformer/causal_mask/Greater", {keys, query_col});
    masked_value_ = b_.scalar_f32("/transformer/causal_mask/min_value", std::numeric_limits<float>::lowest());
    return positions;
  }

  std::string layer_norm(const std::string& prefix, const std::string& x, Tensor w, Tensor bias) {
    return b_.op("LayerNormalization", prefix + "/LayerNormalization",
                 {x, b_.initializer(std::move(w)), b_.initializer(std::move(bias))},
                 {Attribute::make_int("axis", -1), Attribute::make_float("epsilon", c_.eps)});
  }

  // Conv1D: x W + b, the bias as a separate Add as Hugging Face's export has it.
  std::string conv1d(const std::string& prefix, const std::string& x, Tensor w, Tensor bias) {
    const std::string y = b_.op("MatMul", prefix + "/MatMul", {x, b_.initializer(std::move(w))});
    return b_.op("Add", prefix + "/Add", {b_.initializer(std::move(bias)), y});
  }

  // [B,S,D] -> [B,heads,S,head]
  std::string to_heads(const std::string& prefix, const std::string& x) {
    const std::string r = b_.op("Reshape", prefix + "/Reshape",
                                {x, b_.const_i64(prefix + "/shape", {0, 0, c_.heads, c_.head_size()}, {4})});
    return b_.op("Transpose", prefix + "/Transpose", {r}, {Attribute::make_ints("perm", {0, 2, 1, 3})});
  }

  std::string gelu(const std::string& prefix, const std::string& x) {
    const std::string half_x = b_.op("Mul", prefix + "/Mul", {x, b_.scalar_f32(prefix + "/half", 0.5f)});
    std::string inner;
    if (c_.exact_gelu) {
      const std::string scaled = b_.op("Div", prefix + "/Div", {x, b_.scalar_f32(prefix + "/sqrt2", std::sqrt(2.0f))});
      inner = b_.op("Erf", prefix + "/Erf", {scaled});
    } else {
      const std::string cube = b_.op("Pow", prefix + "/Pow", {x, b_.scalar_f32(prefix + "/three", 3.0f)});
      const std::string sum = b_.op("Add", prefix + "/Add",
                                    {x, b_.op("Mul", prefix + "/Mul_1", {cube, b_.scalar_f32(prefix + "/c", 0.044715f)})});
      const float k = static_cast<float>(std::sqrt(2.0 / 3.14159265358979323846));
      inner = b_.op("Tanh", prefix + "/Tanh", {b_.op("Mul", prefix + "/Mul_2", {sum, b_.scalar_f32(prefix + "/k", k)})});
    }
    const std::string one_plus = b_.op("Add", prefix + "/Add_1", {inner, b_.scalar_f32(prefix + "/one", 1.0f)});
    return b_.op("Mul", prefix + "/Mul_3", {half_x, one_plus});
  }

  std::string block(int64_t l, const std::string& h_in) {
    const std::string p = "/transformer/h." + std::to_string(l);
    LayerWeights& w = w_.layers[static_cast<size_t>(l)];
    const int64_t d = c_.dim;
    const std::string x = layer_norm(p + "/ln_1", h_in, std::move(w.ln1_w), std::move(w.ln1_b));
    const std::string a = p + "/attn";
    const std::string qkv = conv1d(a + "/c_attn", x, std::move(w.attn_w), std::move(w.attn_b));
    const auto parts = b_.add("Split", a + "/Split", {qkv, b_.const_i64(a + "/split", {d, d, d}, {3})},
                              {Attribute::make_int("axis", -1)}, 3);
    const std::string qh = to_heads(a + "/q", parts[0]);
    const std::string kh = to_heads(a + "/k", parts[1]);
    const std::string vh = to_heads(a + "/v", parts[2]);
    const std::string key_all = b_.op("Concat", a + "/Concat_key", {past_name(l, "key"), kh},
                                      {Attribute::make_int("axis", 2)});
    rename_output(key_all, present_name(l, "key"));
    const std::string value_all = b_.op("Concat", a + "/Concat_value", {past_name(l, "value"), vh},
                                        {Attribute::make_int("axis", 2)});
    rename_output(value_all, present_name(l, "value"));
    const std::string kt = b_.op("Transpose", a + "/Transpose_kt", {present_name(l, "key")},
                                 {Attribute::make_ints("perm", {0, 1, 3, 2})});
    std::string scores = b_.op("MatMul", a + "/MatMul_qk", {qh, kt});
    double scale = 1.0;
    if (c_.scale_attn) scale /= std::sqrt(static_cast<double>(c_.head_size()));
    if (c_.scale_by_layer) scale /= static_cast<double>(l + 1);
    if (scale != 1.0)
      scores = b_.op("Mul", a + "/Mul_scale", {scores, b_.scalar_f32(a + "/scale", static_cast<float>(scale))});
    const std::string masked = b_.op("Where", a + "/Where_mask", {future_, masked_value_, scores});
    const std::string probs = b_.op("Softmax", a + "/Softmax", {masked}, {Attribute::make_int("axis", -1)});
    const std::string ctx = b_.op("Transpose", a + "/Transpose_ctx",
                                  {b_.op("MatMul", a + "/MatMul_pv", {probs, present_name(l, "value")})},
                                  {Attribute::make_ints("perm", {0, 2, 1, 3})});
    const std::string merged = b_.op("Reshape", a + "/Reshape_ctx", {ctx, b_.const_i64(a + "/shape_ctx", {0, 0, d}, {3})});
    const std::string o = conv1d(a + "/c_proj", merged, std::move(w.proj_w), std::move(w.proj_b));
    const std::string h = b_.op("Add", p + "/Add", {h_in, o});
    const std::string x2 = layer_norm(p + "/ln_2", h, std::move(w.ln2_w), std::move(w.ln2_b));
    const std::string m = p + "/mlp";
    const std::string fc = conv1d(m + "/c_fc", x2, std::move(w.fc_w), std::move(w.fc_b));
    const std::string out = conv1d(m + "/c_proj", gelu(m + "/act", fc), std::move(w.out_w), std::move(w.out_b));
    return b_.op("Add", p + "/Add_1", {h, out});
  }

  const Gpt2Config& c_;
  Weights& w_;
  Graph& g_;
  GraphBuilder b_;
  std::string future_, masked_value_;
};

}  // namespace

Result<Model> hf_gpt2_to_model(const HfConfig& c, const std::string& dir) {
  LLMC_ASSIGN_OR_RETURN(Gpt2Config g, read_config(c));
  LLMC_ASSIGN_OR_RETURN(SafetensorsCheckpoint ck, open_safetensors_checkpoint(dir));
  LLMC_ASSIGN_OR_RETURN(Weights w, read_weights(g, c, ck, dir));
  Model m;
  m.ir_version = 8;
  m.opset_imports = {{"", 17}};
  m.producer_name = "llmcompress";
  m.producer_version = LLMC_VERSION;
  Gpt2Graph(g, w, m.graph).build();
  m.set_metadata(kMetaMaxSequenceLength, std::to_string(g.positions));
  m.set_metadata(kMetaSource, "Hugging Face GPT2LMHeadModel");
  return m;
}

}  // namespace llmc
