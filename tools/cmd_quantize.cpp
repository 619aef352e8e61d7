// llmcompress quantize MODEL -o OUT --mode int8-dynamic|int8-static|fp16|int4 [options] [--eval TEXT] [--json]
// Maps its flags onto a recipe (smooth-quant first with --smoothquant ALPHA, or awq-scale with
// --mode int4 --method awq, then the mode's pass) and runs it like `pipeline` does: same
// artifact bytes as the equivalent recipe, same summary, --json and --eval. Prints what each
// pass quantised and skipped (with reasons).
#include <cstdio>

#include "calibration/observers.h"
#include "passes/registry.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/pipeline_command.h"

namespace llmc::cli {

namespace {
struct QuantizeArgs {
  std::string model, mode = "int8-dynamic";
  std::string op_block_list;
  bool keep_io_types = true;
  std::string exclude, op_types, weight_type = "int8", format = "qoperator";
  std::string method, percentile, percentile_tails, smoothquant, activation_type = "uint8";
  bool per_tensor = false, reduce_range = false;
  // --mode int4
  std::string bits, block_size, accuracy_level, lm_head, layer_bits;
  bool symmetric = false, act_order = false;
  PipelineFlags flags;
};

const char* pass_for_mode(const std::string& mode) {
  if (mode == "int8-dynamic") return "quantize-int8-dynamic";
  if (mode == "int8-static") return "quantize-int8-static";
  if (mode == "fp16") return "quantize-fp16";
  if (mode == "int4") return "quantize-int4";
  return nullptr;
}

// --mode int4's flag combinations.
Status check_int4_args(const QuantizeArgs& a) {
  const std::string& m = a.method;
  if (m != "rtn" && m != "gptq" && m != "awq")
    return invalid_input("--mode int4 --method is rtn, gptq or awq, not '", m, "'");
  if (m == "rtn" && !a.flags.calib.empty()) return invalid_input("--calib is used by --method gptq and awq, not rtn");
  if (m != "rtn" && a.flags.calib.empty())
    return invalid_input("--method ", m, " needs --calib DATA (a text file, a token .npy, or .npy/.npz input tensors)");
  if (a.act_order && m != "gptq") return invalid_input("--act-order applies to --method gptq");
  if (!a.smoothquant.empty()) return invalid_input("--smoothquant applies to the int8 modes");
  if (a.weight_type != "int8" || a.format != "qoperator" || a.per_tensor || a.reduce_range || !a.op_types.empty() ||
      !a.percentile.empty() || !a.percentile_tails.empty() || a.activation_type != "uint8")
    return invalid_input("--weight-type, --format, --per-tensor, --reduce-range, --op-types and the int8-static flags "
                         "do not apply to --mode int4");
  if (!a.op_block_list.empty() || !a.keep_io_types)
    return invalid_input("--op-block-list and --keep-io-types apply to --mode fp16");
  return Status::ok();
}

// Checks the flag combinations before any file is read.
Status check_args(const QuantizeArgs& a) {
  const bool int4_flags = !a.bits.empty() || !a.block_size.empty() || !a.accuracy_level.empty() || !a.lm_head.empty() ||
                          !a.layer_bits.empty() || a.symmetric || a.act_order;
  if (a.mode == "int4") return check_int4_args(a);
  if (int4_flags)
    return invalid_input("--bits, --block-size, --symmetric, --accuracy-level, --lm-head, --layer-bits and --act-order "
                         "apply to --mode int4");
  const bool is_static = a.mode == "int8-static";
  const std::string& calib = a.flags.calib;
  if (is_static && calib.empty())
    return invalid_input("--mode int8-static needs --calib DATA (a text file, a token .npy, or .npy/.npz input tensors)");
  if (!a.smoothquant.empty() && calib.empty())
    return invalid_input("--smoothquant needs --calib DATA (a text file, a token .npy, or .npy/.npz input tensors)");
  if (!calib.empty() && !is_static && a.smoothquant.empty())
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
    if (a.weight_type != "int8" || a.format != "qoperator" || a.per_tensor || a.reduce_range || !a.op_types.empty())
      return invalid_input("--weight-type, --format, --per-tensor, --reduce-range and --op-types apply to the int8 modes");
  } else if (!a.op_block_list.empty() || !a.keep_io_types) {
    return invalid_input("--op-block-list and --keep-io-types apply to --mode fp16");
  }
  return Status::ok();
}

// --mode int4: quantize-int4 (rtn), quantize-int4-gptq, or awq-scale then quantize-int4.
Status run_int4(const QuantizeArgs& a) {
  PassOptions format;
  if (!a.bits.empty()) format["bits"] = a.bits;
  if (!a.block_size.empty()) format["block-size"] = a.block_size;
  if (a.symmetric) format["symmetric"] = "true";
  if (!a.exclude.empty()) format["exclude"] = a.exclude;
  if (!a.lm_head.empty()) format["lm-head"] = a.lm_head;
  if (!a.layer_bits.empty()) format["layer-bits"] = a.layer_bits;
  PassOptions quant = format;
  if (!a.accuracy_level.empty()) quant["accuracy-level"] = a.accuracy_level;
  Recipe recipe;
  recipe.input = a.model;
  if (a.method == "awq") recipe.steps.push_back({"awq-scale", format, "--method awq"});
  if (a.method == "gptq") {
    if (a.act_order) quant["act-order"] = "true";
    recipe.steps.push_back({"quantize-int4-gptq", quant, "--mode int4 --method gptq"});
  } else {
    recipe.steps.push_back({"quantize-int4", quant, "--mode int4"});
  }
  recipe.option_where.resize(recipe.steps.size());
  apply_pipeline_flags(a.flags, recipe);
  return run_recipe(recipe, a.flags, /*require_change=*/true);
}

Status run_quantize(const QuantizeArgs& a_in) {
  QuantizeArgs a = a_in;
  if (a.method.empty()) a.method = a.mode == "int4" ? "rtn" : "minmax";
  const char* pass_name = pass_for_mode(a.mode);
  if (!pass_name) return invalid_input("unknown --mode '", a.mode, "' (available: int8-dynamic, int8-static, fp16, int4)");
  LLMC_RETURN_IF_ERROR(check_args(a));
  PassOptions options;
  if (a.mode == "int4") return run_int4(a);
  if (a.mode == "int8-static") {
    options = {{"method", a.method}, {"activation-type", a.activation_type}};
    if (!a.percentile.empty()) options["percentile"] = a.percentile;
    if (!a.percentile_tails.empty()) options["percentile-tails"] = a.percentile_tails;
  } else if (a.mode == "fp16") {
    options = {{"keep-io-types", a.keep_io_types ? "true" : "false"}};
    if (!a.op_block_list.empty()) options["op-block-list"] = a.op_block_list;
  } else {
    options = {{"weight-type", a.weight_type}, {"format", a.format}};
  }
  if (a.mode != "fp16") {
    if (a.per_tensor) options["per-tensor"] = "true";
    if (a.reduce_range) options["reduce-range"] = "true";
    if (!a.exclude.empty()) options["exclude"] = a.exclude;
    if (!a.op_types.empty()) options["op-types"] = a.op_types;
  } else if (!a.exclude.empty()) {
    options["node-block-list"] = a.exclude;  // fp16: --exclude names nodes kept in float32
  }
  Recipe recipe;
  recipe.input = a.model;
  if (!a.smoothquant.empty()) {  // same --exclude / --op-types as the quantisation
    PassStep sq{"smooth-quant", {{"alpha", a.smoothquant}}, "--smoothquant"};
    if (!a.exclude.empty()) sq.options["exclude"] = a.exclude;
    if (!a.op_types.empty()) sq.options["op-types"] = a.op_types;
    recipe.steps.push_back(sq);
  }
  recipe.steps.push_back({pass_name, options, "--mode " + a.mode});
  recipe.option_where.resize(recipe.steps.size());
  apply_pipeline_flags(a.flags, recipe);
  return run_recipe(recipe, a.flags, /*require_change=*/true);
}
}  // namespace

