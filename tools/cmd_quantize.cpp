// llmcompress quantize MODEL -o OUT --mode int8-dynamic [options] [--eval TEXT] [--json]
// Runs the quantisation pass, writes the artifact atomically, prints what was quantised and
// skipped (with reasons), bytes before/after and, with --eval, perplexity before/after and
// top-1 agreement measured with the runtime.
#include <algorithm>
#include <chrono>
#include <optional>
#include <cstdio>

#include "formats/model_loader.h"
#include "formats/onnx_format.h"
#include "passes/registry.h"
#include "runtime/eval.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/model_session.h"

namespace llmc::cli {

namespace {
struct QuantizeArgs {
  std::string model, output, mode = "int8-dynamic", eval_text, tokenizer;
  std::string exclude, op_types, weight_type = "int8", format = "qoperator";
  bool per_tensor = false, json = false, external_data = false;
  int64_t eval_limit = 0, eval_ctx = 0;
  int threads = 0;
};

const char* pass_for_mode(const std::string& mode) {
  if (mode == "int8-dynamic") return "quantize-int8-dynamic";
  return nullptr;
}

struct EvalNumbers {
  double ppl_before = 0, ppl_after = 0, top1 = 0, kl = 0;
  int64_t positions = 0;
};

Result<EvalNumbers> evaluate(const QuantizeArgs& a, const Model& before, const Model& after) {
  rt::SessionOptions so;
  so.threads = a.threads;
  auto base_model = std::make_shared<const Model>(before);
  auto quant_model = std::make_shared<const Model>(after);
  LLMC_ASSIGN_OR_RETURN(auto s0, rt::Session::create(base_model, so));
  LLMC_ASSIGN_OR_RETURN(auto s1, rt::Session::create(quant_model, so));
  LLMC_ASSIGN_OR_RETURN(auto d0, rt::Decoder::create(std::shared_ptr<rt::Session>(std::move(s0))));
  LLMC_ASSIGN_OR_RETURN(auto d1, rt::Decoder::create(std::shared_ptr<rt::Session>(std::move(s1))));
  LoadedModel lm;
  lm.model = base_model;
  lm.path = a.model;
  LLMC_ASSIGN_OR_RETURN(auto tokens, load_tokens(lm, a.eval_text, "", a.tokenizer));
  rt::WindowOptions w;
  w.ctx = a.eval_ctx > 0 ? a.eval_ctx : max_sequence_length(before);
  if (w.ctx <= 0) return invalid_input("the model does not state its maximum sequence length: pass --eval-ctx");
  w.limit = a.eval_limit;
  LLMC_ASSIGN_OR_RETURN(auto r, rt::compare_models(*d0, *d1, tokens, w));
  return EvalNumbers{r.base_ppl.perplexity(), r.other_ppl.perplexity(), r.top1_agreement, r.mean_kl, r.positions};
}

Status run_quantize(const QuantizeArgs& a) {
  const char* pass_name = pass_for_mode(a.mode);
  if (!pass_name) return invalid_input("unknown --mode '", a.mode, "' (available: int8-dynamic)");
  const auto t0 = std::chrono::steady_clock::now();
  LLMC_ASSIGN_OR_RETURN(Model model, load_model(a.model));
  Model original = a.eval_text.empty() ? Model{} : model;  // shares weight bytes; no copy
  PassOptions options{{"weight-type", a.weight_type}, {"format", a.format}};
  if (a.per_tensor) options["per-tensor"] = "1";
  if (!a.exclude.empty()) options["exclude"] = a.exclude;
  if (!a.op_types.empty()) options["op-types"] = a.op_types;
  LLMC_ASSIGN_OR_RETURN(auto pass, make_pass(pass_name));
  PassContext context;
  context.model_path = a.model;
  context.threads = a.threads;
  LLMC_ASSIGN_OR_RETURN(PassResult r, pass->run(model, options, context));
  if (!r.changed) return invalid_input(a.model, ": nothing was quantised (", r.decisions.size(),
                                       " candidate nodes, all skipped); no output written");
  model.set_metadata("llmcompress.manifest",
                     str_cat("{\"tool\":\"llmcompress ", LLMC_VERSION, "\",\"pass\":\"", pass_name, "\",\"source\":",
                             json_escape(a.model), "}"));
  OnnxWriteOptions wo;
  wo.external_data = a.external_data;
  LLMC_RETURN_IF_ERROR(write_onnx(model, a.output, wo));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::optional<EvalNumbers> ev;
  if (!a.eval_text.empty()) {
    LLMC_ASSIGN_OR_RETURN(auto e, evaluate(a, original, model));
    ev = e;
  }
  int64_t quantized = 0;
  for (const auto& d : r.decisions) quantized += d.action == "quantized";
  if (a.json) {
    Json j;
    j.begin_object().field("model", a.model).field("output", a.output).field("mode", a.mode)
        .field("pass", pass_name).field("seconds", seconds).field("nodes_quantized", quantized)
        .field("nodes_skipped", static_cast<int64_t>(r.decisions.size()) - quantized)
        .field("bytes_before", r.bytes_before).field("bytes_after", r.bytes_after);
    j.key("nodes").begin_array();
    for (const auto& d : r.decisions)
      j.begin_object().field("node", d.node).field("op", d.op).field("action", d.action).field("detail", d.reason).end_object();
    j.end_array().key("warnings").begin_array();
    for (const auto& w : r.warnings) j.value(w);
    j.end_array();
    if (ev)
      j.key("eval").begin_object().field("perplexity_before", ev->ppl_before).field("perplexity_after", ev->ppl_after)
          .field("top1_agreement", ev->top1).field("mean_kl", ev->kl).field("positions", ev->positions).end_object();
    j.end_object();
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("%s: %s\n", pass_name, r.summary.c_str());
    for (const auto& d : r.decisions)
      std::printf("  %-10s %-8s %-48s %s\n", d.action.c_str(), d.op.c_str(), d.node.c_str(), d.reason.c_str());
    std::printf("weights %.2f MB -> %.2f MB (%.3fx), %.2f s; wrote %s\n", r.bytes_before / 1e6, r.bytes_after / 1e6,
                double(r.bytes_after) / std::max<size_t>(1, r.bytes_before), seconds, a.output.c_str());
    if (ev)
      std::printf("perplexity %.4f -> %.4f (%+.2f%%), top-1 agreement %.4f, mean KL %.3g over %lld positions\n",
                  ev->ppl_before, ev->ppl_after, 100 * (ev->ppl_after / ev->ppl_before - 1), ev->top1, ev->kl,
                  (long long)ev->positions);
  }
  for (const auto& w : r.warnings) std::fprintf(stderr, "llmcompress quantize: warning: %s\n", w.c_str());
  return Status::ok();
}
}  // namespace

void add_quantize_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantise a model's weights (and activations)");
  cmd->add_option("model", a->model, "ONNX model or llama2.c checkpoint")->required();
  cmd->add_option("-o,--output", a->output, "output .onnx")->required();
  cmd->add_option("--mode", a->mode, "int8-dynamic")->capture_default_str();
  cmd->add_flag("--per-tensor", a->per_tensor, "one weight scale per tensor instead of per output channel");
  cmd->add_option("--weight-type", a->weight_type, "int8 (symmetric) or uint8 (asymmetric)")->capture_default_str();
  cmd->add_option("--exclude", a->exclude, "comma-separated node/weight names or regexes to keep in float");
  cmd->add_option("--op-types", a->op_types, "ops to quantise (default MatMul; MatMul,Gemm)");
  cmd->add_option("--format", a->format, "qoperator (MatMulInteger, as ONNX Runtime) or contrib (DynamicQuantizeMatMul)")
      ->capture_default_str();
  cmd->add_option("--eval", a->eval_text, "text file: perplexity before/after and top-1 agreement");
  cmd->add_option("--eval-limit", a->eval_limit, "score only the first N tokens of --eval");
  cmd->add_option("--eval-ctx", a->eval_ctx, "window length for --eval (default: model maximum)");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer for --eval (default: the one inside the model)");
  cmd->add_option("--threads", a->threads, "threads for --eval (0 = all cores)");
  cmd->add_flag("--external-data", a->external_data, "weights in OUTPUT.data");
  cmd->add_flag("--json", a->json, "print the summary as JSON");
  cmd->callback([a, &exit_code] { exit_code = report("quantize", run_quantize(*a)); });
}

}  // namespace llmc::cli
