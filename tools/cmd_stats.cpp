// llmcompress stats MODEL --calib DATA [--values matmul|all-matmul|NAME,...] [--kinds absmax,mean-abs,l2,histogram,gram]
//                   [--calib-samples N] [--calib-seq-len L] [--tokenizer FILE] [--threads N] [--json]
// A developer's view of the activation-statistics service (calibration/activation_statistics.h):
// measures the statistics of the named values (default: the activation inputs of the MatMuls
// and Gemms with a constant weight, what GPTQ, Wanda or AWQ ask for) over a calibration set, and
// prints per value its channels and rows, then weight bytes, Gram bytes, time and peak RSS.
// Writes nothing; scripts/bench_statistics.sh runs it to check that memory does not grow with
// the number of samples.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "calibration/activation_statistics.h"
#include "calibration/calibration_data.h"
#include "formats/model_loader.h"
#include "runtime/bench.h"
#include "runtime/session.h"
#include "tools/recipe.h"
#include "tools/calibration_loader.h"
#include "tools/cli_common.h"
#include "tools/commands.h"
#include "tools/model_session.h"
#include "tools/progress.h"

namespace llmc::cli {

namespace {

struct StatsArgs {
  std::string model, calib, tokenizer, values = "matmul", kinds = "absmax,mean-abs,l2,gram";
  int64_t calib_samples = 16, calib_seq_len = 128;
  uint64_t calib_seed = 0;
  int threads = 0;
  bool json = false;
};

// Comma-separated items, in order, empty ones dropped.
std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find(',', start), s.size());
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Result<unsigned> parse_kinds(const std::string& list) {
  const std::map<std::string, unsigned> names{{"absmax", calib::kAbsMax},       {"mean-abs", calib::kMeanAbs},
                                              {"l2", calib::kL2Norm},           {"histogram", calib::kHistogram},
                                              {"gram", calib::kGram},           {"range", calib::kRange}};
  unsigned kinds = 0;
  for (const auto& k : split_commas(list)) {
    auto it = names.find(k);
    if (it == names.end())
      return invalid_input("--kinds: unknown statistic '", k, "' (absmax, mean-abs, l2, histogram, gram, range)");
    kinds |= it->second;
  }
  if (kinds == 0) return invalid_input("--kinds names no statistic");
  return kinds;
}

// "matmul": activation inputs of MatMul/Gemm nodes whose weight (B) is a constant; "all-matmul":
// every non-constant MatMul/Gemm input (attention's Q, Kᵀ, scores and V too); else a list.
std::vector<std::string> value_names(const Graph& g, const std::string& spec) {
  if (spec != "matmul" && spec != "all-matmul") return split_commas(spec);
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const Node& n : g.nodes) {
    if (!n.domain.empty() || (n.op_type != "MatMul" && n.op_type != "Gemm") || n.inputs.size() < 2) continue;
    const bool weight = g.find_initializer(n.inputs[1]) && !g.is_graph_input(n.inputs[1]);
    if (spec == "matmul" && !weight) continue;
    for (size_t i = 0; i < (spec == "matmul" ? 1u : 2u); ++i) {
      const std::string& in = n.inputs[i];
      if (in.empty() || (g.find_initializer(in) && !g.is_graph_input(in))) continue;
      if (seen.insert(in).second) out.push_back(in);
    }
  }
  return out;
}

