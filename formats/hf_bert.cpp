// BERT encoders (BertModel: sentence-transformers' MiniLM, bert-base, ...) as the graph Hugging
// Face's ONNX export of BertModel computes, in standard ONNX ops at opset 17:
//   inputs  input_ids, attention_mask, token_type_ids   int64 [batch_size, sequence_length]
//   output  last_hidden_state                           float [batch_size, sequence_length, hidden]
// embeddings (word + token type + absolute position) -> LayerNorm -> layers of post-norm
// self-attention and a GELU feed-forward. The pooler (BertModel's pooler_output) is not built:
// sentence embeddings pool last_hidden_state themselves.
#include <cmath>
#include <limits>

#include "formats/hf_import.h"
#include "formats/hf_weights.h"
#include "ir/graph_builder.h"
#include "ir/metadata_keys.h"

namespace llmc {

namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

struct BertHyperparams {
  int64_t layers = 0, hidden = 0, intermediate = 0, heads = 0, vocab = 0, positions = 0, type_vocab = 0;
  float eps = 1e-12f;
  int64_t head_size() const { return hidden / heads; }
};

// Defaults are transformers' BertConfig's, so a config that leaves a key out means what it does there.
Result<BertHyperparams> bert_hyperparams(const HfConfig& c) {
  BertHyperparams hp;
  LLMC_ASSIGN_OR_RETURN(hp.layers, c.get_int("num_hidden_layers", 1, 10000));
  // Bounded so that every product of two sizes below fits easily in int64.
  LLMC_ASSIGN_OR_RETURN(hp.hidden, c.get_int("hidden_size", 1, 1 << 20));
  LLMC_ASSIGN_OR_RETURN(hp.intermediate, c.get_int("intermediate_size", 1, 1 << 22));
  LLMC_ASSIGN_OR_RETURN(hp.heads, c.get_int("num_attention_heads", 1, 1 << 16));
  LLMC_ASSIGN_OR_RETURN(hp.vocab, c.get_int("vocab_size", 1, kMaxInt));
  LLMC_ASSIGN_OR_RETURN(hp.positions, c.get_int("max_position_embeddings", 1, 1 << 20));
  LLMC_ASSIGN_OR_RETURN(hp.type_vocab, c.get_int_or("type_vocab_size", 1, 1 << 16, 2));
  LLMC_ASSIGN_OR_RETURN(double eps, c.get_float_or("layer_norm_eps", 1e-12));
  if (!(eps >= 0) || !std::isfinite(eps) || eps > 1)
    return invalid_input(c.path(), ": layer_norm_eps ", eps, " is invalid");
  hp.eps = static_cast<float>(eps);
  if (hp.hidden % hp.heads != 0)
    return invalid_input(c.path(), ": ", hp.heads, " heads do not divide hidden_size ", hp.hidden);
  std::string act = "gelu", position = "absolute";
  if (c.has("hidden_act")) {
    LLMC_ASSIGN_OR_RETURN(act, c.get_string("hidden_act"));
  }
  if (act != "gelu")
    return unsupported(c.path(), ": hidden_act '", act, "' is not supported (BERT's exact erf 'gelu' is)");
  if (c.has("position_embedding_type")) {
    LLMC_ASSIGN_OR_RETURN(position, c.get_string("position_embedding_type"));
  }
  if (position != "absolute")
    return unsupported(c.path(), ": position_embedding_type '", position, "' is not supported ('absolute' is)");
  return hp;
}

class BertGraph {
 public:
  BertGraph(const BertHyperparams& hp, const HfWeights& src, std::string prefix, Graph& g)
      : c_(hp), src_(src), prefix_(std::move(prefix)), g_(g), b_(g) {}

  Status build() {
    for (const char* name : {"input_ids", "attention_mask", "token_type_ids"})
      g_.inputs.push_back(tensor_value(name, DType::kI64, {sym("batch_size"), sym("sequence_length")}));
    g_.outputs.push_back(
        tensor_value("last_hidden_state", DType::kF32, {sym("batch_size"), sym("sequence_length"), num(c_.hidden)}));
    LLMC_ASSIGN_OR_RETURN(std::string h, embeddings());
    attention_mask();
    for (int64_t l = 0; l < c_.layers; ++l) {
      LLMC_ASSIGN_OR_RETURN(h, layer(l, h));
    }
    for (auto& o : g_.nodes.back().outputs)
      if (o == h) o = "last_hidden_state";
    return Status::ok();
  }

 private:
  // An initializer from the checkpoint tensor `name` (without any "bert." prefix), as stored.
  Result<std::string> weight(const std::string& name, std::vector<int64_t> dims) {
    LLMC_ASSIGN_OR_RETURN(Tensor t, src_.plain(prefix_ + name, std::move(dims), name));
    return b_.initializer(std::move(t));
  }

