#include "tools/recipe.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <set>
#include <cmath>
#include <filesystem>

#include "passes/registry.h"
#include "tools/cli_common.h"

namespace llmc::cli {

namespace fs = std::filesystem;

namespace {

// Reads one YAML document with positions for messages ("recipe.yaml:12: key 'x': ...").
class RecipeReader {
 public:
  explicit RecipeReader(std::string path) : path_(std::move(path)) {}

  std::string at(const YAML::Node& n) const { return str_cat(path_, ":", n.Mark().line + 1); }
  Status error(const YAML::Node& n, const std::string& key, const std::string& what) const {
    return invalid_input(at(n), ": ", key.empty() ? "" : "'" + key + "' ", what);
  }

  // ${VAR} is taken from the environment (CI sets LLMC_DATA); relative paths are relative to
  // the recipe's folder.
  Result<std::string> path_value(const YAML::Node& n, const std::string& key) const {
    LLMC_ASSIGN_OR_RETURN(std::string p, scalar(n, key));
    for (size_t at = 0; (at = p.find("${", at)) != std::string::npos;) {
      const size_t close = p.find('}', at);
      if (close == std::string::npos) return error(n, key, "has '${' without '}'");
      const std::string var = p.substr(at + 2, close - at - 2);
      const char* value = std::getenv(var.c_str());
      if (!value || !*value) return error(n, key, str_cat("uses ${", var, "}, which is not set in the environment"));
      p.replace(at, close - at + 1, value);
      at += std::strlen(value);  // the value is taken as it is, never expanded again
    }
    if (p.empty() || fs::path(p).is_absolute()) return p;
    const fs::path dir = fs::path(path_).parent_path();
    return dir.empty() ? p : (dir / p).string();
  }

