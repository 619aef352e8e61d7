// llmcompress quantize MODEL -o OUT --mode int8-dynamic|int8-static|fp16 [options] [--eval TEXT] [--json]
// Runs the quantisation pass (int8-static: with activation ranges calibrated on --calib DATA by
// --method; --smoothquant ALPHA: smooth-quant first, on the same calibration set), writes the
// artifact atomically, prints what each pass quantised and skipped (with reasons), bytes
// before/after and, with --eval, perplexity before/after and top-1 agreement measured with the runtime.
#include <algorithm>
#include <chrono>
#include <optional>
#include <cstdio>
#include <cstdlib>

#include "calibration/calibration_data.h"
#include "calibration/observers.h"
#include "formats/model_loader.h"
#include "formats/onnx_format.h"
#include "passes/registry.h"
#include "runtime/eval.h"
#include "tools/calibration_loader.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/model_session.h"

namespace llmc::cli {

namespace {
struct QuantizeArgs {
  std::string model, output, mode = "int8-dynamic", eval_text, tokenizer;
  std::string op_block_list;
  bool keep_io_types = true;
  std::string exclude, op_types, weight_type = "int8", format = "qoperator";
  std::string calib, method = "minmax", percentile, percentile_tails, smoothquant, activation_type = "uint8";
  int64_t calib_samples = 16, calib_seq_len = 128;
  uint64_t calib_seed = 0;
  bool per_tensor = false, json = false, external_data = false;
  int64_t eval_limit = 0, eval_ctx = 0;
  int threads = 0;
};

const char* pass_for_mode(const std::string& mode) {
  if (mode == "int8-dynamic") return "quantize-int8-dynamic";
  if (mode == "int8-static") return "quantize-int8-static";
  if (mode == "fp16") return "quantize-fp16";
  return nullptr;
}

// Checks the flag combinations before any file is read.
Status check_args(const QuantizeArgs& a) {
  const bool is_static = a.mode == "int8-static";
  if (is_static && a.calib.empty())
    return invalid_input("--mode int8-static needs --calib DATA (a text file, a token .npy, or .npy/.npz input tensors)");
  if (!a.smoothquant.empty() && a.calib.empty())
    return invalid_input("--smoothquant needs --calib DATA (a text file, a token .npy, or .npy/.npz input tensors)");
  if (!a.smoothquant.empty()) {
    char* end = nullptr;
    const double alpha = std::strtod(a.smoothquant.c_str(), &end);
    if (*end != '\0' || !(alpha >= 0 && alpha <= 1))
      return invalid_input("--smoothquant ALPHA must be a number in [0, 1], got '", a.smoothquant, "'");
  }
  if (!a.calib.empty() && !is_static && a.smoothquant.empty())
    return invalid_input("--calib is used by --mode int8-static and --smoothquant only");
  if (is_static) {
    if (a.weight_type != "int8") return invalid_input("--mode int8-static stores int8 symmetric weights; --weight-type is for int8-dynamic");
    if (a.format != "qoperator") return invalid_input("--mode int8-static writes QDQ; --format is for int8-dynamic");
    auto kind = calib::parse_observer_kind(a.method);
    if (!kind.is_ok()) return kind.status().with_context("--method");
    if ((!a.percentile.empty() || !a.percentile_tails.empty()) && *kind != calib::ObserverKind::kPercentile)
      return invalid_input("--percentile and --percentile-tails apply to --method percentile, not ", a.method);
  } else if (a.method != "minmax" || !a.percentile.empty() || !a.percentile_tails.empty() ||
             a.activation_type != "uint8") {
    return invalid_input("--method, --percentile, --percentile-tails and --activation-type apply to --mode int8-static");
  }
  if (a.mode == "fp16") {
    if (!a.smoothquant.empty()) return invalid_input("--smoothquant applies to the int8 modes");
    if (a.weight_type != "int8" || a.format != "qoperator" || a.per_tensor || !a.op_types.empty())
      return invalid_input("--weight-type, --format, --per-tensor and --op-types apply to the int8 modes");
  } else if (!a.op_block_list.empty() || !a.keep_io_types) {
    return invalid_input("--op-block-list and --keep-io-types apply to --mode fp16");
  }
  return Status::ok();
}

// The calibration set of --calib: text through the model's tokenizer (or --tokenizer), a token
// .npy, or .npy/.npz input tensors. Every error names the file.
Result<calib::CalibrationSet> load_calibration(const QuantizeArgs& a, const Model& model) {
  std::optional<Llama2cTokenizer> tokenizer;
  auto tok = model_tokenizer(model, a.model, a.tokenizer);
  if (tok.is_ok()) tokenizer = std::move(tok).value();
  else if (!a.tokenizer.empty()) return tok.status();
  calib::CalibrationOptions o;
  o.num_samples = a.calib_samples;
  o.seq_len = a.calib_seq_len;
  o.seed = a.calib_seed;
  auto set = load_calibration_file(model, a.calib, tokenizer ? &*tokenizer : nullptr, o);
  if (!set.is_ok()) {
    const Status& st = set.status();
    if (!tokenizer && st.message().find("needs a tokenizer") != std::string::npos)
      return invalid_input(st.message(), " (give one with --tokenizer FILE)");
    return st.message().find(a.calib) == std::string::npos ? st.with_context("--calib " + a.calib) : st;
  }
  if (set->empty()) return invalid_input("--calib ", a.calib, ": the calibration set is empty");
  return set;
}

struct PassRun {
  std::string pass;
  PassResult result;
};

// A pass failing on a calibration sample (wrong shapes for this model, say) names the file too.
Result<PassResult> run_pass(const char* name, Model& model, const PassOptions& options, PassContext& context,
                            const std::string& calib_path) {
  LLMC_ASSIGN_OR_RETURN(auto pass, make_pass(name));
  auto r = pass->run(model, options, context);
  if (!r.is_ok() && !calib_path.empty() && r.status().message().find("calibration sample") != std::string::npos)
    return r.status().with_context("--calib " + calib_path);
  return r;
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
  if (!pass_name) return invalid_input("unknown --mode '", a.mode, "' (available: int8-dynamic, int8-static, fp16)");
  LLMC_RETURN_IF_ERROR(check_args(a));
  const auto t0 = std::chrono::steady_clock::now();
  LLMC_ASSIGN_OR_RETURN(Model model, load_model(a.model));
  Model original = a.eval_text.empty() ? Model{} : model;  // shares weight bytes; no copy
  PassOptions options;
  if (a.mode == "int8-static") {
    options = {{"method", a.method}, {"activation-type", a.activation_type}};
    if (!a.percentile.empty()) options["percentile"] = a.percentile;
    if (!a.percentile_tails.empty()) options["percentile-tails"] = a.percentile_tails;
  } else if (a.mode == "fp16") {
    options = {{"keep-io-types", a.keep_io_types ? "1" : "0"}};
    if (!a.op_block_list.empty()) options["op-block-list"] = a.op_block_list;
  } else {
    options = {{"weight-type", a.weight_type}, {"format", a.format}};
  }
  if (a.mode != "fp16") {
    if (a.per_tensor) options["per-tensor"] = "1";
    if (!a.exclude.empty()) options["exclude"] = a.exclude;
    if (!a.op_types.empty()) options["op-types"] = a.op_types;
  } else if (!a.exclude.empty()) {
    options["node-block-list"] = a.exclude;  // fp16: --exclude names nodes kept in float32
  }
  calib::CalibrationSet calibration;
  if (!a.calib.empty()) {
    LLMC_ASSIGN_OR_RETURN(calibration, load_calibration(a, model));
  }
  PassContext context;
  context.model_path = a.model;
  context.threads = a.threads;
  if (!calibration.empty()) context.calibration = &calibration.samples;
  std::vector<PassRun> runs;
  if (!a.smoothquant.empty()) {  // same --exclude / --op-types as the quantisation
    PassOptions so{{"alpha", a.smoothquant}};
    if (!a.exclude.empty()) so["exclude"] = a.exclude;
    if (!a.op_types.empty()) so["op-types"] = a.op_types;
    LLMC_ASSIGN_OR_RETURN(PassResult sr, run_pass("smooth-quant", model, so, context, a.calib));
    runs.push_back({"smooth-quant", std::move(sr)});
  }
  LLMC_ASSIGN_OR_RETURN(PassResult r, run_pass(pass_name, model, options, context, a.calib));
  if (!r.changed) return invalid_input(a.model, ": nothing was quantised (", r.decisions.size(),
                                       " candidate nodes, all skipped); no output written");
  if (!runs.empty()) r.bytes_before = runs.front().result.bytes_before;
  runs.push_back({pass_name, r});
  std::string manifest = str_cat("{\"tool\":\"llmcompress ", LLMC_VERSION, "\",\"pass\":\"", pass_name, "\"");
  if (!a.smoothquant.empty()) manifest += str_cat(",\"smoothquant_alpha\":", a.smoothquant);
  if (a.mode == "int8-static") manifest += str_cat(",\"method\":", json_escape(a.method));
  if (!calibration.empty()) manifest += str_cat(",\"calibration\":", json_escape(calibration.source));
  model.set_metadata("llmcompress.manifest", manifest + str_cat(",\"source\":", json_escape(a.model), "}"));
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
    if (!calibration.empty()) j.field("calibration", calibration.source);
    j.key("nodes").begin_array();
    for (const auto& d : r.decisions)
      j.begin_object().field("node", d.node).field("op", d.op).field("action", d.action).field("detail", d.reason).end_object();
    j.end_array().key("warnings").begin_array();
    for (const auto& run : runs)
      for (const auto& w : run.result.warnings) j.value(w);
    j.end_array().key("passes").begin_array();
    for (const auto& run : runs) {
      j.begin_object().field("pass", run.pass).field("summary", run.result.summary).field("rewrites", run.result.rewrites);
      j.key("nodes").begin_array();
      for (const auto& d : run.result.decisions)
        j.begin_object().field("node", d.node).field("op", d.op).field("action", d.action).field("detail", d.reason).end_object();
      j.end_array().end_object();
    }
    j.end_array();
    if (ev)
      j.key("eval").begin_object().field("perplexity_before", ev->ppl_before).field("perplexity_after", ev->ppl_after)
          .field("top1_agreement", ev->top1).field("mean_kl", ev->kl).field("positions", ev->positions).end_object();
    j.end_object();
    std::printf("%s\n", j.str().c_str());
  } else {
    if (!calibration.empty()) std::printf("calibration: %s\n", calibration.source.c_str());
    for (const auto& run : runs) {
      std::printf("%s: %s\n", run.pass.c_str(), run.result.summary.c_str());
      for (const auto& d : run.result.decisions)
        std::printf("  %-10s %-8s %-48s %s\n", d.action.c_str(), d.op.c_str(), d.node.c_str(), d.reason.c_str());
    }
    std::printf("weights %.2f MB -> %.2f MB (%.3fx), %.2f s; wrote %s\n", r.bytes_before / 1e6, r.bytes_after / 1e6,
                double(r.bytes_after) / std::max<size_t>(1, r.bytes_before), seconds, a.output.c_str());
    if (ev)
      std::printf("perplexity %.4f -> %.4f (%+.2f%%), top-1 agreement %.4f, mean KL %.3g over %lld positions\n",
                  ev->ppl_before, ev->ppl_after, 100 * (ev->ppl_after / ev->ppl_before - 1), ev->top1, ev->kl,
                  (long long)ev->positions);
  }
  for (const auto& run : runs)
    for (const auto& w : run.result.warnings) std::fprintf(stderr, "llmcompress quantize: warning: %s\n", w.c_str());
  return Status::ok();
}
}  // namespace

