// GGUF (llama.cpp) -> the Llama decoder graph of formats/llama_graph.h. Architecture `llama`
// only (others refused by name); hyperparameters from `llama.*` metadata (GQA head counts, rope
// θ, RMSNorm ε, context length); weights dequantised to float32 exactly as llama.cpp's reference
// dequantisers do; `output.weight` or, when absent, the tied token embedding as the LM head.
// GGUF keeps Q/K rows in llama.cpp's interleaved rotary order, which is the graph's, so they are
// used as stored. With GgufImportOptions::keep_quant, the layers' projections whose blocks
// MatMulNBits can hold stay quantised (formats/gguf_keep_quant.h); the embedding and the LM head
// stay float32. The tokenizer (tokenizer.ggml.*) and chat template come along in metadata.
#pragma once
#include <string>

#include "formats/bpe_tokenizer.h"
#include "formats/gguf_keep_quant.h"
#include "formats/gguf_reader.h"
#include "ir/graph.h"
#include "ir/metadata_keys.h"  // kMetaChatTemplate

namespace llmc {

struct GgufImportOptions {
  // Q4_0 / Q4_1 / Q8_0 projections as com.microsoft MatMulNBits instead of float32 MatMuls.
  bool keep_quant = false;
  KeepQuantReport* keep_quant_report = nullptr;  // when keep_quant: filled with what was kept
};

Result<Model> gguf_to_model(const GgufFile& gguf, const GgufImportOptions& options = {});

// The byte-level BPE vocabulary of a GGUF whose tokenizer.ggml.model is "gpt2"; an error naming
// the model kind otherwise.
Result<BpeVocabulary> gguf_bpe_vocabulary(const GgufFile& gguf);

}  // namespace llmc