std::vector<PassInfo> quantize_passes() {
  std::vector<PassInfo> out;
  for (auto& p : pass_catalog())
    if (p.name == "smooth-quant" || p.name == "awq-scale" || p.name.rfind("quantize-", 0) == 0) out.push_back(std::move(p));
  return out;
}

void add_quantize_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantise a model's weights (and activations)");
  cmd->add_option("model", a->model, "ONNX model, llama2.c checkpoint or GGUF file")->required();
  cmd->add_option("--mode", a->mode,
                  "int8-dynamic (MatMulInteger), int8-static (QDQ, needs --calib), fp16, or int4 (weight-only "
                  "MatMulNBits)")
      ->capture_default_str();
  cmd->add_option("--method", a->method,
                  "int8-static activation ranges: minmax (default), percentile, entropy or mse; int4: rtn (default), "
                  "gptq or awq (both need --calib)");
  cmd->add_option("--bits", a->bits, "int4: 4 (default) or 8 bits per weight");
  cmd->add_option("--block-size", a->block_size, "int4: inputs per scale block, a power of two >= 16 (default 32)");
  cmd->add_flag("--symmetric", a->symmetric, "int4: no zero points (default asymmetric)");
  cmd->add_flag("--act-order", a->act_order, "int4 gptq: sweep inputs by decreasing activation energy");
  cmd->add_option("--accuracy-level", a->accuracy_level,
                  "int4: MatMulNBits accuracy_level, 4 (default: int8 activations, fast) or 0 (float products)");
  cmd->add_option("--lm-head", a->lm_head, "int4: bits of the LM head, 8 (default), 4 or float");
  cmd->add_option("--layer-bits", a->layer_bits,
                  "int4: per-layer bits, 'regex=4|8|float' pairs, comma-separated (regexes match whole node or weight "
                  "names)");
  cmd->add_option("--percentile", a->percentile, "--method percentile: the percentile kept (default 99.99)");
  cmd->add_option("--percentile-tails", a->percentile_tails,
                  "--method percentile: abs (of |x|, range clipped to [min, max]; default, as ONNX Runtime) or two "
                  "(half the cut from each tail of x)");
  cmd->add_option("--activation-type", a->activation_type, "int8-static activations: uint8 (asymmetric) or int8 (symmetric)")
      ->capture_default_str();
  cmd->add_option("--smoothquant", a->smoothquant, "run smooth-quant with this alpha in [0, 1] first (needs --calib)");
  cmd->add_option("--keep-io-types", a->keep_io_types, "fp16: keep float32 graph inputs/outputs (Casts at the boundary)")
      ->capture_default_str();
  cmd->add_option("--op-block-list", a->op_block_list,
                  "fp16: op types kept in float32 ('default' = ORT's list + softmax/normalisations; 'default,Op' extends it)");
  cmd->add_flag("--per-tensor", a->per_tensor, "one weight scale per tensor instead of per output channel");
  cmd->add_flag("--reduce-range", a->reduce_range,
                "7-bit weights, as ONNX Runtime's reduce_range: its int8 kernels saturate on CPUs without VNNI otherwise");
  cmd->add_option("--weight-type", a->weight_type, "int8 (symmetric) or uint8 (asymmetric)")->capture_default_str();
  cmd->add_option("--exclude", a->exclude, "comma-separated node/weight names or regexes to keep in float");
  cmd->add_option("--op-types", a->op_types, "ops to quantise (default MatMul; MatMul,Gemm)");
  cmd->add_option("--format", a->format, "qoperator (MatMulInteger, as ONNX Runtime) or contrib (DynamicQuantizeMatMul)")
      ->capture_default_str();
  add_pipeline_flags(cmd, a->flags);
  cmd->footer("The passes behind --mode and their options (also usable in recipes, see `llmcompress pipeline`):\n" +
              format_pass_help(quantize_passes()));
  cmd->callback([a, &exit_code] { exit_code = report("quantize", run_quantize(*a)); });
}

}  // namespace llmc::cli
