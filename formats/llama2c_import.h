// llama2.c checkpoint -> standard-ONNX-op decoder graph with a KV cache, named as Hugging Face
// exports name things:
//   inputs  input_ids [batch, seq] i64, past_key_values.{i}.key/.value [batch, kv_heads, past, head]
//   outputs logits [batch, seq, vocab], present.{i}.key/.value [batch, kv_heads, past+seq, head]
// Ops (opset 17): Gather embedding, RMSNorm as Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul, MatMul
// projections (weights transposed to [in, out]), interleaved rotary embedding as llama2.c does
// it, causal attention with grouped KV heads (Expand), SwiGLU FFN.
#pragma once
#include <string>

#include "formats/llama2c_checkpoint.h"
#include "ir/graph.h"
#include "ir/metadata_keys.h"  // the keys the import writes (kMetaSource, kMetaMaxSequenceLength)

namespace llmc {

// Builds the graph. Embedding and norm weights are views into the checkpoint's mapped file.
Model llama2c_to_model(const Llama2cCheckpoint& checkpoint);

Result<Model> import_llama2c(const std::string& path);

}  // namespace llmc
