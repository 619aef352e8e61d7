// The decoder graph every Llama-family import produces (llama2.c checkpoints, GGUF files, Hugging
// Face checkpoints): standard ONNX ops, a KV cache, Hugging Face names.
//   inputs  input_ids [batch, seq] i64, past_key_values.{i}.key/.value [batch, kv_heads, past, head]
//   outputs logits [batch, seq, vocab], present.{i}.key/.value [batch, kv_heads, past+seq, head]
// Ops (opset 17): Gather embedding, RMSNorm as Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul, MatMul
// projections (weights [in, out]), rotary embedding on interleaved pairs (2i, 2i+1) as llama2.c
// and llama.cpp apply it (Hugging Face's rotate-half layout is permuted into it on import),
// causal attention with grouped KV heads (Expand), SwiGLU FFN.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"

namespace llmc {

struct LlamaHyperparams {
  int dim = 0;
  int hidden_dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int vocab_size = 0;
  int max_seq_len = 0;  // rows of the rotary tables
  double rope_theta = 10000.0;
  float norm_eps = 1e-5f;
  // llama2.c's run.c computes the rotary angles in float; other sources get them in double,
  // rounded once (closer to the float64 the models were trained with).
  bool rope_float_arithmetic = false;
  int head_size() const { return dim / n_heads; }
  int kv_dim() const { return head_size() * n_kv_heads; }
};

// Float32 tensors, each named as Hugging Face names it; matrices [in, out] (MatMul's B).
struct LlamaLayerWeights {
  Tensor attn_norm;                 // [dim]
  Tensor wq, wk, wv, wo;            // q/k rows in interleaved rotary order
  std::optional<Tensor> bq, bk, bv; // Qwen2's attention biases [out]
  Tensor ffn_norm;                  // [dim]
  Tensor w_gate, w_up, w_down;
};
struct LlamaWeights {
  Tensor embedding;  // [vocab, dim]
  std::vector<LlamaLayerWeights> layers;
  Tensor final_norm;  // [dim]
  Tensor lm_head;     // [dim, vocab]
};

// Checks the hyperparameters (positive, heads divide dim, kv heads divide heads, even head
// size) and every weight's shape; errors name `source` and the tensor.
Status check_llama_weights(const LlamaHyperparams& hp, const LlamaWeights& w, const std::string& source);

// The model (ir 8, opset 17) with kMetaMaxSequenceLength set. Weights must have passed
// check_llama_weights.
Model build_llama_model(const LlamaHyperparams& hp, LlamaWeights weights, const std::string& graph_name);

}  // namespace llmc
