// llmcompress convert IN -o OUT: ONNX round trip, llama2.c or GGUF import, written atomically;
// --keep-quant keeps a GGUF's Q4_0 / Q4_1 / Q8_0 weights as MatMulNBits.
#include <cstdio>

#include "formats/model_loader.h"
#include "formats/onnx_format.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace llmc::cli {

namespace {
struct ConvertArgs {
  std::string input;
  std::string output;
  std::string tokenizer;
  bool external_data = false;
  bool keep_quant = false;
};

Status run_convert(const ConvertArgs& a) {
  LoadOptions load;
  KeepQuantReport kept;
  load.keep_quant = a.keep_quant;
  load.keep_quant_report = &kept;
  LLMC_ASSIGN_OR_RETURN(Model model, load_model(a.input, load));
  if (!a.tokenizer.empty()) {
    LLMC_ASSIGN_OR_RETURN(auto tok, load_tokenizer(a.tokenizer));
    attach_tokenizer(model, *tok);
  }
  OnnxWriteOptions options;
  options.external_data = a.external_data;
  LLMC_RETURN_IF_ERROR(write_onnx(model, a.output, options));
  size_t bytes = 0;
  for (const auto& t : model.graph.initializers) bytes += t.nbytes();
  std::printf("wrote %s: %zu nodes, %zu initializers, %.2f MB of weights%s\n", a.output.c_str(),
              model.graph.nodes.size(), model.graph.initializers.size(), bytes / 1e6,
              a.external_data || bytes > kInlineWeightLimit ? " (external data beside it)" : "");
  if (a.keep_quant) std::printf("%s\n", kept.summary().c_str());
  return Status::ok();
}
}  // namespace

void add_convert_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand(
      "convert", "Read an ONNX model, llama2.c checkpoint or GGUF file and write it as ONNX");
  cmd->add_option("input", args->input, "ONNX model, llama2.c checkpoint (.bin) or GGUF file (.gguf)")->required();
  cmd->add_option("-o,--output", args->output, "output .onnx path")->required();
  cmd->add_option("--tokenizer", args->tokenizer,
                  "tokenizer to carry inside the model (metadata_props): llama2.c tokenizer.bin, "
                  "Hugging Face tokenizer.json, or a model file carrying one");
  cmd->add_flag("--external-data", args->external_data,
                "store weights in OUTPUT.data beside the model (automatic above 2 GB)");
  cmd->add_flag("--keep-quant", args->keep_quant,
                "GGUF input: keep Q4_0 / Q4_1 / Q8_0 weights as com.microsoft MatMulNBits (block 32) "
                "instead of dequantising them to float32; other types are dequantised");
  cmd->callback([args, &exit_code] { exit_code = report("convert", run_convert(*args)); });
}

}  // namespace llmc::cli
