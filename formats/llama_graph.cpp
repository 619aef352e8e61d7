#include "formats/llama_graph.h"

#include <cmath>
#include <limits>

#include "ir/graph_builder.h"
#include "ir/metadata_keys.h"

namespace llmc {

namespace {


class LlamaGraph {
 public:
  LlamaGraph(const LlamaHyperparams& hp, LlamaWeights& w, Graph& g) : c_(hp), w_(w), g_(g), b_(g) {}

  void build(const std::string& graph_name) {
    const int hs = c_.head_size();
    g_.name = graph_name;
    g_.inputs.push_back(tensor_value("input_ids", DType::kI64, {sym("batch_size"), sym("sequence_length")}));
    for (int l = 0; l < c_.n_layers; ++l)
      for (const char* kv : {"key", "value"})
        g_.inputs.push_back(tensor_value(past_name(l, kv), DType::kF32,
                                        {sym("batch_size"), num(c_.n_kv_heads),
                                         sym("past_sequence_length"), num(hs)}));
    g_.outputs.push_back(tensor_value("logits", DType::kF32,
                                     {sym("batch_size"), sym("sequence_length"), num(c_.vocab_size)}));
    for (int l = 0; l < c_.n_layers; ++l)
      for (const char* kv : {"key", "value"})
        g_.outputs.push_back(tensor_value(present_name(l, kv), DType::kF32,
                                         {sym("batch_size"), num(c_.n_kv_heads),
                                          sym("total_sequence_length"), num(hs)}));
    positions_and_mask();
    std::string h = b_.op("Gather", "/model/embed_tokens/Gather",
                          {b_.initializer(std::move(w_.embedding)), "input_ids"},
                          {Attribute::make_int("axis", 0)});
    for (int l = 0; l < c_.n_layers; ++l) h = layer(l, h);
    const std::string x = rms_norm("/model/norm", h, std::move(w_.final_norm));
    const std::string head = b_.initializer(std::move(w_.lm_head));
    rename_output(b_.op("MatMul", "/lm_head/MatMul", {x, head}), "logits");
  }

 private:
  static std::string past_name(int l, const char* kv) {
    return "past_key_values." + std::to_string(l) + "." + kv;
  }
  static std::string present_name(int l, const char* kv) {
    return "present." + std::to_string(l) + "." + kv;
  }

  // The last node's output `value` becomes the graph output `name`.
  void rename_output(const std::string& value, const std::string& name) {
    for (auto& out : g_.nodes.back().outputs)
      if (out == value) out = name;
  }

  // Shared by all layers: absolute positions of the new tokens (past_len .. past_len+seq-1),
  // their RoPE cos/sin rows, and the causal mask "key position > query position".
  void positions_and_mask() {
    const int half = c_.head_size() / 2;
    std::vector<float> cos_t(size_t(c_.max_seq_len) * half), sin_t(cos_t.size());
    for (int pos = 0; pos < c_.max_seq_len; ++pos)
      for (int i = 0; i < half; ++i) {
        float c, s;
        if (c_.rope_float_arithmetic) {  // the same float arithmetic as llama2.c's run.c
          const float freq = 1.0f / powf(static_cast<float>(c_.rope_theta),
                                         (2 * i) / static_cast<float>(c_.head_size()));
          const float val = pos * freq;
          c = cosf(val);
          s = sinf(val);
        } else {
          const double val = pos * std::pow(c_.rope_theta, -2.0 * i / c_.head_size());
          c = static_cast<float>(std::cos(val));
          s = static_cast<float>(std::sin(val));
        }
        cos_t[size_t(pos) * half + i] = c;
        sin_t[size_t(pos) * half + i] = s;
      }
    const std::string cos_w = b_.initializer(
        Tensor::from_vector("model.rotary_emb.cos", DType::kF32, {c_.max_seq_len, half}, cos_t));
    const std::string sin_w = b_.initializer(
        Tensor::from_vector("model.rotary_emb.sin", DType::kF32, {c_.max_seq_len, half}, sin_t));
    const std::string ids_shape = b_.op("Shape", "/model/Shape", {"input_ids"});
    const std::string seq = b_.op("Gather", "/model/Gather_seq",
                                  {ids_shape, b_.scalar_i64("/model/Constant_1", 1)},
                                  {Attribute::make_int("axis", 0)});
    const std::string past_shape = b_.op("Shape", "/model/Shape_past", {past_name(0, "key")});
    const std::string past = b_.op("Gather", "/model/Gather_past",
                                   {past_shape, b_.scalar_i64("/model/Constant_2", 2)},
                                   {Attribute::make_int("axis", 0)});
    const std::string total = b_.op("Add", "/model/Add_total", {past, seq});
    const std::string one = b_.scalar_i64("/model/Constant_one", 1);
    const std::string positions = b_.op("Range", "/model/Range_positions", {past, total, one});
    const std::string rope_shape = b_.const_i64("/model/Constant_rope_shape", {1, -1, 1, half, 1}, {5});
    cos_ = b_.op("Reshape", "/model/rotary_emb/Reshape_cos",
                 {b_.op("Gather", "/model/rotary_emb/Gather_cos", {cos_w, positions}), rope_shape});
    sin_ = b_.op("Reshape", "/model/rotary_emb/Reshape_sin",
                 {b_.op("Gather", "/model/rotary_emb/Gather_sin", {sin_w, positions}), rope_shape});
    const std::string keys = b_.op("Range", "/model/Range_keys",
                                   {b_.scalar_i64("/model/Constant_zero", 0), total, one});
    const std::string query_col = b_.op("Unsqueeze", "/model/Unsqueeze_positions",
                                        {positions, b_.const_i64("/model/Constant_axes1", {1}, {1})});
    future_ = b_.op("Greater", "/model/causal_mask/Greater", {keys, query_col});
    masked_value_ = b_.scalar_f32("/model/causal_mask/min_value", std::numeric_limits<float>::lowest());
    split_ = b_.const_i64("/model/Constant_split", {1, 1}, {2});
    rope_half_ = half;
  }

