#include "formats/model_loader.h"

#include <filesystem>

#include "formats/base64.h"
#include "formats/bpe_tokenizer.h"
#include "formats/gguf_import.h"
#include "formats/gguf_tokenizer.h"
#include "formats/hf_import.h"
#include "formats/llama2c_checkpoint.h"
#include "formats/llama2c_import.h"
#include "formats/llama2c_tokenizer.h"
#include "formats/mapped_file.h"
#include "formats/onnx_format.h"
#include "formats/tokenizer_json.h"
#include "formats/wordpiece_tokenizer.h"

namespace llmc {

namespace {
std::string extension(const std::string& path) {
  return std::filesystem::path(path).extension().string();
}

const char* const kTokenizerKinds[] = {"llama2c", "bpe", "wordpiece"};

Result<std::shared_ptr<const Tokenizer>> parse_tokenizer(const std::string& kind, const std::string& bytes,
                                                         const std::string& source) {
  if (kind == "llama2c") {
    LLMC_ASSIGN_OR_RETURN(auto tok, Llama2cTokenizer::from_bytes(bytes, source));
    return std::shared_ptr<const Tokenizer>(std::make_shared<Llama2cTokenizer>(std::move(tok)));
  }
  if (kind == "wordpiece") {
    LLMC_ASSIGN_OR_RETURN(auto tok, WordPieceTokenizer::deserialize(bytes, source));
    return std::shared_ptr<const Tokenizer>(std::move(tok));
  }
  LLMC_ASSIGN_OR_RETURN(auto tok, BpeTokenizer::deserialize(bytes, source));
  return std::shared_ptr<const Tokenizer>(std::move(tok));
}

// A Hugging Face tokenizer.json: its model.type picks the tokenizer (BPE is the default, as
// files without a readable type are reported by the BPE reader).
Result<std::shared_ptr<const Tokenizer>> json_tokenizer(const std::string& path) {
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  const std::string text(reinterpret_cast<const char*>(file->data()), file->size());
  LLMC_ASSIGN_OR_RETURN(JsonValue root, parse_json(text, path));
  if (component_type(root.find("model")) == "WordPiece") {
    LLMC_ASSIGN_OR_RETURN(auto tok, WordPieceTokenizer::from_tokenizer_json(text, path));
    return std::shared_ptr<const Tokenizer>(std::move(tok));
  }
  LLMC_ASSIGN_OR_RETURN(auto tok, BpeTokenizer::from_tokenizer_json(text, path));
  return std::shared_ptr<const Tokenizer>(std::move(tok));
}

// BERT's vocab.txt, with tokenizer_config.json beside it when there is one.
Result<std::shared_ptr<const Tokenizer>> vocab_txt_tokenizer(const std::string& path) {
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  const std::string text(reinterpret_cast<const char*>(file->data()), file->size());
  const std::string config_path = (std::filesystem::path(path).parent_path() / "tokenizer_config.json").string();
  std::string config;
  std::error_code ec;
  if (std::filesystem::is_regular_file(config_path, ec)) {
    LLMC_ASSIGN_OR_RETURN(auto cf, MappedFile::open(config_path));
    config.assign(reinterpret_cast<const char*>(cf->data()), cf->size());
  }
  LLMC_ASSIGN_OR_RETURN(auto tok, WordPieceTokenizer::from_vocab_txt(text, config, path));
  return std::shared_ptr<const Tokenizer>(std::move(tok));
}

Result<Model> load_gguf(const std::string& path, const LoadOptions& options) {
  LLMC_ASSIGN_OR_RETURN(GgufFile gguf, GgufFile::open(path));
  GgufImportOptions import;
  import.keep_quant = options.keep_quant;
  import.keep_quant_report = options.keep_quant_report;
  LLMC_ASSIGN_OR_RETURN(Model model, gguf_to_model(gguf, import));
  LLMC_ASSIGN_OR_RETURN(auto tok, gguf_tokenizer(gguf));
  attach_tokenizer(model, *tok);
  return model;
}
Result<Model> load_hf(const std::string& dir) {
  LLMC_ASSIGN_OR_RETURN(Model model, import_hf_checkpoint(dir));
  // tokenizer.json says everything; BERT checkpoints may carry only vocab.txt.
  for (const char* name : {"tokenizer.json", "vocab.txt"}) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) continue;
    LLMC_ASSIGN_OR_RETURN(auto tok, load_tokenizer(path));
    attach_tokenizer(model, *tok);
    break;
  }
  return model;
}
}  // namespace

