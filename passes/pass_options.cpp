#include "passes/pass_options.h"

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstdlib>

namespace llmc {

namespace {

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : sep) + i;
  return s;
}

// Shortest text that reads back as the same double (so "0.50" and ".5" canonicalise alike).
std::string shortest(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

bool in_range(const OptionSpec& s, double v) {
  if (s.min_open ? !(v > s.min) : !(v >= s.min)) return false;
  if (s.max_open ? !(v < s.max) : !(v <= s.max)) return false;
  return true;
}

// The canonical spelling of `value` for `spec`, or an error naming the option.
Result<std::string> canonical(const std::string& pass, const OptionSpec& spec, const std::string& raw) {
  const std::string value = trim(raw);
  auto bad = [&]() {
    return invalid_input("pass '", pass, "': option '", spec.name, "' must be ", spec.type_name(), ", got '", raw, "'");
  };
  switch (spec.type) {
    case OptionType::kBool: {
      std::string v = value;  // YAML writes True / Yes / ON too
      std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
      if (v == "1" || v == "true" || v == "yes" || v == "on") return std::string("true");
      if (v == "0" || v == "false" || v == "no" || v == "off") return std::string("false");
      return bad();  // empty or null included: say true or false
    }
    case OptionType::kInt: {
      int64_t v = 0;
      auto r = std::from_chars(value.data(), value.data() + value.size(), v);
      if (value.empty() || r.ec != std::errc() || r.ptr != value.data() + value.size() || !in_range(spec, double(v)))
        return bad();
      return std::to_string(v);
    }
    case OptionType::kFloat: {
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !std::isfinite(v) || !in_range(spec, v)) return bad();
      return shortest(v);
    }
    case OptionType::kChoice:
      if (std::find(spec.choices.begin(), spec.choices.end(), value) == spec.choices.end()) return bad();
      return value;
    case OptionType::kList: {
      std::vector<std::string> items;
      size_t start = 0;
      while (start <= value.size()) {
        size_t comma = value.find(',', start);
        if (comma == std::string::npos) comma = value.size();
        const std::string item = trim(value.substr(start, comma - start));
        if (!item.empty()) {
          if (!spec.choices.empty() && std::find(spec.choices.begin(), spec.choices.end(), item) == spec.choices.end())
            return invalid_input("pass '", pass, "': option '", spec.name, "': '", item, "' is not one of ",
                                 join(spec.choices, ", "));
          if (std::find(items.begin(), items.end(), item) == items.end()) items.push_back(item);
        }
        start = comma + 1;
      }
      return join(items, ",");
    }
    case OptionType::kString:
      return raw;
  }
  return bad();
}

}  // namespace

std::string OptionSpec::type_name() const {
  auto bound = [](double v) { return shortest(v); };
  switch (type) {
    case OptionType::kBool: return "a boolean (true or false)";
    case OptionType::kInt:
    case OptionType::kFloat: {
      std::string s = type == OptionType::kInt ? "an integer" : "a number";
      const bool lo = std::isfinite(min), hi = std::isfinite(max);
      if (lo && hi) return str_cat(s, " in ", min_open ? "(" : "[", bound(min), ", ", bound(max), max_open ? ")" : "]");
      if (lo) return str_cat(s, min_open ? " > " : " >= ", bound(min));
      if (hi) return str_cat(s, max_open ? " < " : " <= ", bound(max));
      return s;
    }
    case OptionType::kChoice: return "one of " + join(choices, "|");
    case OptionType::kList: return choices.empty() ? "a comma-separated list" : "a comma-separated list of " + join(choices, "|");
    case OptionType::kString: return "text";
  }
  return "?";
}

OptionSpec bool_option(std::string name, bool fallback, std::string help) {
  OptionSpec s;
  s.name = std::move(name);
  s.type = OptionType::kBool;
  s.default_value = fallback ? "true" : "false";
  s.help = std::move(help);
  return s;
}

OptionSpec int_option(std::string name, int64_t fallback, int64_t min, int64_t max, std::string help) {
  OptionSpec s;
  s.name = std::move(name);
  s.type = OptionType::kInt;
  s.default_value = std::to_string(fallback);
  s.min = double(min);
  s.max = double(max);
  s.help = std::move(help);
  return s;
}

OptionSpec float_option(std::string name, std::string fallback, double min, double max, std::string help, bool min_open,
                        bool max_open) {
  OptionSpec s;
  s.name = std::move(name);
  s.type = OptionType::kFloat;
  s.default_value = std::move(fallback);
  s.min = min;
  s.max = max;
  s.min_open = min_open;
  s.max_open = max_open;
  s.help = std::move(help);
  return s;
}

OptionSpec choice_option(std::string name, std::string fallback, std::vector<std::string> choices, std::string help) {
  OptionSpec s;
  s.name = std::move(name);
  s.type = OptionType::kChoice;
  s.default_value = std::move(fallback);
  s.choices = std::move(choices);
  s.help = std::move(help);
  return s;
}

OptionSpec list_option(std::string name, std::string fallback, std::vector<std::string> choices, std::string help) {
  OptionSpec s = choice_option(std::move(name), std::move(fallback), std::move(choices), std::move(help));
  s.type = OptionType::kList;
  return s;
}

OptionSpec string_option(std::string name, std::string fallback, std::string help) {
  OptionSpec s;
  s.name = std::move(name);
  s.default_value = std::move(fallback);
  s.help = std::move(help);
  return s;
}

std::string nearest_name(const std::string& name, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = std::max<size_t>(3, name.size() / 2) + 1;  // beyond this, no suggestion
  for (const auto& k : known) {
    const size_t d = edit_distance(name, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best;
}

Result<PassOptions> resolve_options(const std::string& pass, const std::vector<OptionSpec>& specs,
                                    const PassOptions& given) {
  std::vector<std::string> names;
  for (const auto& s : specs) names.push_back(s.name);
  for (const auto& [key, value] : given) {
    if (std::find(names.begin(), names.end(), key) != names.end()) continue;
    const std::string near = nearest_name(key, names);
    return invalid_input("pass '", pass, "': unknown option '", key, "'",
                         near.empty() ? "" : " (did you mean '" + near + "'?)",
                         names.empty() ? "; it takes no options" : "; options: " + join(names, ", "));
  }
  PassOptions out;
  for (const auto& s : specs) {
    auto it = given.find(s.name);
    if (it == given.end()) {
      if (!s.default_value.empty()) out[s.name] = s.default_value;
      continue;
    }
    LLMC_ASSIGN_OR_RETURN(out[s.name], canonical(pass, s, it->second));
  }
  return out;
}

bool option_flag(const PassOptions& o, const std::string& key) {
  auto it = o.find(key);
  return it != o.end() && it->second != "0" && it->second != "false";
}

std::string option_string(const PassOptions& o, const std::string& key, const std::string& fallback) {
  auto it = o.find(key);
  return it == o.end() ? fallback : it->second;
}

double option_double(const PassOptions& o, const std::string& key, double fallback) {
  auto it = o.find(key);
  return it == o.end() || it->second.empty() ? fallback : std::strtod(it->second.c_str(), nullptr);
}

int64_t option_int(const PassOptions& o, const std::string& key, int64_t fallback) {
  auto it = o.find(key);
  return it == o.end() || it->second.empty() ? fallback : std::strtoll(it->second.c_str(), nullptr, 10);
}

std::set<std::string> split_list(const std::string& s) {
  std::set<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    const std::string item = trim(s.substr(start, comma - start));
    if (!item.empty()) out.insert(item);
    start = comma + 1;
  }
  return out;
}

}  // namespace llmc