  Result<std::string> scalar(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) return error(n, key, "must be a single value");
    return n.Scalar();
  }
  Result<int64_t> integer(const YAML::Node& n, const std::string& key, int64_t min, int64_t max) const {
    LLMC_ASSIGN_OR_RETURN(std::string s, scalar(n, key));
    int64_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || v < min || v > max)
      return error(n, key, str_cat("must be an integer in [", min, ", ", max, "], got '", s, "'"));
    return v;
  }
  // Fractions may be written "2%".
  Result<double> number(const YAML::Node& n, const std::string& key, bool percent_ok) const {
    LLMC_ASSIGN_OR_RETURN(std::string s, scalar(n, key));
    double scale = 1;
    std::string digits = s;
    if (percent_ok && !digits.empty() && digits.back() == '%') {
      digits.pop_back();
      scale = 0.01;
    }
    char* end = nullptr;
    const double v = std::strtod(digits.c_str(), &end);
    if (digits.empty() || *end != '\0' || !std::isfinite(v))
      return error(n, key, str_cat("must be a number", percent_ok ? " (or a percentage)" : "", ", got '", s, "'"));
    return v * scale;
  }
  // Checks a mapping's keys against `known`, naming the nearest for a typo.
  Status keys(const YAML::Node& map, const std::string& section, const std::vector<std::string>& known) const {
    if (!map.IsMap()) return error(map, section, "must be a mapping of keys to values");
    std::set<std::string> seen;
    for (const auto& kv : map) {
      const std::string k = kv.first.Scalar();
      if (!seen.insert(k).second) return error(kv.first, k, "is given twice");
      if (std::find(known.begin(), known.end(), k) != known.end()) continue;
      const std::string near = nearest_name(k, known);
      std::string list;
      for (const auto& x : known) list += (list.empty() ? "" : ", ") + x;
      return error(kv.first, "", str_cat("unknown key '", k, "'", section.empty() ? "" : " in " + section,
                                         near.empty() ? "" : " (did you mean '" + near + "'?)", "; known: ", list));
    }
    return Status::ok();
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Status read_calibration(const RecipeReader& r, const YAML::Node& n, Recipe& recipe) {
  LLMC_RETURN_IF_ERROR(r.keys(n, "calibration", {"data", "samples", "seq_len", "seed"}));
  CalibrationSpec c;
  if (!n["data"]) return r.error(n, "calibration", "needs 'data' (a text file, a token .npy, or .npy/.npz tensors)");
  LLMC_ASSIGN_OR_RETURN(c.data, r.path_value(n["data"], "data"));
  if (n["samples"]) {
    LLMC_ASSIGN_OR_RETURN(c.samples, r.integer(n["samples"], "samples", 1, kMaxSamples));
  }
  if (n["seq_len"]) {
    LLMC_ASSIGN_OR_RETURN(c.seq_len, r.integer(n["seq_len"], "seq_len", 1, kMaxSequence));
  }
  if (n["seed"]) {
    LLMC_ASSIGN_OR_RETURN(int64_t seed, r.integer(n["seed"], "seed", 0, INT64_MAX));
    c.seed = static_cast<uint64_t>(seed);
  }
  recipe.calibration = c;
  return Status::ok();
}

Status read_steps(const RecipeReader& r, const YAML::Node& n, Recipe& recipe) {
  if (!n.IsSequence() || n.size() == 0) return r.error(n, "steps", "must be a non-empty list of passes");
  for (const auto& item : n) {
    PassStep step;
    std::map<std::string, std::string> where;
    step.where = r.at(item);
    if (item.IsScalar()) {  // "- remove-unused": a pass with its default options
      step.pass = item.Scalar();
    } else if (item.IsMap()) {
      if (!item["pass"]) return r.error(item, "", "a step needs 'pass: NAME' (see `llmcompress passes`)");
      LLMC_ASSIGN_OR_RETURN(step.pass, r.scalar(item["pass"], "pass"));
      step.where = r.at(item["pass"]);
      for (const auto& kv : item) {
        const std::string key = kv.first.Scalar();
        if (key == "pass") continue;
        if (step.options.count(key)) return r.error(kv.first, key, "is given twice");
        std::string value;
        if (kv.second.IsSequence()) {  // op-types: [MatMul, Gemm]
          for (const auto& x : kv.second) {
            if (!x.IsScalar()) return r.error(kv.second, key, "must hold single values");
            value += (value.empty() ? "" : ",") + x.Scalar();
          }
        } else if (kv.second.IsScalar() || kv.second.IsNull()) {
          value = kv.second.IsNull() ? "" : kv.second.Scalar();
        } else {
          return r.error(kv.first, key, "must be a value or a list of values");
        }
        step.options[key] = value;
        where[key] = r.at(kv.first);
      }
    } else {
      return r.error(item, "steps", "each step is 'pass: NAME' with its options, or a pass name");
    }
    recipe.steps.push_back(std::move(step));
    recipe.option_where.push_back(std::move(where));
  }
  return Status::ok();
}

Status read_asserts(const RecipeReader& r, const YAML::Node& n, Recipe& recipe) {
  LLMC_RETURN_IF_ERROR(
      r.keys(n, "asserts", {"max_ppl_increase", "min_top1_agreement", "max_size_ratio", "min_decode_speedup"}));
  for (const auto& kv : n) {
    AssertSpec a;
    a.metric = kv.first.Scalar();
    a.where = r.at(kv.first);
    LLMC_ASSIGN_OR_RETURN(a.limit, r.number(kv.second, a.metric, a.metric == "max_ppl_increase"));
    const bool fraction = a.metric == "min_top1_agreement";
    if (a.limit < 0 || (fraction && a.limit > 1) || (a.metric != "max_ppl_increase" && a.limit == 0))
      return r.error(kv.second, a.metric, str_cat(fraction ? "must be in (0, 1]" : "must be positive", ", got ",
                                                  kv.second.Scalar()));
    recipe.asserts.push_back(a);
  }
  return Status::ok();
}

}  // namespace

std::string Recipe::where(const std::string& section) const {
  auto it = section_where.find(section);
  if (it != section_where.end()) return it->second;
  return path.empty() ? "command line" : path;
}

Result<Recipe> parse_recipe_file(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return invalid_input(path, ": cannot open the recipe");
  } catch (const YAML::Exception& e) {
    return invalid_input(path, ":", e.mark.line + 1, ": not valid YAML/JSON: ", e.msg);
  }
  RecipeReader r(path);
  Recipe recipe;
  recipe.path = path;
  try {
    if (!root.IsMap()) return invalid_input(path, ": a recipe is a mapping with input, steps, ... (see llmcompress pipeline --help)");
    LLMC_RETURN_IF_ERROR(r.keys(root, "", {"input", "tokenizer", "calibration", "steps", "eval", "bench", "asserts"}));
    for (const auto& kv : root) recipe.section_where[kv.first.Scalar()] = r.at(kv.first);
    if (root["input"]) {
      LLMC_ASSIGN_OR_RETURN(recipe.input, r.path_value(root["input"], "input"));
    }
    if (root["tokenizer"]) {
      LLMC_ASSIGN_OR_RETURN(recipe.tokenizer, r.path_value(root["tokenizer"], "tokenizer"));
    }
    if (root["calibration"]) LLMC_RETURN_IF_ERROR(read_calibration(r, root["calibration"], recipe));
    if (!root["steps"]) return invalid_input(path, ": no 'steps' (the passes to run, in order)");
    LLMC_RETURN_IF_ERROR(read_steps(r, root["steps"], recipe));
    if (const YAML::Node e = root["eval"]) {
      LLMC_RETURN_IF_ERROR(r.keys(e, "eval", {"text", "context", "limit"}));
      EvalSpec spec;
      if (!e["text"]) return r.error(e, "eval", "needs 'text' (a text file to measure perplexity on)");
      LLMC_ASSIGN_OR_RETURN(spec.text, r.path_value(e["text"], "text"));
      if (e["context"]) {
        LLMC_ASSIGN_OR_RETURN(spec.ctx, r.integer(e["context"], "context", 0, kMaxSequence));
      }
      if (e["limit"]) {
        LLMC_ASSIGN_OR_RETURN(spec.limit, r.integer(e["limit"], "limit", 0, INT64_MAX));
      }
      recipe.eval = spec;
    }
    if (const YAML::Node b = root["bench"]) {
      LLMC_RETURN_IF_ERROR(r.keys(b, "bench", {"prompt_len", "tokens"}));
      BenchSpec spec;
      if (b["prompt_len"]) {
        LLMC_ASSIGN_OR_RETURN(spec.prompt_len, r.integer(b["prompt_len"], "prompt_len", 1, kMaxSequence));
      }
      if (b["tokens"]) {
        LLMC_ASSIGN_OR_RETURN(spec.tokens, r.integer(b["tokens"], "tokens", 2, kMaxSequence));
      }
      recipe.bench = spec;
    }
    if (root["asserts"]) LLMC_RETURN_IF_ERROR(read_asserts(r, root["asserts"], recipe));
  } catch (const YAML::Exception& e) {
    return invalid_input(path, ":", e.mark.line + 1, ": ", e.msg);
  }
  return recipe;
}

