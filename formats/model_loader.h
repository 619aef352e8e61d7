// One entry point for every model file the CLI accepts (ONNX or llama2.c checkpoint), and the
// tokenizer a model carries in its metadata.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "formats/llama2c_tokenizer.h"
#include "ir/graph.h"
#include "ir/metadata_keys.h"  // kMetaTokenizer, where attach_tokenizer stores the tokenizer
#include "ir/status.h"

namespace llmc {

enum class ModelFormat { kOnnx, kLlama2c };

// By extension (.onnx / .bin), else by content.
Result<ModelFormat> detect_model_format(const std::string& path);
// `external_files` (optional): the ONNX external data files read besides `path`.
Result<Model> load_model(const std::string& path, std::vector<std::string>* external_files = nullptr);

// Stores the tokenizer's file bytes (base64) in the model's metadata_props.
void attach_tokenizer(Model& model, const Llama2cTokenizer& tokenizer);
// The tokenizer for `model`: from `override_path` when given, else from its metadata.
// Fails with a message that says how to supply one when there is none.
Result<Llama2cTokenizer> model_tokenizer(const Model& model, const std::string& model_path,
                                         const std::string& override_path);
// A tokenizer file, or any model file carrying one.
Result<Llama2cTokenizer> load_tokenizer(const std::string& path);

}  // namespace llmc