  // x W^T + b for the checkpoint's Linear `name` ("encoder.layer.0.attention.self.query").
  Result<std::string> linear(const std::string& node, const std::string& name, const std::string& x, int64_t out,
                             int64_t in) {
    LLMC_ASSIGN_OR_RETURN(Tensor w, src_.linear(prefix_ + name + ".weight", out, in, name + ".weight"));
    LLMC_ASSIGN_OR_RETURN(std::string bias, weight(name + ".bias", {out}));
    const std::string y = b_.op("MatMul", node + "/MatMul", {x, b_.initializer(std::move(w))});
    return b_.op("Add", node + "/Add", {bias, y});
  }

  Result<std::string> layer_norm(const std::string& node, const std::string& name, const std::string& x) {
    LLMC_ASSIGN_OR_RETURN(std::string gamma, weight(name + ".weight", {c_.hidden}));
    LLMC_ASSIGN_OR_RETURN(std::string beta, weight(name + ".bias", {c_.hidden}));
    return b_.op("LayerNormalization", node + "/LayerNormalization", {x, gamma, beta},
                 {Attribute::make_int("axis", -1), Attribute::make_float("epsilon", c_.eps)});
  }

  // word(input_ids) + token_type(token_type_ids) + position(0 .. sequence_length-1), normalized.
  Result<std::string> embeddings() {
    const std::string p = "/embeddings";
    LLMC_ASSIGN_OR_RETURN(std::string words, weight("embeddings.word_embeddings.weight", {c_.vocab, c_.hidden}));
    LLMC_ASSIGN_OR_RETURN(std::string types,
                          weight("embeddings.token_type_embeddings.weight", {c_.type_vocab, c_.hidden}));
    LLMC_ASSIGN_OR_RETURN(std::string positions,
                          weight("embeddings.position_embeddings.weight", {c_.positions, c_.hidden}));
    const auto axis0 = std::vector<Attribute>{Attribute::make_int("axis", 0)};
    const std::string seq = b_.op("Gather", p + "/Gather_seq",
                                  {b_.op("Shape", p + "/Shape", {"input_ids"}), b_.scalar_i64(p + "/Constant_1", 1)},
                                  axis0);
    const std::string ids = b_.op("Range", p + "/Range", {b_.scalar_i64(p + "/Constant_0", 0), seq,
                                                          b_.scalar_i64(p + "/Constant_step", 1)});
    const std::string word = b_.op("Gather", p + "/word_embeddings/Gather", {words, "input_ids"}, axis0);
    const std::string type = b_.op("Gather", p + "/token_type_embeddings/Gather", {types, "token_type_ids"}, axis0);
    const std::string pos = b_.op("Gather", p + "/position_embeddings/Gather", {positions, ids}, axis0);
    const std::string sum = b_.op("Add", p + "/Add_1", {b_.op("Add", p + "/Add", {word, type}), pos});
    return layer_norm(p + "/LayerNorm", "embeddings.LayerNorm", sum);
  }

  // [B, S] mask of 1 (attend) / 0 (padding) -> [B, 1, 1, S] added to the scores: 0 or float's
  // lowest, as transformers does ((1 - mask) * finfo.min). Lowest plus a finite score stays
  // finite, and the unmasked keys dominate softmax; a row masked entirely is uniform, not NaN.
  void attention_mask() {
    const std::string p = "/extended_attention_mask";
    const std::string m = b_.op("Cast", p + "/Cast", {"attention_mask"},
                                {Attribute::make_int("to", static_cast<int64_t>(1))});  // FLOAT
    const std::string inv = b_.op("Sub", p + "/Sub", {b_.scalar_f32(p + "/Constant_one", 1.0f), m});
    const std::string neg = b_.op("Mul", p + "/Mul", {inv, b_.scalar_f32(p + "/Constant_min",
                                                                      std::numeric_limits<float>::lowest())});
    mask_ = b_.op("Unsqueeze", p + "/Unsqueeze", {neg, b_.const_i64(p + "/Constant_axes", {1, 2}, {2})});
  }

  // [B, S, hidden] -> [B, heads, S, head] (perm 0,2,1,3) or, for keys, [B, heads, head, S].
  std::string split_heads(const std::string& node, const std::string& x, std::vector<int64_t> perm) {
    const std::string r = b_.op("Reshape", node + "/Reshape",
                                {x, b_.const_i64(node + "/shape", {0, 0, c_.heads, c_.head_size()}, {4})});
    return b_.op("Transpose", node + "/Transpose", {r}, {Attribute::make_ints("perm", std::move(perm))});
  }

