// llmcompress tokenize TOKENIZER --text "..." | --file TEXT -o ids.npy
#include <cstdio>

#include "formats/mapped_file.h"
#include "formats/model_loader.h"
#include "formats/npy.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace llmc::cli {

namespace {
struct TokenizeArgs {
  std::string tokenizer;
  std::string text;
  std::string file;
  std::string output;
  bool json = false;
  bool no_bos = false;
};

Status run_tokenize(const TokenizeArgs& a) {
  if (a.text.empty() == a.file.empty())
    return invalid_input("give exactly one of --text or --file");
  LLMC_ASSIGN_OR_RETURN(auto tok, load_tokenizer(a.tokenizer));
  std::vector<int32_t> ids;
  if (!a.file.empty()) {
    LLMC_ASSIGN_OR_RETURN(auto f, MappedFile::open(a.file));
    ids = tok->encode_corpus(std::string(reinterpret_cast<const char*>(f->data()), f->size()));
    if (ids.empty()) return invalid_input(a.file, ": no text to tokenize");
  } else {
    ids = tok->encode(a.text, !a.no_bos && tok->adds_bos(), !a.no_bos && tok->adds_eos());
  }
  if (!a.output.empty()) {
    auto t = Tensor::from_vector("ids", DType::kI32, {static_cast<int64_t>(ids.size())}, ids);
    LLMC_RETURN_IF_ERROR(write_npy(a.output, t));
  }
  if (a.json) {
    Json j;
    j.begin_object().field("count", ids.size());
    if (!a.output.empty()) j.field("output", a.output);
    if (a.output.empty()) {
      j.key("ids").begin_array();
      for (int32_t id : ids) j.value(static_cast<int64_t>(id));
      j.end_array();
    }
    j.end_object();
    std::printf("%s\n", j.str().c_str());
  } else if (!a.output.empty()) {
    std::printf("wrote %zu tokens to %s\n", ids.size(), a.output.c_str());
  } else {
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
    std::printf("\n");
  }
  return Status::ok();
}
}  // namespace

void add_tokenize_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Encode text with a model's tokenizer");
  cmd->add_option("tokenizer", args->tokenizer,
                  "llama2.c tokenizer.bin, tokenizer.json, or a model (.onnx, .gguf) carrying one")->required();
  cmd->add_option("--text", args->text, "text to encode (printed as ids, BOS first when the model adds one, and EOS last when it wraps inputs as BERT does)");
  cmd->add_option("--file", args->file,
                  "text file, encoded as evaluation reads it (llama2.c: each non-empty line with BOS)");
  cmd->add_option("-o,--output", args->output, "write the ids as a 1-D int32 .npy");
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->add_flag("--no-bos", args->no_bos, "do not put BOS (nor a wrapping EOS) around --text");
  cmd->callback([args, &exit_code] { exit_code = report("tokenize", run_tokenize(*args)); });
}

}  // namespace llmc::cli
