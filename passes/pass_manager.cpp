#include "passes/pass_manager.h"

#include <chrono>

#include "ir/graph_utils.h"
#include "passes/registry.h"

namespace llmc {

namespace {
std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\n") - b + 1);
}

// "k=v,k2=a,b,flag" -> {k: v, k2: "a,b", flag: true}: a piece without '=' continues the
// previous value when that option holds a list or text, else it is a boolean switched on.
Result<PassOptions> parse_option_list(const std::string& body, const std::string& where,
                                      const std::function<bool(const std::string&)>& holds_commas) {
  PassOptions out;
  std::string last;
  size_t start = 0;
  while (start <= body.size()) {
    size_t comma = body.find(',', start);
    if (comma == std::string::npos) comma = body.size();
    const std::string piece = body.substr(start, comma - start);
    start = comma + 1;
    const size_t eq = piece.find('=');
    if (eq == std::string::npos) {
      if (trim(piece).empty()) continue;
      if (!last.empty() && holds_commas(last)) {
        out[last] += "," + trim(piece);
      } else {  // a bare name: a boolean option switched on
        last = trim(piece);
        if (out.count(last)) return invalid_input(where, ": option '", last, "' given twice");
        out[last] = "true";
      }
      continue;
    }
    last = trim(piece.substr(0, eq));
    if (last.empty()) return invalid_input(where, ": option without a name in '{", body, "}'");
    if (out.count(last)) return invalid_input(where, ": option '", last, "' given twice");
    out[last] = trim(piece.substr(eq + 1));
  }
  return out;
}
}  // namespace

Result<std::vector<PassStep>> parse_pass_list(const std::string& text) {
  std::vector<PassStep> steps;
  size_t i = 0;
  while (i < text.size()) {
    size_t end = i;
    while (end < text.size() && text[end] != ',' && text[end] != '{') ++end;
    PassStep step;
    step.where = str_cat("--passes step ", steps.size() + 1);
    step.pass = trim(text.substr(i, end - i));
    if (step.pass.empty()) return invalid_input(step.where, ": empty pass name in '", text, "'");
    if (end < text.size() && text[end] == '{') {
      const size_t close = text.find('}', end);
      if (close == std::string::npos) return invalid_input(step.where, ": '{' without '}' after '", step.pass, "'");
      // Which options may hold commas (lists, text) comes from the pass's declarations.
      std::vector<OptionSpec> specs;
      if (auto pass = make_pass(step.pass); pass.is_ok()) specs = (*pass)->options();
      auto holds_commas = [&](const std::string& name) {
        for (const auto& o : specs)
          if (o.name == name) return o.type == OptionType::kList || o.type == OptionType::kString;
        return true;  // unknown option: the error comes when the step is resolved
      };
      LLMC_ASSIGN_OR_RETURN(step.options,
                            parse_option_list(text.substr(end + 1, close - end - 1), step.where, holds_commas));
      end = close + 1;
      while (end < text.size() && (text[end] == ' ' || text[end] == '\t')) ++end;
      if (end < text.size() && text[end] != ',')
        return invalid_input(step.where, ": expected ',' after '}' of '", step.pass, "'");
    }
    steps.push_back(std::move(step));
    i = end + 1;
  }
  if (steps.empty()) return invalid_input("--passes: no pass given");
  return steps;
}

std::string format_pass_list(const std::vector<PassStep>& steps) {
  std::string s;
  for (const auto& step : steps) {
    if (!s.empty()) s += ",";
    s += step.pass;
    if (step.options.empty()) continue;
    s += "{";
    bool first = true;
    for (const auto& [k, v] : step.options) {
      s += (first ? "" : ",") + k + "=" + v;
      first = false;
    }
    s += "}";
  }
  return s;
}

Status resolve_steps(std::vector<PassStep>& steps) {
  for (auto& step : steps) {
    auto resolved = resolve_pass_options(step.pass, step.options);
    if (!resolved.is_ok()) return step.where.empty() ? resolved.status() : resolved.status().with_context(step.where);
    step.options = std::move(resolved).value();
  }
  return Status::ok();
}

int64_t parameter_count(const Model& model) {
  int64_t n = 0;
  for (const auto& t : model.graph.initializers) n += t.numel();
  return n;
}

Result<std::vector<StepRecord>> PassManager::run(Model& model, const std::vector<PassStep>& steps, PassContext& context,
                                                 const AfterStep& after) const {
  std::vector<StepRecord> records;
  for (size_t i = 0; i < steps.size(); ++i) {
    const PassStep& step = steps[i];
    LLMC_ASSIGN_OR_RETURN(auto pass, make_pass(step.pass));
    StepRecord rec;
    rec.pass = step.pass;
    rec.options = step.options;
    rec.params_before = parameter_count(model);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = pass->run(model, step.options, context);
    rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r.is_ok()) return r.status().with_context(str_cat("step ", i + 1, " (", step.pass, ")"));
    rec.result = std::move(r).value();
    if (Status v = verify(model.graph); !v.is_ok())
      return internal_error("step ", i + 1, " (", step.pass, ") left an invalid graph: ", v.message(),
                            " (a bug in the pass; please report it)");
    rec.params_after = parameter_count(model);
    if (rec.result.changed && context.on_graph_changed) context.on_graph_changed();
    records.push_back(std::move(rec));
    if (after) LLMC_RETURN_IF_ERROR(after(i, records.back(), model));
  }
  return records;
}

}  // namespace llmc
