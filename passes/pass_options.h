// Declared pass options: each pass lists its options with type, default, allowed range or
// choices and one line of help. resolve_options() checks what a user gave (CLI flag, recipe
// key, --passes one-liner) against the declarations before any work starts: an unknown option
// names the nearest known one, an ill-typed or out-of-range value names the option and what it
// accepts. Resolved options are canonical (every declared default filled in, numbers and
// booleans spelled one way), so the same settings always give the same manifest bytes.
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/status.h"

namespace llmc {

// Options as strings, keyed by option name. Passes receive them resolved (see resolve_options).
using PassOptions = std::map<std::string, std::string>;

enum class OptionType {
  kBool,    // true/false (1/0, yes/no, on/off accepted; canonical "true"/"false")
  kInt,     // integer within [min, max]
  kFloat,   // finite number within the range (bounds open or closed)
  kChoice,  // one of `choices`
  kList,    // comma-separated items, each one of `choices` when choices are given
  kString,  // any text (names, regular expressions)
};

struct OptionSpec {
  std::string name;
  OptionType type = OptionType::kString;
  std::string default_value;  // "" for kString/kList/kFloat: unset unless given
  std::string help;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false, max_open = false;
  std::vector<std::string> choices;

  std::string type_name() const;   // "number in (0, 1]", "one of minmax|entropy", ...
};

// Shorthands for declarations.
OptionSpec bool_option(std::string name, bool fallback, std::string help);
OptionSpec int_option(std::string name, int64_t fallback, int64_t min, int64_t max, std::string help);
// `fallback` "" leaves the option unset unless given.
OptionSpec float_option(std::string name, std::string fallback, double min, double max, std::string help,
                        bool min_open = false, bool max_open = false);
OptionSpec choice_option(std::string name, std::string fallback, std::vector<std::string> choices, std::string help);
OptionSpec list_option(std::string name, std::string fallback, std::vector<std::string> choices, std::string help);
OptionSpec string_option(std::string name, std::string fallback, std::string help);

// Checks `given` against `specs` and returns the canonical options with defaults filled in.
// Errors say "pass '<pass>': ..." and name the option.
Result<PassOptions> resolve_options(const std::string& pass, const std::vector<OptionSpec>& specs,
                                    const PassOptions& given);

// The known name nearest to `name` by edit distance, or "" when none is close.
std::string nearest_name(const std::string& name, const std::vector<std::string>& known);

// Typed reads of resolved options.
bool option_flag(const PassOptions& o, const std::string& key);
std::string option_string(const PassOptions& o, const std::string& key, const std::string& fallback);
double option_double(const PassOptions& o, const std::string& key, double fallback);
int64_t option_int(const PassOptions& o, const std::string& key, int64_t fallback);
// Comma-separated list -> set (e.g. op-types=MatMul,Gemm).
std::set<std::string> split_list(const std::string& s);

}  // namespace llmc
