// GGUF (llama.cpp) -> the Llama decoder graph of formats/llama_graph.h. Architecture `llama`
// only (others refused by name); hyperparameters from `llama.*` metadata (GQA head counts, rope
// θ, RMSNorm ε, context length); weights dequantised to float32 exactly as llama.cpp's reference
// dequantisers do; `output.weight` or, when absent, the tied token embedding as the LM head.
// GGUF keeps Q/K rows in llama.cpp's interleaved rotary order, which is the graph's, so they are
// used as stored. The tokenizer (tokenizer.ggml.*) and chat template come along in metadata.
#pragma once
#include <string>

#include "formats/bpe_tokenizer.h"
#include "formats/gguf_reader.h"
#include "ir/graph.h"
#include "ir/metadata_keys.h"  // kMetaChatTemplate

namespace llmc {

Result<Model> gguf_to_model(const GgufFile& gguf);

// The byte-level BPE vocabulary of a GGUF whose tokenizer.ggml.model is "gpt2"; an error naming
// the model kind otherwise.
Result<BpeVocabulary> gguf_bpe_vocabulary(const GgufFile& gguf);

}  // namespace llmc