namespace {
// Whether `path` is a readable regular file; never throws (a path through an unreadable folder,
// or one too long, is an error message, not an abort).
Status check_file(const std::string& where, const std::string& what, const std::string& path) {
  std::error_code ec;
  const bool regular = fs::is_regular_file(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    return invalid_input(where, ": cannot access ", what, " '", path, "': ", ec.message());
  if (!regular) return invalid_input(where, ": ", what, " '", path, "' does not exist or is not a file");
  return Status::ok();
}
}  // namespace

Status validate_recipe(Recipe& recipe) {
  const std::string& file = recipe.path;
  auto where = [&](const std::string& section) { return recipe.where(section); };
  if (recipe.input.empty())
    return invalid_input(file.empty() ? "pipeline" : file, ": no input model (give 'input:' or --input MODEL)");
  LLMC_RETURN_IF_ERROR(check_file(where("input"), "input model", recipe.input));
  if (recipe.calibration) LLMC_RETURN_IF_ERROR(check_file(where("calibration"), "calibration data", recipe.calibration->data));
  if (!recipe.tokenizer.empty()) LLMC_RETURN_IF_ERROR(check_file(where("tokenizer"), "tokenizer", recipe.tokenizer));
  if (recipe.eval) LLMC_RETURN_IF_ERROR(check_file(where("eval"), "eval text", recipe.eval->text));
  bool uses_calibration = false;
  for (size_t i = 0; i < recipe.steps.size(); ++i) {
    PassStep& step = recipe.steps[i];
    auto pass = make_pass(step.pass);
    if (!pass.is_ok()) return pass.status().with_context(step.where);
    auto resolved = resolve_pass_options(step.pass, step.options);  // each option, then their combination
    if (!resolved.is_ok()) {  // point at the offending option's own line when we know it
      const auto& lines = i < recipe.option_where.size() ? recipe.option_where[i] : std::map<std::string, std::string>{};
      for (const auto& [key, value] : step.options)
        if (!resolve_options(step.pass, (*pass)->options(), {{key, value}}).is_ok() && lines.count(key))
          return resolved.status().with_context(lines.at(key));
      return resolved.status().with_context(step.where);
    }
    step.options = std::move(resolved).value();
    uses_calibration |= (*pass)->uses_calibration(step.options);
    if ((*pass)->needs_calibration() && !recipe.calibration)
      return invalid_input(step.where, ": pass '", step.pass, "' needs calibration data: ",
                           file.empty() ? "give --calib DATA" : "add a 'calibration' section");
  }
  if (recipe.calibration && !uses_calibration)
    return invalid_input(where("calibration"), ": calibration data is given but no step uses it (",
                         file.empty() ? "drop --calib" : "drop the 'calibration' section", ")");
  for (const auto& a : recipe.asserts) {
    if ((a.metric == "max_ppl_increase" || a.metric == "min_top1_agreement") && !recipe.eval)
      return invalid_input(a.where, ": assert '", a.metric, "' needs an 'eval' section (text to measure it on)");
    if (a.metric == "min_decode_speedup" && !recipe.bench)
      return invalid_input(a.where, ": assert '", a.metric, "' needs a 'bench' section (decode to time)");
  }
  return Status::ok();
}

std::string recipe_json(const Recipe& recipe) {
  auto name = [](const std::string& p) { return fs::path(p).filename().string(); };
  Json j;
  j.begin_object().field("input", name(recipe.input));
  if (!recipe.tokenizer.empty()) j.field("tokenizer", name(recipe.tokenizer));
  if (recipe.calibration) {
    const auto& c = *recipe.calibration;
    j.key("calibration").begin_object().field("data", name(c.data)).field("samples", c.samples)
        .field("seq_len", c.seq_len).field("seed", std::to_string(c.seed));
    j.end_object();
  }
  j.key("steps").begin_array();
  for (const auto& s : recipe.steps) {
    j.begin_object().field("pass", s.pass);
    for (const auto& [k, v] : s.options) j.field(k, v);
    j.end_object();
  }
  j.end_array();
  if (recipe.eval)
    j.key("eval").begin_object().field("text", name(recipe.eval->text)).field("context", recipe.eval->ctx)
        .field("limit", recipe.eval->limit).end_object();
  if (recipe.bench)
    j.key("bench").begin_object().field("prompt_len", recipe.bench->prompt_len).field("tokens", recipe.bench->tokens)
        .end_object();
  j.key("asserts").begin_object();
  for (const auto& a : recipe.asserts) j.field(a.metric, a.limit);
  j.end_object().end_object();
  return j.str();
}

}  // namespace llmc::cli
