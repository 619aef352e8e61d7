#include "tools/pipeline.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <thread>

#include "calibration/activation_statistics.h"
#include "formats/model_loader.h"
#include "formats/onnx_format.h"
#include "passes/registry.h"
#include "runtime/bench.h"
#include "runtime/eval.h"
#include "tools/calibration_loader.h"
#include "tools/cli_common.h"
#include "tools/file_hash.h"
#include "tools/model_session.h"
#include "tools/progress.h"

namespace llmc::cli {

namespace fs = std::filesystem;

namespace {

std::string file_name(const std::string& p) { return fs::path(p).filename().string(); }

// The calibration set of the recipe: text through the model's tokenizer (or the recipe's), a
// token .npy, or .npy/.npz input tensors. Every error names the file.
Result<calib::CalibrationSet> load_calibration(const CalibrationSpec& c, const Model& model, const std::string& model_path,
                                               const std::string& tokenizer_path) {
  std::shared_ptr<const Tokenizer> tokenizer;
  auto tok = model_tokenizer(model, model_path, tokenizer_path);
  if (tok.is_ok()) tokenizer = std::move(tok).value();
  else if (!tokenizer_path.empty()) return tok.status();
  calib::CalibrationOptions o;
  o.num_samples = c.samples;
  o.seq_len = c.seq_len;
  o.seed = c.seed;
  auto set = load_calibration_file(model, c.data, tokenizer.get(), o);
  if (!set.is_ok()) {
    const Status& st = set.status();
    if (!tokenizer && st.message().find("needs a tokenizer") != std::string::npos)
      return invalid_input(st.message(), " (give one with --tokenizer FILE)");
    return st.message().find(c.data) == std::string::npos ? st.with_context("--calib " + c.data) : st;
  }
  if (set->empty()) return invalid_input("--calib ", c.data, ": the calibration set is empty");
  // The manifest names files without their folders (same bytes wherever the recipe runs).
  const size_t at = set->source.find(c.data);
  if (at != std::string::npos) set->source.replace(at, c.data.size(), file_name(c.data));
  return set;
}

Result<rt::Decoder*> keep_decoder(std::vector<std::unique_ptr<rt::Decoder>>& keep, std::shared_ptr<const Model> model,
                                  const rt::SessionOptions& so) {
  rt::SessionOptions limited = so;
  LLMC_ASSIGN_OR_RETURN(limited.limits, memory_limits_from_env());
  LLMC_ASSIGN_OR_RETURN(auto s, rt::Session::create(std::move(model), limited));
  LLMC_ASSIGN_OR_RETURN(auto d, rt::Decoder::create(std::shared_ptr<rt::Session>(std::move(s))));
  keep.push_back(std::move(d));
  return keep.back().get();
}

// The eval tokens and windows, prepared before any step runs: a tokenizer that is missing or a
// window the model cannot take fails in seconds, not after hours of passes.
struct EvalPlan {
  std::vector<int32_t> tokens;
  rt::WindowOptions windows;
};

Result<EvalPlan> plan_eval(const EvalSpec& e, const std::string& model_path, const std::string& tokenizer,
                           std::shared_ptr<const Model> model) {
  EvalPlan plan;
  LoadedModel lm;
  lm.model = std::move(model);
  lm.path = model_path;
  LLMC_ASSIGN_OR_RETURN(plan.tokens, load_tokens(lm, e.text, "", tokenizer));
  const int64_t longest = max_sequence_length(*lm.model);
  plan.windows.ctx = e.ctx > 0 ? e.ctx : longest;
  if (plan.windows.ctx <= 0) return invalid_input("the model does not state its maximum sequence length: give eval context");
  if (longest > 0 && plan.windows.ctx > longest)
    return invalid_input("context ", plan.windows.ctx, " is longer than the model's maximum sequence length ", longest);
  plan.windows.limit = e.limit;
  LLMC_RETURN_IF_ERROR(rt::plan_windows(static_cast<int64_t>(plan.tokens.size()), plan.windows).status());
  return plan;
}

Result<EvalMetrics> evaluate(EvalPlan& plan, std::shared_ptr<const Model> before, std::shared_ptr<const Model> after,
                             int threads, bool quiet) {
  std::vector<std::unique_ptr<rt::Decoder>> keep;
  rt::SessionOptions so;
  so.threads = threads;
  LLMC_ASSIGN_OR_RETURN(rt::Decoder * d0, keep_decoder(keep, before, so));
  LLMC_ASSIGN_OR_RETURN(rt::Decoder * d1, keep_decoder(keep, after, so));
  Progress progress("eval: windows", !quiet);
  plan.windows.progress = [&](size_t done, size_t total) { progress.update(done, total); };
  LLMC_ASSIGN_OR_RETURN(auto r, rt::compare_models(*d0, *d1, plan.tokens, plan.windows));
  plan.windows.progress = nullptr;
  return EvalMetrics{r.base_ppl.perplexity(), r.other_ppl.perplexity(), r.top1_agreement, r.mean_kl,
                     r.max_abs_logit_error, r.positions};
}

// Paired decode timing of the input and the artifact in one process on one pool.
Status bench(const BenchSpec& b, std::shared_ptr<const Model> before, std::shared_ptr<const Model> after, int threads,
             PipelineResult& r) {
  std::vector<std::unique_ptr<rt::Decoder>> keep;
  rt::SessionOptions so;
  so.pool = std::make_shared<rt::ThreadPool>(threads);
  LLMC_ASSIGN_OR_RETURN(rt::Decoder * d0, keep_decoder(keep, before, so));
  LLMC_ASSIGN_OR_RETURN(rt::Decoder * d1, keep_decoder(keep, after, so));
  rt::BenchOptions o;
  o.prompt_len = b.prompt_len;
  o.decode_tokens = b.tokens;
  o.repeats = 1;
  LLMC_ASSIGN_OR_RETURN(auto rs, rt::bench_decoders({d0, d1}, o));
  r.decode_speedup = rt::paired_speedup(rs[0].decode_ms, rs[1].decode_ms).median;
  r.decode_ms_before = rs[0].decode_p50_ms;
  r.decode_ms_after = rs[1].decode_p50_ms;
  return Status::ok();
}

// Everything here is deterministic (no times, no paths): identical inputs and recipe give
// identical artifact bytes.
std::string manifest_json(const Recipe& recipe, const PipelineResult& r, const std::vector<std::string>& external,
                          const std::vector<std::string>& external_sha) {
  Json j;
  j.begin_object().field("tool", std::string("llmcompress ") + LLMC_VERSION);
  j.key("input").begin_object().field("file", file_name(recipe.input)).field("sha256", r.input_sha256);
  j.key("external_data").begin_array();
  for (size_t i = 0; i < external.size(); ++i)
    j.begin_object().field("file", file_name(external[i])).field("sha256", external_sha[i]).end_object();
  j.end_array().end_object();
  j.key("recipe").raw(recipe_json(recipe));
  if (!r.calibration_source.empty()) j.field("calibration", r.calibration_source);
  j.key("steps").begin_array();
  for (const auto& s : r.steps)
    j.begin_object().field("pass", s.pass).field("summary", s.result.summary).field("rewrites", s.result.rewrites)
        .field("bytes_before", s.result.bytes_before).field("bytes_after", s.result.bytes_after)
        .field("params_before", s.params_before).field("params_after", s.params_after).end_object();
  j.end_array();
  j.key("metrics").begin_object().field("weight_bytes_before", r.bytes_before).field("weight_bytes_after", r.bytes_after);
  if (r.eval)
    j.field("perplexity_before", r.eval->ppl_before).field("perplexity_after", r.eval->ppl_after)
        .field("top1_agreement", r.eval->top1).field("mean_kl", r.eval->kl).field("positions", r.eval->positions);
  j.end_object().end_object();
  return j.str();
}

void check_asserts(const Recipe& recipe, PipelineResult& r) {
  for (const auto& a : recipe.asserts) {
    AssertOutcome o{a, 0, false};
    if (a.metric == "max_ppl_increase" && r.eval) {
      o.value = r.eval->ppl_after / r.eval->ppl_before - 1;
      o.passed = o.value <= a.limit;
    } else if (a.metric == "min_top1_agreement" && r.eval) {
      o.value = r.eval->top1;
      o.passed = o.value >= a.limit;
    } else if (a.metric == "max_size_ratio") {
      o.value = double(r.bytes_after) / double(std::max<size_t>(1, r.bytes_before));
      o.passed = o.value <= a.limit;
    } else if (a.metric == "min_decode_speedup" && r.decode_speedup) {
      o.value = *r.decode_speedup;
      o.passed = o.value >= a.limit;
    }
    r.asserts.push_back(o);
  }
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

bool PipelineResult::all_asserts_passed() const {
  for (const auto& a : asserts)
    if (!a.passed) return false;
  return true;
}

Result<PipelineResult> run_pipeline(const Recipe& recipe, const PipelineOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  PipelineResult r;
  std::vector<std::string> external;
  LLMC_ASSIGN_OR_RETURN(Model model, load_model(recipe.input, &external));
  r.load_seconds = seconds_since(t0);
  // A tokenizer named by the recipe travels with the artifact (as `convert --tokenizer` does),
  // so `run --prompt` and `eval --text` work on it; one already inside the model is kept.
  if (!recipe.tokenizer.empty() && !model.find_metadata(kMetaTokenizer)) {
    LLMC_ASSIGN_OR_RETURN(auto tokenizer, load_tokenizer(recipe.tokenizer));
    attach_tokenizer(model, *tokenizer);
  }
  // Hash the input while the passes run (reading it again costs a second core, not wall time).
  auto hashes = std::async(std::launch::async, [&recipe, external] {
    std::vector<Result<std::string>> out{sha256_file(recipe.input)};
    for (const auto& e : external) out.push_back(sha256_file(e));
    return out;
  });
  const bool keep_original = recipe.eval || recipe.bench;
  Model original = keep_original ? model : Model{};  // shares weight bytes; no copy
  std::optional<EvalPlan> eval_plan;
  if (recipe.eval) {
    auto plan = plan_eval(*recipe.eval, recipe.input, recipe.tokenizer, std::make_shared<const Model>(original));
    if (!plan.is_ok()) return plan.status().with_context(recipe.where("eval"));
    eval_plan = std::move(plan).value();
  }
  if (recipe.bench) {
    const int64_t longest = max_sequence_length(model);
    const int64_t need = recipe.bench->prompt_len + recipe.bench->tokens + 1;  // + the warm-up's token
    if (longest > 0 && need > longest)
      return invalid_input(recipe.where("bench"), ": prompt_len + tokens = ", need - 1,
                           " is longer than the model's maximum sequence length ", longest);
  }
  r.bytes_before = initializer_bytes(model);
  r.params_before = parameter_count(model);

  calib::CalibrationSet calibration;
  if (recipe.calibration) {
    LLMC_ASSIGN_OR_RETURN(calibration, load_calibration(*recipe.calibration, model, recipe.input, recipe.tokenizer));
    r.calibration_source = calibration.source;
  }
  PassContext context;
  context.model_path = recipe.input;
  context.threads = options.threads;
  // The input's hash keeps one core busy while the steps run (SHA-256 of a 537 MB model:
  // ~0.4 s). Steps without calibration data stream the weights once and finish within that
  // time, so on all cores (--threads 0) they get one thread fewer: an extra thread only
  // contended with the hash (110M model, 2 cores: int8-dynamic 0.51 -> 0.49 s, fp16 0.595 ->
  // 0.535 s, less CPU in total). Calibrating and other compute-bound steps run for seconds and
  // keep every core (factorize-svd of the 110M model: 47 s on one thread).
  bool compute_bound = !calibration.empty();
  for (const auto& step : recipe.steps)
    if (auto pass = make_pass(step.pass); pass.is_ok()) compute_bound |= (*pass)->compute_bound();
  if (options.threads == 0 && !compute_bound)
    context.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) - 1);
  // One statistics service for the whole pipeline: a step reuses what an earlier one measured
  // until a step changes the graph.
  calib::ActivationStatistics statistics(&calibration, options.threads);
  LLMC_ASSIGN_OR_RETURN(statistics.limits, memory_limits_from_env());
  Progress stats_progress("calibration: samples", !options.quiet);
  statistics.progress = [&](size_t done, size_t total) {
    stats_progress.update(done, total);
    if (done == total) stats_progress.finish();
  };
  if (!calibration.empty()) {
    context.calibration = &calibration.samples;
    context.statistics = &statistics;
  }
  context.on_graph_changed = [&] { statistics.invalidate(); };