Status run_stats(const StatsArgs& a) {
  LLMC_ASSIGN_OR_RETURN(unsigned kinds, parse_kinds(a.kinds));
  const auto t0 = std::chrono::steady_clock::now();
  LLMC_ASSIGN_OR_RETURN(Model model, load_model(a.model));
  std::shared_ptr<const Tokenizer> tokenizer;
  auto tok = model_tokenizer(model, a.model, a.tokenizer);
  if (tok.is_ok()) tokenizer = std::move(tok).value();
  else if (!a.tokenizer.empty()) return tok.status();
  calib::CalibrationOptions o;
  o.num_samples = a.calib_samples;
  o.seq_len = a.calib_seq_len;
  o.seed = a.calib_seed;
  auto set = load_calibration_file(model, a.calib, tokenizer.get(), o);
  if (!set.is_ok()) return set.status().with_context("--calib " + a.calib);
  calib::StatisticsRequest request;
  request.values = value_names(model.graph, a.values);
  request.kinds = kinds;
  if (request.values.empty()) return invalid_input(a.model, ": no values to measure (--values ", a.values, ")");
  calib::ActivationStatistics service(&*set, a.threads);
  LLMC_ASSIGN_OR_RETURN(service.limits, memory_limits_from_env());
  Progress progress("statistics", !a.json);
  service.progress = [&progress](size_t done, size_t total) { progress.update(done, total); };
  const auto t1 = std::chrono::steady_clock::now();
  auto got = service.get(model, request);
  if (!got.is_ok()) return got.status().with_context(a.model);
  auto stats = std::move(got).value();
  const auto t2 = std::chrono::steady_clock::now();
  progress.finish();
  const double load_s = std::chrono::duration<double>(t1 - t0).count();
  const double measure_s = std::chrono::duration<double>(t2 - t1).count();
  size_t gram_bytes = 0;
  for (const auto& [name, s] : stats) gram_bytes += s->gram.size() * sizeof(double);
  const size_t weights = weight_bytes(model), peak = rt::peak_rss_bytes();
  const double ratio = double(peak) / double(std::max<size_t>(1, weights + gram_bytes));
  if (a.json) {
    Json j;
    j.begin_object().field("model", a.model).field("calibration", set->source).field("samples", set->size())
        .field("values", request.values.size()).field("weight_bytes", weights).field("gram_bytes", gram_bytes)
        .field("peak_rss_bytes", peak).field("peak_over_weights_and_grams", ratio).field("load_seconds", load_s)
        .field("measure_seconds", measure_s).field("streams", service.streams());
    j.key("stats").begin_array();
    for (const auto& name : request.values) {
      const calib::ChannelStatistics& s = *stats.at(name);
      j.begin_object().field("value", name).field("channels", s.channels).field("rows", s.rows);
      if (!s.absmax.empty()) j.field("absmax", *std::max_element(s.absmax.begin(), s.absmax.end()));
      j.end_object();
    }
    j.end_array().end_object();
    std::printf("%s\n", j.str().c_str());
    return Status::ok();
  }
  std::printf("calibration: %s\n", set->source.c_str());
  std::printf("  %-56s %8s %10s %12s\n", "value", "channels", "rows", "max |x|");
  for (const auto& name : request.values) {
    const calib::ChannelStatistics& s = *stats.at(name);
    const double amax = s.absmax.empty() ? 0.0 : *std::max_element(s.absmax.begin(), s.absmax.end());
    std::printf("  %-56s %8lld %10lld %12.5g\n", name.c_str(), (long long)s.channels, (long long)s.rows, amax);
  }
  std::printf("%zu values over %zu samples in %.2f s (load %.2f s); weights %.1f MB, Grams %.1f MB, peak RSS %.1f MB "
              "(%.3fx weights + Grams)\n",
              request.values.size(), set->size(), measure_s, load_s, weights / 1e6, gram_bytes / 1e6, peak / 1e6, ratio);
  return Status::ok();
}

}  // namespace

void add_stats_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<StatsArgs>();
  CLI::App* cmd = app.add_subcommand("stats", "Measure activation statistics over a calibration set (developer tool)");
  cmd->add_option("model", a->model, "ONNX model, llama2.c checkpoint or GGUF file")->required();
  cmd->add_option("--calib", a->calib, "calibration data: text file (model's tokenizer), token .npy, or .npy/.npz tensors")
      ->required();
  cmd->add_option("--values", a->values,
                  "matmul (inputs of MatMul/Gemm with a constant weight), all-matmul, or comma-separated value names")
      ->capture_default_str();
  cmd->add_option("--kinds", a->kinds, "comma-separated: absmax, mean-abs, l2, histogram, gram, range")->capture_default_str();
  cmd->add_option("--calib-samples", a->calib_samples, "calibration windows")->capture_default_str()->check(CLI::Range(int64_t{1}, kMaxSamples));
  cmd->add_option("--calib-seq-len", a->calib_seq_len, "tokens per calibration window")->capture_default_str()->check(CLI::Range(int64_t{1}, kMaxSequence));
  cmd->add_option("--calib-seed", a->calib_seed, "seed for the calibration window offsets")->capture_default_str();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer for a text --calib (default: the one inside the model)");
  cmd->add_option("--threads", a->threads, "threads (0 = all cores)")->check(CLI::Range(0, rt::kMaxThreads));
  cmd->add_flag("--json", a->json, "print the summary as JSON");
  cmd->callback([a, &exit_code] { exit_code = report("stats", run_stats(*a)); });
}

}  // namespace llmc::cli
