#include "formats/hf_import.h"

#include <filesystem>

namespace llmc {

namespace fs = std::filesystem;

bool is_hf_checkpoint_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::is_regular_file(fs::path(path) / "config.json", ec);
}

Result<Model> import_hf_checkpoint(const std::string& dir) {
  if (!is_hf_checkpoint_dir(dir))
    return invalid_input(dir, ": not a Hugging Face checkpoint directory (no config.json)");
  LLMC_ASSIGN_OR_RETURN(HfConfig config, HfConfig::read((fs::path(dir) / "config.json").string()));
  LLMC_ASSIGN_OR_RETURN(std::string arch, config.architecture());
  if (arch == "LlamaForCausalLM" || arch == "MistralForCausalLM" || arch == "Qwen2ForCausalLM")
    return hf_llama_to_model(config, dir);
  if (arch == "GPT2LMHeadModel") return hf_gpt2_to_model(config, dir);
  if (arch == "BertModel") return hf_bert_to_model(config, dir);
  return unsupported(config.path(), ": architecture '", arch,
                     "' is not supported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel, "
                     "BertModel are)");
}

}  // namespace llmc