Result<ModelFormat> detect_model_format(const std::string& path) {
  if (is_hf_checkpoint_dir(path)) return ModelFormat::kHuggingFace;
  const std::string ext = extension(path);
  if (ext == ".onnx") return ModelFormat::kOnnx;
  if (ext == ".bin") return ModelFormat::kLlama2c;
  if (ext == ".gguf") return ModelFormat::kGguf;
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  if (looks_like_gguf(*file)) return ModelFormat::kGguf;
  return looks_like_llama2c_checkpoint(*file) ? ModelFormat::kLlama2c : ModelFormat::kOnnx;
}

Result<Model> load_model(const std::string& path, std::vector<std::string>* external_files) {
  return load_model(path, LoadOptions{}, external_files);
}

Result<Model> load_model(const std::string& path, const LoadOptions& options,
                         std::vector<std::string>* external_files) {
  LLMC_ASSIGN_OR_RETURN(auto format, detect_model_format(path));
  if (options.keep_quant && format != ModelFormat::kGguf)
    return invalid_input(path, ": keeping quantised blocks (--keep-quant) applies to GGUF input only");
  switch (format) {
    case ModelFormat::kLlama2c: return import_llama2c(path);
    case ModelFormat::kGguf: return load_gguf(path, options);
    case ModelFormat::kHuggingFace: return load_hf(path);
    case ModelFormat::kOnnx: break;
  }
  return read_onnx(path, external_files);
}

void attach_tokenizer(Model& model, const Tokenizer& tokenizer) {
  auto& props = model.metadata_props;
  for (const char* kind : kTokenizerKinds) {
    const std::string key = tokenizer_metadata_key(kind);
    std::erase_if(props, [&](const auto& kv) { return kv.first == key; });
  }
  model.set_metadata(tokenizer_metadata_key(tokenizer.kind()), base64_encode(tokenizer.serialize()));
}

Result<std::shared_ptr<const Tokenizer>> model_tokenizer(const Model& model, const std::string& model_path,
                                                         const std::string& override_path) {
  if (!override_path.empty()) return load_tokenizer(override_path);
  for (const char* kind : kTokenizerKinds) {
    const std::string key = tokenizer_metadata_key(kind);
    const std::string* encoded = model.find_metadata(key);
    if (!encoded) continue;
    auto bytes = base64_decode(*encoded);
    if (!bytes) return invalid_input(model_path, ": metadata '", key, "' is not valid base64");
    return parse_tokenizer(kind, *bytes, model_path + " (" + key + ")");
  }
  return invalid_input(model_path, ": the model carries no tokenizer; pass --tokenizer FILE");
}

Result<std::shared_ptr<const Tokenizer>> load_tokenizer(const std::string& path) {
  const std::string ext = extension(path);
  if (ext == ".onnx") {
    LLMC_ASSIGN_OR_RETURN(auto model, read_onnx(path));
    return model_tokenizer(model, path, "");
  }
  if (ext == ".json") return json_tokenizer(path);
  if (ext == ".txt") return vocab_txt_tokenizer(path);
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  if (looks_like_gguf(*file)) {
    LLMC_ASSIGN_OR_RETURN(GgufFile gguf, GgufFile::open(path));
    return gguf_tokenizer(gguf);
  }
  LLMC_ASSIGN_OR_RETURN(auto tok, Llama2cTokenizer::from_file(path));
  return std::shared_ptr<const Tokenizer>(std::make_shared<Llama2cTokenizer>(std::move(tok)));
}

}  // namespace llmc
