#include "formats/llama2c_import.h"

#include <cmath>
#include <limits>

#include "ir/graph_builder.h"

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

ValueInfo tensor_info(const std::string& name, DType elem, std::vector<Dim> dims) {
  ValueInfo v;
  v.name = name;
  v.type.kind = ValueType::Kind::kTensor;
  v.type.elem = elem;
  v.type.has_shape = true;
  v.type.dims = std::move(dims);
  return v;
}
Dim sym(const char* s) { return Dim{-1, s, ""}; }
Dim num(int64_t v) { return Dim{v, "", ""}; }

class LlamaGraph {
 public:
  LlamaGraph(const Llama2cCheckpoint& ck, Graph& g) : ck_(ck), c_(ck.config), g_(g), b_(g) {}

  void build() {
    const int hs = c_.head_size();
    g_.name = "llama2c";
    g_.inputs.push_back(tensor_info("input_ids", DType::kI64, {sym("batch_size"), sym("sequence_length")}));
    for (int l = 0; l < c_.n_layers; ++l)
      for (const char* kv : {"key", "value"})
        g_.inputs.push_back(tensor_info(past_name(l, kv), DType::kF32,
                                        {sym("batch_size"), num(c_.n_kv_heads),
                                         sym("past_sequence_length"), num(hs)}));
    g_.outputs.push_back(tensor_info("logits", DType::kF32,
                                     {sym("batch_size"), sym("sequence_length"), num(c_.vocab_size)}));
    for (int l = 0; l < c_.n_layers; ++l)
      for (const char* kv : {"key", "value"})
        g_.outputs.push_back(tensor_info(present_name(l, kv), DType::kF32,
                                         {sym("batch_size"), num(c_.n_kv_heads),
                                          sym("total_sequence_length"), num(hs)}));
    positions_and_mask();
    std::string h = b_.op("Gather", "/model/embed_tokens/Gather",
                          {b_.initializer(view_f32("model.embed_tokens.weight",
                                                   {c_.vocab_size, c_.dim}, ck_.token_embedding, ck_.owner)),
                           "input_ids"},
                          {Attribute::make_int("axis", 0)});
    for (int l = 0; l < c_.n_layers; ++l) h = layer(l, h);
    const std::string x = rms_norm("/model/norm", h, ck_.rms_final, "model.norm.weight");
    const std::string head = b_.initializer(
        transposed_f32("lm_head.weight", ck_.classifier, c_.vocab_size, c_.dim));
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
    std::vector<float> cos_t(size_t(c_.seq_len) * half), sin_t(cos_t.size());
    for (int pos = 0; pos < c_.seq_len; ++pos)
      for (int i = 0; i < half; ++i) {
        // Same float arithmetic as llama2.c's run.c.
        const float freq = 1.0f / powf(10000.0f, (2 * i) / static_cast<float>(c_.head_size()));
        const float val = pos * freq;
        cos_t[size_t(pos) * half + i] = cosf(val);
        sin_t[size_t(pos) * half + i] = sinf(val);
      }
    const std::string cos_w = b_.initializer(
        Tensor::from_vector("model.rotary_emb.cos", DType::kF32, {c_.seq_len, half}, cos_t));
    const std::string sin_w = b_.initializer(
        Tensor::from_vector("model.rotary_emb.sin", DType::kF32, {c_.seq_len, half}, sin_t));
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

  std::string rms_norm(const std::string& prefix, const std::string& x, const float* w,
                       const std::string& weight_name) {
    if (two_.empty()) {
      two_ = b_.scalar_f32("/model/Constant_two", 2.0f);
      eps_ = b_.scalar_f32("/model/Constant_eps", 1e-5f);
    }
    const std::string weight = b_.initializer(view_f32(weight_name, {c_.dim}, w, ck_.owner));
    const std::string sq = b_.op("Pow", prefix + "/Pow", {x, two_});
    const std::string mean = b_.op("ReduceMean", prefix + "/ReduceMean", {sq},
                                   {Attribute::make_ints("axes", {-1}), Attribute::make_int("keepdims", 1)});
    const std::string rstd = b_.op("Reciprocal", prefix + "/Reciprocal",
                                   {b_.op("Sqrt", prefix + "/Sqrt", {b_.op("Add", prefix + "/Add", {mean, eps_})})});
    return b_.op("Mul", prefix + "/Mul_1", {weight, b_.op("Mul", prefix + "/Mul", {x, rstd})});
  }

  std::string linear(const std::string& prefix, const std::string& x, const std::string& weight_name,
                     const float* w, int64_t out, int64_t in) {
    return b_.op("MatMul", prefix + "/MatMul",
                 {x, b_.initializer(transposed_f32(weight_name, w, out, in))});
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
    const std::string w = "model.layers." + std::to_string(l);
    const size_t dim = c_.dim, kv = c_.kv_dim(), hid = c_.hidden_dim;
    const int hs = c_.head_size();
    const std::string x = rms_norm(p + "/input_layernorm", h_in, ck_.rms_att + l * dim,
                                   w + ".input_layernorm.weight");
    const std::string a = p + "/self_attn";
    const std::string q = linear(a + "/q_proj", x, w + ".self_attn.q_proj.weight", ck_.wq + l * dim * dim, dim, dim);
    const std::string k = linear(a + "/k_proj", x, w + ".self_attn.k_proj.weight", ck_.wk + l * kv * dim, kv, dim);
    const std::string v = linear(a + "/v_proj", x, w + ".self_attn.v_proj.weight", ck_.wv + l * kv * dim, kv, dim);
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
    const std::string o = linear(a + "/o_proj", merged, w + ".self_attn.o_proj.weight", ck_.wo + l * dim * dim, dim, dim);
    const std::string h = b_.op("Add", p + "/Add", {h_in, o});
    const std::string x2 = rms_norm(p + "/post_attention_layernorm", h, ck_.rms_ffn + l * dim,
                                    w + ".post_attention_layernorm.weight");
    const std::string m = p + "/mlp";
    const std::string gate = linear(m + "/gate_proj", x2, w + ".mlp.gate_proj.weight", ck_.w1 + l * hid * dim, hid, dim);
    const std::string up = linear(m + "/up_proj", x2, w + ".mlp.up_proj.weight", ck_.w3 + l * hid * dim, hid, dim);
    const std::string silu = b_.op("Mul", m + "/act_fn/Mul", {gate, b_.op("Sigmoid", m + "/act_fn/Sigmoid", {gate})});
    const std::string down = linear(m + "/down_proj", b_.op("Mul", m + "/Mul", {silu, up}),
                                    w + ".mlp.down_proj.weight", ck_.w2 + l * dim * hid, dim, hid);
    return b_.op("Add", p + "/Add_1", {h, down});
  }

  const Llama2cCheckpoint& ck_;
  const Llama2cConfig& c_;
  Graph& g_;
  GraphBuilder b_;
  std::string cos_, sin_, future_, masked_value_, split_, two_, eps_;
  int rope_half_ = 0;
};

}  // namespace

Model llama2c_to_model(const Llama2cCheckpoint& ck) {
  Model m;
  m.ir_version = 8;
  m.opset_imports = {{"", 17}};
  m.producer_name = "llmcompress";
  m.producer_version = LLMC_VERSION;
  LlamaGraph(ck, m.graph).build();
  const auto& c = ck.config;
  m.set_metadata(kMetaSource, "llama2.c");
  m.set_metadata(kMetaMaxSequenceLength, std::to_string(c.seq_len));
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
