// One entry point for every model the CLI accepts (ONNX, llama2.c checkpoint, GGUF, Hugging Face
// checkpoint directory), and the
// tokenizer a model carries in its metadata.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "formats/gguf_keep_quant.h"  // KeepQuantReport
#include "formats/tokenizer.h"
#include "ir/graph.h"
#include "ir/metadata_keys.h"  // kMetaTokenizer, where the llama2.c tokenizer is stored
#include "ir/status.h"

namespace llmc {

enum class ModelFormat { kOnnx, kLlama2c, kGguf, kHuggingFace };

// A directory with config.json is a Hugging Face checkpoint; files by extension (.onnx / .bin /
// .gguf), else by content.
Result<ModelFormat> detect_model_format(const std::string& path);
// `external_files` (optional): the ONNX external data files read besides `path`. A GGUF model
// comes with the tokenizer its file describes attached, a Hugging Face directory with its
// tokenizer.json's.
Result<Model> load_model(const std::string& path, std::vector<std::string>* external_files = nullptr);

struct LoadOptions {
  // GGUF input: Q4_0 / Q4_1 / Q8_0 MatMul weights stay quantised as com.microsoft MatMulNBits
  // (formats/gguf_keep_quant.h); an error for any other input format.
  bool keep_quant = false;
  KeepQuantReport* keep_quant_report = nullptr;  // filled when keep_quant
};
Result<Model> load_model(const std::string& path, const LoadOptions& options,
                         std::vector<std::string>* external_files = nullptr);

// Stores the tokenizer's serialized bytes (base64) in the model's metadata_props under
// tokenizer_metadata_key(kind), replacing any tokenizer stored before.
void attach_tokenizer(Model& model, const Tokenizer& tokenizer);
// The tokenizer for `model`: from `override_path` when given, else from its metadata.
// Fails with a message that says how to supply one when there is none.
Result<std::shared_ptr<const Tokenizer>> model_tokenizer(const Model& model, const std::string& model_path,
                                                         const std::string& override_path);
// A tokenizer file (llama2.c tokenizer.bin, Hugging Face tokenizer.json, BERT vocab.txt), or any model file
// carrying one (ONNX with metadata, GGUF).
Result<std::shared_ptr<const Tokenizer>> load_tokenizer(const std::string& path);

}  // namespace llmc