  std::string rms_norm(const std::string& prefix, const std::string& x, Tensor w) {
    if (two_.empty()) {
      two_ = b_.scalar_f32("/model/Constant_two", 2.0f);
      eps_ = b_.scalar_f32("/model/Constant_eps", c_.norm_eps);
    }
    const std::string weight = b_.initializer(std::move(w));
    const std::string sq = b_.op("Pow", prefix + "/Pow", {x, two_});
    const std::string mean = b_.op("ReduceMean", prefix + "/ReduceMean", {sq},
                                   {Attribute::make_ints("axes", {-1}), Attribute::make_int("keepdims", 1)});
    const std::string rstd = b_.op("Reciprocal", prefix + "/Reciprocal",
                                   {b_.op("Sqrt", prefix + "/Sqrt", {b_.op("Add", prefix + "/Add", {mean, eps_})})});
    return b_.op("Mul", prefix + "/Mul_1", {weight, b_.op("Mul", prefix + "/Mul", {x, rstd})});
  }

  // x W (+ b): the bias as a separate Add, as Hugging Face exports a Linear with bias.
  std::string linear(const std::string& prefix, const std::string& x, Tensor w,
                     std::optional<Tensor> bias = std::nullopt) {
    const std::string y = b_.op("MatMul", prefix + "/MatMul", {x, b_.initializer(std::move(w))});
    if (!bias) return y;
    return b_.op("Add", prefix + "/Add", {b_.initializer(std::move(*bias)), y});
  }

  // x [B,S,heads*head] -> rotated, as llama2.c: pairs (2i, 2i+1) of each head turned by pos*freq_i.
  std::string rope(const std::string& prefix, const std::string& x, int heads) {
    const std::string x5 = b_.op("Reshape", prefix + "/Reshape",
                                 {x, b_.const_i64(prefix + "/shape5", {0, 0, heads, rope_half_, 2}, {5})});
    const auto parts = b_.add("Split", prefix + "/Split", {x5, split_}, {Attribute::make_int("axis", -1)}, 2);
    const std::string& x0 = parts[0];
    const std::string& x1 = parts[1];
    const std::string r0 = b_.op("Sub", prefix + "/Sub", {b_.op("Mul", prefix + "/Mul", {x0, cos_}),
                                                          b_.op("Mul", prefix + "/Mul_1", {x1, sin_})});
    const std::string r1 = b_.op("Add", prefix + "/Add", {b_.op("Mul", prefix + "/Mul_2", {x0, sin_}),
                                                          b_.op("Mul", prefix + "/Mul_3", {x1, cos_})});
    const std::string r = b_.op("Concat", prefix + "/Concat", {r0, r1}, {Attribute::make_int("axis", -1)});
    return b_.op("Reshape", prefix + "/Reshape_1",
                 {r, b_.const_i64(prefix + "/shape4", {0, 0, heads, c_.head_size()}, {4})});
  }