  Result<std::string> layer(int64_t l, const std::string& h) {
    const std::string name = "encoder.layer." + std::to_string(l);
    const std::string p = "/encoder/layer." + std::to_string(l);
    const std::string a = p + "/attention/self";
    const int64_t d = c_.hidden;
    LLMC_ASSIGN_OR_RETURN(std::string q, linear(a + "/query", name + ".attention.self.query", h, d, d));
    LLMC_ASSIGN_OR_RETURN(std::string k, linear(a + "/key", name + ".attention.self.key", h, d, d));
    LLMC_ASSIGN_OR_RETURN(std::string v, linear(a + "/value", name + ".attention.self.value", h, d, d));
    const std::string qh = split_heads(a + "/query_heads", q, {0, 2, 1, 3});
    const std::string kt = split_heads(a + "/key_heads", k, {0, 2, 3, 1});
    const std::string vh = split_heads(a + "/value_heads", v, {0, 2, 1, 3});
    const std::string scale = b_.scalar_f32(a + "/Constant_scale", static_cast<float>(std::sqrt(double(c_.head_size()))));
    const std::string scores = b_.op("Div", a + "/Div", {b_.op("MatMul", a + "/MatMul", {qh, kt}), scale});
    const std::string probs = b_.op("Softmax", a + "/Softmax", {b_.op("Add", a + "/Add", {scores, mask_})},
                                    {Attribute::make_int("axis", -1)});
    const std::string ctx = b_.op("Transpose", a + "/Transpose_ctx", {b_.op("MatMul", a + "/MatMul_1", {probs, vh})},
                                  {Attribute::make_ints("perm", {0, 2, 1, 3})});
    const std::string merged =
        b_.op("Reshape", a + "/Reshape_ctx", {ctx, b_.const_i64(a + "/shape_ctx", {0, 0, d}, {3})});
    LLMC_ASSIGN_OR_RETURN(std::string o, linear(p + "/attention/output/dense", name + ".attention.output.dense",
                                                merged, d, d));
    const std::string attended = b_.op("Add", p + "/attention/output/Add", {o, h});
    LLMC_ASSIGN_OR_RETURN(std::string h1,
                          layer_norm(p + "/attention/output/LayerNorm", name + ".attention.output.LayerNorm", attended));
    LLMC_ASSIGN_OR_RETURN(std::string up, linear(p + "/intermediate/dense", name + ".intermediate.dense", h1,
                                                 c_.intermediate, d));
    const std::string act = gelu(p + "/intermediate/intermediate_act_fn", up);
    LLMC_ASSIGN_OR_RETURN(std::string down, linear(p + "/output/dense", name + ".output.dense", act, d,
                                                   c_.intermediate));
    return layer_norm(p + "/output/LayerNorm", name + ".output.LayerNorm",
                      b_.op("Add", p + "/output/Add", {down, h1}));
  }

  // Exact GELU, x * 0.5 * (1 + erf(x / sqrt(2))), in the order transformers writes it.
  std::string gelu(const std::string& node, const std::string& x) {
    if (sqrt2_.empty()) {
      sqrt2_ = b_.scalar_f32("/gelu/Constant_sqrt2", static_cast<float>(std::sqrt(2.0)));
      one_ = b_.scalar_f32("/gelu/Constant_one", 1.0f);
      half_ = b_.scalar_f32("/gelu/Constant_half", 0.5f);
    }
    const std::string erf = b_.op("Erf", node + "/Erf", {b_.op("Div", node + "/Div", {x, sqrt2_})});
    const std::string xs = b_.op("Mul", node + "/Mul", {x, b_.op("Add", node + "/Add", {erf, one_})});
    return b_.op("Mul", node + "/Mul_1", {xs, half_});
  }

  const BertHyperparams& c_;
  const HfWeights& src_;
  std::string prefix_;
  Graph& g_;
  GraphBuilder b_;
  std::string mask_, sqrt2_, one_, half_;
};

}  // namespace

Result<Model> hf_bert_to_model(const HfConfig& c, const std::string& dir) {
  LLMC_ASSIGN_OR_RETURN(std::string arch, c.architecture());
  LLMC_ASSIGN_OR_RETURN(BertHyperparams hp, bert_hyperparams(c));
  LLMC_ASSIGN_OR_RETURN(SafetensorsCheckpoint ck, open_safetensors_checkpoint(dir));
  const HfWeights src(ck, c.path());
  // BertModel checkpoints name tensors "embeddings...", task models' ("BertFor...") "bert.embeddings...".
  const std::string prefix =
      !src.has("embeddings.word_embeddings.weight") && src.has("bert.embeddings.word_embeddings.weight") ? "bert." : "";
  Model m;
  m.ir_version = 8;
  m.opset_imports = {{"", 17}};
  m.producer_name = "llmcompress";
  m.producer_version = LLMC_VERSION;
  m.graph.name = "hf_" + arch;
  LLMC_RETURN_IF_ERROR(BertGraph(hp, src, prefix, m.graph).build());
  m.set_metadata(kMetaMaxSequenceLength, std::to_string(hp.positions));
  m.set_metadata(kMetaSource, "Hugging Face " + arch);
  return m;
}

}  // namespace llmc