  if (!options.keep_intermediate.empty()) {
    std::error_code ec;
    fs::create_directories(options.keep_intermediate, ec);
    if (ec) return io_error(options.keep_intermediate, ": cannot create the directory: ", ec.message());
  }
  Progress step_progress("steps", !options.quiet);
  auto after_step = [&](size_t i, const StepRecord& rec, const Model& m) -> Status {
    step_progress.update(i + 1, recipe.steps.size());
    if (options.keep_intermediate.empty()) return Status::ok();
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "%02zu-", i + 1);
    return write_onnx(m, (fs::path(options.keep_intermediate) / (prefix + rec.pass + ".onnx")).string(), {});
  };
  LLMC_ASSIGN_OR_RETURN(r.steps, PassManager().run(model, recipe.steps, context, after_step));
  step_progress.finish();
  if (options.require_change && !r.steps.empty() && !r.steps.back().result.changed)
    return invalid_input(recipe.input, ": nothing was changed by ", r.steps.back().pass, " (",
                         r.steps.back().result.decisions.size(), " candidate nodes, all skipped); no output written");
  r.bytes_after = initializer_bytes(model);
  r.params_after = parameter_count(model);

  if (keep_original) {
    auto before = std::make_shared<const Model>(std::move(original));
    auto after = std::make_shared<const Model>(model);
    if (recipe.eval) {
      auto e = evaluate(*eval_plan, before, after, options.threads, options.quiet);
      if (!e.is_ok()) return e.status().with_context("eval");
      r.eval = *e;
    }
    if (recipe.bench) LLMC_RETURN_IF_ERROR(bench(*recipe.bench, before, after, options.threads, r).with_context("bench"));
  }
  check_asserts(recipe, r);