  // [B,S,heads,head] -> [B,heads,S,head]
  std::string to_heads(const std::string& prefix, const std::string& x) {
    return b_.op("Transpose", prefix, {x}, {Attribute::make_ints("perm", {0, 2, 1, 3})});
  }

  // [B,kv_heads,T,head] -> [B,heads,T,head]: kv head j serves query heads j*rep .. j*rep+rep-1.
  std::string repeat_kv(const std::string& prefix, const std::string& x) {
    const int rep = c_.n_heads / c_.n_kv_heads;
    if (rep == 1) return x;
    const std::string u = b_.op("Unsqueeze", prefix + "/Unsqueeze",
                                {x, b_.const_i64(prefix + "/axes", {2}, {1})});
    const std::string e = b_.op("Expand", prefix + "/Expand",
                                {u, b_.const_i64(prefix + "/expand_shape", {1, 1, rep, 1, 1}, {5})});
    return b_.op("Reshape", prefix + "/Reshape",
                 {e, b_.const_i64(prefix + "/shape", {0, c_.n_heads, -1, c_.head_size()}, {4})});
  }

  std::string layer(int l, const std::string& h_in) {
    const std::string p = "/model/layers." + std::to_string(l);
    LlamaLayerWeights& w = w_.layers[l];
    const int hs = c_.head_size();
    const std::string x = rms_norm(p + "/input_layernorm", h_in, std::move(w.attn_norm));
    const std::string a = p + "/self_attn";
    const std::string q = linear(a + "/q_proj", x, std::move(w.wq), std::move(w.bq));
    const std::string k = linear(a + "/k_proj", x, std::move(w.wk), std::move(w.bk));
    const std::string v = linear(a + "/v_proj", x, std::move(w.wv), std::move(w.bv));
    const std::string qh = to_heads(a + "/Transpose_q", rope(a + "/rotary_q", q, c_.n_heads));
    const std::string kh = to_heads(a + "/Transpose_k", rope(a + "/rotary_k", k, c_.n_kv_heads));
    const std::string vh = to_heads(a + "/Transpose_v",
        b_.op("Reshape", a + "/Reshape_v", {v, b_.const_i64(a + "/shape_v", {0, 0, c_.n_kv_heads, hs}, {4})}));
    const std::string key_all = b_.op("Concat", a + "/Concat_key", {past_name(l, "key"), kh},
                                      {Attribute::make_int("axis", 2)});
    rename_output(key_all, present_name(l, "key"));
    const std::string value_all = b_.op("Concat", a + "/Concat_value", {past_name(l, "value"), vh},
                                        {Attribute::make_int("axis", 2)});
    rename_output(value_all, present_name(l, "value"));
    const std::string keys = repeat_kv(a + "/repeat_k", present_name(l, "key"));
    const std::string values = repeat_kv(a + "/repeat_v", present_name(l, "value"));
    const std::string kt = b_.op("Transpose", a + "/Transpose_kt", {keys}, {Attribute::make_ints("perm", {0, 1, 3, 2})});
    const std::string scores = b_.op("Mul", a + "/Mul_scale",
        {b_.op("MatMul", a + "/MatMul_qk", {qh, kt}), b_.scalar_f32(a + "/scale", 1.0f / std::sqrt(float(hs)))});
    const std::string masked = b_.op("Where", a + "/Where_mask", {future_, masked_value_, scores});
    const std::string probs = b_.op("Softmax", a + "/Softmax", {masked}, {Attribute::make_int("axis", -1)});
    const std::string ctx = b_.op("Transpose", a + "/Transpose_ctx",
                                  {b_.op("MatMul", a + "/MatMul_pv", {probs, values})},
                                  {Attribute::make_ints("perm", {0, 2, 1, 3})});
    const std::string merged = b_.op("Reshape", a + "/Reshape_ctx",
                                     {ctx, b_.const_i64(a + "/shape_ctx", {0, 0, c_.dim}, {3})});
    const std::string o = linear(a + "/o_proj", merged, std::move(w.wo));
    const std::string h = b_.op("Add", p + "/Add", {h_in, o});
    const std::string x2 = rms_norm(p + "/post_attention_layernorm", h, std::move(w.ffn_norm));
    const std::string m = p + "/mlp";
    const std::string gate = linear(m + "/gate_proj", x2, std::move(w.w_gate));
    const std::string up = linear(m + "/up_proj", x2, std::move(w.w_up));
    const std::string silu = b_.op("Mul", m + "/act_fn/Mul", {gate, b_.op("Sigmoid", m + "/act_fn/Sigmoid", {gate})});
    const std::string down = linear(m + "/down_proj", b_.op("Mul", m + "/Mul", {silu, up}), std::move(w.w_down));
    return b_.op("Add", p + "/Add_1", {h, down});
  }

