// llmcompress synth --preset llama-110m -o model.onnx [--seed S] [shape overrides]
#include <cstdio>

#include "formats/llama_synth.h"
#include "formats/onnx_format.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace llmc::cli {

namespace {
struct SynthArgs {
  std::string preset = "llama-110m";
  std::string output;
  uint64_t seed = 0;
  int dim = 0, hidden = 0, layers = 0, heads = 0, kv_heads = 0, vocab = 0, seq = 0;
  bool external_data = false;
};

Status run_synth(const SynthArgs& a) {
  LLMC_ASSIGN_OR_RETURN(Llama2cConfig c, synth_preset(a.preset));
  if (a.dim) c.dim = a.dim;
  if (a.hidden) c.hidden_dim = a.hidden;
  if (a.layers) c.n_layers = a.layers;
  if (a.heads) c.n_heads = a.heads;
  if (a.kv_heads) c.n_kv_heads = a.kv_heads;
  else if (a.heads) c.n_kv_heads = a.heads;
  if (a.vocab) c.vocab_size = a.vocab;
  if (a.seq) c.seq_len = a.seq;
  LLMC_ASSIGN_OR_RETURN(Model m, synth_llama(c, a.seed));
  OnnxWriteOptions o;
  o.external_data = a.external_data;
  LLMC_RETURN_IF_ERROR(write_onnx(m, a.output, o));
  size_t bytes = 0;
  for (const auto& t : m.graph.initializers) bytes += t.nbytes();
  std::printf("wrote %s: dim %d, hidden %d, %d layers, %d heads (%d kv), vocab %d, seq %d, %.1f MB of weights\n",
              a.output.c_str(), c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len,
              bytes / 1e6);
  return Status::ok();
}
}  // namespace

void add_synth_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<SynthArgs>();
  CLI::App* cmd = app.add_subcommand("synth", "Write a seeded random Llama-shaped model (for speed work)");
  std::string names;
  for (const auto& p : synth_presets()) names += (names.empty() ? "" : ", ") + p.name;
  cmd->add_option("--preset", a->preset, "one of: " + names)->capture_default_str();
  cmd->add_option("-o,--output", a->output, "output .onnx")->required();
  cmd->add_option("--seed", a->seed, "weight seed")->capture_default_str();
  cmd->add_option("--dim", a->dim, "override the model width");
  cmd->add_option("--hidden", a->hidden, "override the FFN width");
  cmd->add_option("--layers", a->layers, "override the layer count");
  cmd->add_option("--heads", a->heads, "override the head count");
  cmd->add_option("--kv-heads", a->kv_heads, "override the KV head count");
  cmd->add_option("--vocab", a->vocab, "override the vocabulary size");
  cmd->add_option("--seq", a->seq, "override the maximum sequence length");
  cmd->add_flag("--external-data", a->external_data, "weights in OUTPUT.data");
  cmd->callback([a, &exit_code] { exit_code = report("synth", run_synth(*a)); });
}

}  // namespace llmc::cli