void add_quantize_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantise a model's weights (and activations)");
  cmd->add_option("model", a->model, "ONNX model or llama2.c checkpoint")->required();
  cmd->add_option("-o,--output", a->output, "output .onnx")->required();
  cmd->add_option("--mode", a->mode, "int8-dynamic (MatMulInteger), int8-static (QDQ, needs --calib) or fp16")
      ->capture_default_str();
  cmd->add_option("--calib", a->calib, "calibration data: text file (model's tokenizer), token .npy, or .npy/.npz tensors");
  cmd->add_option("--method", a->method, "int8-static activation ranges: minmax, percentile, entropy or mse")
      ->capture_default_str();
  cmd->add_option("--percentile", a->percentile, "--method percentile: the percentile kept (default 99.99)");
  cmd->add_option("--percentile-tails", a->percentile_tails,
                  "--method percentile: abs (of |x|, range clipped to [min, max]; default, as ONNX Runtime) or two "
                  "(half the cut from each tail of x)");
  cmd->add_option("--activation-type", a->activation_type, "int8-static activations: uint8 (asymmetric) or int8 (symmetric)")
      ->capture_default_str();
  cmd->add_option("--calib-samples", a->calib_samples, "calibration windows (tensor files: at most this many samples)")
      ->capture_default_str();
  cmd->add_option("--calib-seq-len", a->calib_seq_len, "tokens per calibration window")->capture_default_str();
  cmd->add_option("--calib-seed", a->calib_seed, "seed for the calibration window offsets")->capture_default_str();
  cmd->add_option("--smoothquant", a->smoothquant, "run smooth-quant with this alpha in [0, 1] first (needs --calib)");
  cmd->add_option("--keep-io-types", a->keep_io_types, "fp16: keep float32 graph inputs/outputs (Casts at the boundary)")
      ->capture_default_str();
  cmd->add_option("--op-block-list", a->op_block_list,
                  "fp16: op types kept in float32 ('default' = ORT's list + softmax/normalisations; 'default,Op' extends it)");
  cmd->add_flag("--per-tensor", a->per_tensor, "one weight scale per tensor instead of per output channel");
  cmd->add_option("--weight-type", a->weight_type, "int8 (symmetric) or uint8 (asymmetric)")->capture_default_str();
  cmd->add_option("--exclude", a->exclude, "comma-separated node/weight names or regexes to keep in float");
  cmd->add_option("--op-types", a->op_types, "ops to quantise (default MatMul; MatMul,Gemm)");
  cmd->add_option("--format", a->format, "qoperator (MatMulInteger, as ONNX Runtime) or contrib (DynamicQuantizeMatMul)")
      ->capture_default_str();
  cmd->add_option("--eval", a->eval_text, "text file: perplexity before/after and top-1 agreement");
  cmd->add_option("--eval-limit", a->eval_limit, "score only the first N tokens of --eval");
  cmd->add_option("--eval-ctx", a->eval_ctx, "window length for --eval (default: model maximum)");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer for --eval and text --calib (default: the one inside the model)");
  cmd->add_option("--threads", a->threads, "threads for calibration and --eval (0 = all cores)");
  cmd->add_flag("--external-data", a->external_data, "weights in OUTPUT.data");
  cmd->add_flag("--json", a->json, "print the summary as JSON");
  cmd->callback([a, &exit_code] { exit_code = report("quantize", run_quantize(*a)); });
}

}  // namespace llmc::cli