  // The artifact is written while the input's hash may still be running: the manifest (which
  // names the hash) sits in metadata_props, after the graph in the file, so the writer asks
  // for it only once the weights are out.
  OnnxWriteOptions wo;
  wo.external_data = options.external_data;
  wo.late_metadata = [&]() -> Result<StringPairs> {
    const auto hash_wait = std::chrono::steady_clock::now();
    auto hashed = hashes.get();
    r.hash_wait_seconds = seconds_since(hash_wait);
    std::vector<std::string> external_sha;
    if (!hashed[0].is_ok()) return hashed[0].status();
    r.input_sha256 = hashed[0].value();
    for (size_t i = 1; i < hashed.size(); ++i) {
      if (!hashed[i].is_ok()) return hashed[i].status();
      external_sha.push_back(hashed[i].value());
    }
    r.manifest = manifest_json(recipe, r, external, external_sha);
    return StringPairs{{kMetaManifest, r.manifest}};
  };
  const auto write_start = std::chrono::steady_clock::now();
  LLMC_RETURN_IF_ERROR(write_onnx(std::move(model), options.output, wo));  // freed as written
  r.write_seconds = seconds_since(write_start) - r.hash_wait_seconds;
  r.seconds = seconds_since(t0);
  return r;
}

std::string pipeline_report_json(const Recipe& recipe, const PipelineOptions& options, const PipelineResult& r) {
  Json j;
  j.begin_object().field("input", recipe.input).field("output", options.output).field("seconds", r.seconds)
      .field("load_seconds", r.load_seconds).field("hash_wait_seconds", r.hash_wait_seconds)
      .field("write_seconds", r.write_seconds)
      .field("bytes_before", r.bytes_before).field("bytes_after", r.bytes_after)
      .field("params_before", r.params_before).field("params_after", r.params_after);
  if (!r.calibration_source.empty()) j.field("calibration", r.calibration_source);
  j.key("steps").begin_array();
  for (const auto& s : r.steps) {
    j.begin_object().field("pass", s.pass).key("options").begin_object();
    for (const auto& [k, v] : s.options) j.field(k, v);
    j.end_object().field("summary", s.result.summary).field("seconds", s.seconds).field("rewrites", s.result.rewrites)
        .field("bytes_before", s.result.bytes_before).field("bytes_after", s.result.bytes_after)
        .field("params_before", s.params_before).field("params_after", s.params_after);
    j.key("nodes").begin_array();
    for (const auto& d : s.result.decisions)
      j.begin_object().field("node", d.node).field("op", d.op).field("action", d.action).field("detail", d.reason).end_object();
    j.end_array().key("warnings").begin_array();
    for (const auto& w : s.result.warnings) j.value(w);
    j.end_array().key("notes").begin_array();
    for (const auto& n : s.result.notes) j.value(n);
    j.end_array().end_object();
  }
  j.end_array();
  if (r.eval)
    j.key("eval").begin_object().field("perplexity_before", r.eval->ppl_before).field("perplexity_after", r.eval->ppl_after)
        .field("top1_agreement", r.eval->top1).field("mean_kl", r.eval->kl)
        .field("max_abs_logit_error", r.eval->max_logit_error).field("positions", r.eval->positions).end_object();
  if (r.decode_speedup)
    j.key("bench").begin_object().field("decode_speedup", *r.decode_speedup).field("decode_p50_ms_before", r.decode_ms_before)
        .field("decode_p50_ms_after", r.decode_ms_after).end_object();
  j.key("asserts").begin_array();
  for (const auto& a : r.asserts)
    j.begin_object().field("metric", a.spec.metric).field("limit", a.spec.limit).field("value", a.value)
        .field("passed", a.passed).end_object();
  j.end_array().field("passed", r.all_asserts_passed()).end_object();
  return j.str();
}