  const LlamaHyperparams& c_;
  LlamaWeights& w_;
  Graph& g_;
  GraphBuilder b_;
  std::string cos_, sin_, future_, masked_value_, split_, two_, eps_;
  int rope_half_ = 0;
};

Status expect_shape(const Tensor& t, const std::string& want_name, std::vector<int64_t> dims,
                    const std::string& source) {
  if (t.dtype() != DType::kF32 || t.dims() != dims)
    return invalid_input(source, ": tensor '", want_name, "' is ", dtype_name(t.dtype()), " ",
                         shape_str(t.dims()), ", expected float32 ", shape_str(dims));
  return Status::ok();
}

}  // namespace

Status check_llama_weights(const LlamaHyperparams& hp, const LlamaWeights& w, const std::string& source) {
  if (hp.dim <= 0 || hp.hidden_dim <= 0 || hp.n_layers <= 0 || hp.n_heads <= 0 || hp.n_kv_heads <= 0 ||
      hp.vocab_size <= 0 || hp.max_seq_len <= 0)
    return invalid_input(source, ": hyperparameters must be positive (dim ", hp.dim, ", hidden ", hp.hidden_dim,
                         ", layers ", hp.n_layers, ", heads ", hp.n_heads, ", kv heads ", hp.n_kv_heads,
                         ", vocab ", hp.vocab_size, ", context ", hp.max_seq_len, ")");
  if (hp.dim % hp.n_heads != 0 || hp.n_heads % hp.n_kv_heads != 0 || hp.head_size() % 2 != 0)
    return invalid_input(source, ": ", hp.n_heads, " heads and ", hp.n_kv_heads,
                         " kv heads do not split width ", hp.dim, " into even head sizes");
  if (!(hp.rope_theta > 0) || !std::isfinite(hp.rope_theta) || !(hp.norm_eps >= 0) || !std::isfinite(hp.norm_eps))
    return invalid_input(source, ": rope theta ", hp.rope_theta, " or norm epsilon ", hp.norm_eps, " is invalid");
  if (static_cast<int>(w.layers.size()) != hp.n_layers)
    return invalid_input(source, ": ", w.layers.size(), " layers of weights for ", hp.n_layers, " layers");
  const int64_t d = hp.dim, kv = hp.kv_dim(), hid = hp.hidden_dim, v = hp.vocab_size;
  LLMC_RETURN_IF_ERROR(expect_shape(w.embedding, w.embedding.name(), {v, d}, source));
  LLMC_RETURN_IF_ERROR(expect_shape(w.final_norm, w.final_norm.name(), {d}, source));
  LLMC_RETURN_IF_ERROR(expect_shape(w.lm_head, w.lm_head.name(), {d, v}, source));
  for (const auto& l : w.layers) {
    const std::pair<const Tensor*, std::vector<int64_t>> want[] = {
        {&l.attn_norm, {d}}, {&l.wq, {d, d}},      {&l.wk, {d, kv}},      {&l.wv, {d, kv}},
        {&l.wo, {d, d}},     {&l.ffn_norm, {d}},   {&l.w_gate, {d, hid}}, {&l.w_up, {d, hid}},
        {&l.w_down, {hid, d}}};
    for (const auto& [t, dims] : want) LLMC_RETURN_IF_ERROR(expect_shape(*t, t->name(), dims, source));
    const std::pair<const std::optional<Tensor>*, int64_t> biases[] = {{&l.bq, d}, {&l.bk, kv}, {&l.bv, kv}};
    for (const auto& [b, n] : biases)
      if (*b) LLMC_RETURN_IF_ERROR(expect_shape(**b, (*b)->name(), {n}, source));
  }
  return Status::ok();
}

Model build_llama_model(const LlamaHyperparams& hp, LlamaWeights weights, const std::string& graph_name) {
  Model m;
  m.ir_version = 8;
  m.opset_imports = {{"", 17}};
  m.producer_name = "llmcompress";
  m.producer_version = LLMC_VERSION;
  LlamaGraph(hp, weights, m.graph).build(graph_name);
  m.set_metadata(kMetaMaxSequenceLength, std::to_string(hp.max_seq_len));
  return m;
}

}  // namespace llmc
