// llama2.c checkpoint -> the Llama decoder graph of formats/llama_graph.h (standard ops, KV
// cache, Hugging Face names), with the rotary angles in run.c's float arithmetic.
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