void print_pipeline_summary(const PipelineOptions& options, const PipelineResult& r) {
  if (!r.calibration_source.empty()) std::printf("calibration: %s\n", r.calibration_source.c_str());
  for (const auto& s : r.steps) {
    std::printf("%s (%.2f s): %s\n", s.pass.c_str(), s.seconds, s.result.summary.c_str());
    for (const auto& n : s.result.notes) std::printf("  (%s)\n", n.c_str());
    for (const auto& d : s.result.decisions)
      std::printf("  %-10s %-8s %-48s %s\n", d.action.c_str(), d.op.c_str(), d.node.c_str(), d.reason.c_str());
  }
  std::printf("weights %.2f MB -> %.2f MB (%.3fx), %.2f s; wrote %s\n", r.bytes_before / 1e6, r.bytes_after / 1e6,
              double(r.bytes_after) / std::max<size_t>(1, r.bytes_before), r.seconds, options.output.c_str());
  if (r.eval)
    std::printf("perplexity %.4f -> %.4f (%+.2f%%), top-1 agreement %.4f, mean KL %.3g over %lld positions\n",
                r.eval->ppl_before, r.eval->ppl_after, 100 * (r.eval->ppl_after / r.eval->ppl_before - 1), r.eval->top1,
                r.eval->kl, (long long)r.eval->positions);
  if (r.decode_speedup)
    std::printf("decode %.3f ms -> %.3f ms a token (p50), paired speed-up %.3fx\n", r.decode_ms_before,
                r.decode_ms_after, *r.decode_speedup);
  for (const auto& a : r.asserts)
    std::printf("assert %-20s %s: %.6g (limit %.6g)\n", a.spec.metric.c_str(), a.passed ? "passed" : "FAILED", a.value,
                a.spec.limit);
}

}  // namespace llmc::cli
