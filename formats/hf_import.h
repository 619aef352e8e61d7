// Hugging Face checkpoints: a directory with config.json and model.safetensors (or a sharded
// index), memory-mapped. The architecture (config.json's architectures[0]) picks the graph:
//   LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM -> formats/llama_graph.h
//   GPT2LMHeadModel -> formats/hf_gpt2.cpp
//   BertModel -> an encoder graph giving last_hidden_state (hf_bert.cpp)
// Others are refused by name. Weights may be float32, float16 or bfloat16 (widened to float32).
#pragma once
#include <string>

#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "ir/graph.h"

namespace llmc {

// True when `path` is a directory holding config.json.
bool is_hf_checkpoint_dir(const std::string& path);

// The model (formats/model_loader.h's load_model attaches the directory's tokenizer.json).
Result<Model> import_hf_checkpoint(const std::string& dir);

// The Llama-family graph from a parsed config and the checkpoint's weights in `dir`, opened once
// the config has been checked (hf_llama.cpp).
Result<Model> hf_llama_to_model(const HfConfig& config, const std::string& dir);
// The BERT encoder graph, likewise (hf_bert.cpp).
Result<Model> hf_bert_to_model(const HfConfig& config, const std::string& dir);

// GPT-2 (hf_gpt2.cpp).
Result<Model> hf_gpt2_to_model(const HfConfig& config, const std::string& dir);

}  // namespace llmc
