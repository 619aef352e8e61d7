#include "formats/model_loader.h"

#include <filesystem>

#include "formats/base64.h"
#include "formats/llama2c_checkpoint.h"
#include "formats/llama2c_import.h"
#include "formats/mapped_file.h"
#include "formats/onnx_format.h"

namespace llmc {

namespace {
std::string extension(const std::string& path) {
  return std::filesystem::path(path).extension().string();
}
}  // namespace

Result<ModelFormat> detect_model_format(const std::string& path) {
  const std::string ext = extension(path);
  if (ext == ".onnx") return ModelFormat::kOnnx;
  if (ext == ".bin") return ModelFormat::kLlama2c;
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  return looks_like_llama2c_checkpoint(*file) ? ModelFormat::kLlama2c : ModelFormat::kOnnx;
}

Result<Model> load_model(const std::string& path, std::vector<std::string>* external_files) {
  LLMC_ASSIGN_OR_RETURN(auto format, detect_model_format(path));
  return format == ModelFormat::kLlama2c ? import_llama2c(path) : read_onnx(path, external_files);
}

void attach_tokenizer(Model& model, const Llama2cTokenizer& tokenizer) {
  model.set_metadata(kMetaTokenizer, base64_encode(tokenizer.serialized()));
}

Result<Llama2cTokenizer> model_tokenizer(const Model& model, const std::string& model_path,
                                         const std::string& override_path) {
  if (!override_path.empty()) return Llama2cTokenizer::from_file(override_path);
  const std::string* encoded = model.find_metadata(kMetaTokenizer);
  if (!encoded)
    return invalid_input(model_path, ": the model carries no tokenizer; pass --tokenizer FILE");
  auto bytes = base64_decode(*encoded);
  if (!bytes)
    return invalid_input(model_path, ": metadata '", kMetaTokenizer, "' is not valid base64");
  return Llama2cTokenizer::from_bytes(*bytes, model_path + " (" + kMetaTokenizer + ")");
}

Result<Llama2cTokenizer> load_tokenizer(const std::string& path) {
  if (extension(path) == ".onnx") {
    LLMC_ASSIGN_OR_RETURN(auto model, read_onnx(path));
    return model_tokenizer(model, path, "");
  }
  return Llama2cTokenizer::from_file(path);
}

}  // namespace llmc
