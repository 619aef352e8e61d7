// llmcompress passes [--json]: every registered pass with its options (type, default, range or
// choices, help), generated from the declarations in passes/ — the same ones recipes and
// --passes are checked against.
#include <cstdio>

#include "passes/registry.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace llmc::cli {

namespace {
const char* type_word(OptionType t) {
  switch (t) {
    case OptionType::kBool: return "bool";
    case OptionType::kInt: return "int";
    case OptionType::kFloat: return "float";
    case OptionType::kChoice: return "choice";
    case OptionType::kList: return "list";
    case OptionType::kString: return "string";
  }
  return "?";
}

Status run_passes(bool json) {
  const auto catalog = pass_catalog();
  if (json) {
    Json j;
    j.begin_array();
    for (const auto& p : catalog) {
      j.begin_object().field("name", p.name).field("summary", p.summary).key("options").begin_array();
      for (const auto& o : p.options) {
        j.begin_object().field("name", o.name).field("type", type_word(o.type)).field("accepts", o.type_name());
        if (o.default_value.empty()) j.key("default").null();
        else j.field("default", o.default_value);
        if (!o.choices.empty()) {
          j.key("choices").begin_array();
          for (const auto& c : o.choices) j.value(c);
          j.end_array();
        }
        j.field("help", o.help).end_object();
      }
      j.end_array().end_object();
    }
    j.end_array();
    std::printf("%s\n", j.str().c_str());
    return Status::ok();
  }
  std::printf("%s", format_pass_help(catalog).c_str());
  return Status::ok();
}
}  // namespace

std::string format_pass_help(const std::vector<PassInfo>& passes) {
  std::string s;
  for (const auto& p : passes) {
    s += str_cat(p.name, "  ", p.summary, "\n");
    for (const auto& o : p.options)
      s += str_cat("    ", o.name, "=", o.default_value.empty() ? "<unset>" : o.default_value, "  (", o.type_name(),
                   ")  ", o.help, "\n");
  }
  return s;
}

void add_passes_command(CLI::App& app, int& exit_code) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("passes", "List every pass and its options (for recipes and --passes)");
  cmd->add_flag("--json", *json, "print the list as JSON");
  cmd->callback([json, &exit_code] { exit_code = report("passes", run_passes(*json)); });
}

}  // namespace llmc::cli
