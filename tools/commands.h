// Every CLI subcommand registers itself on the app here; one line per command.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "passes/registry.h"

namespace llmc::cli {
// Each adds its subcommand; on run, the subcommand stores its exit code in `exit_code`.
void add_convert_command(CLI::App& app, int& exit_code);
void add_inspect_command(CLI::App& app, int& exit_code);
void add_tokenize_command(CLI::App& app, int& exit_code);
void add_run_command(CLI::App& app, int& exit_code);
void add_eval_command(CLI::App& app, int& exit_code);
void add_bench_command(CLI::App& app, int& exit_code);
void add_synth_command(CLI::App& app, int& exit_code);
void add_quantize_command(CLI::App& app, int& exit_code);
void add_passes_command(CLI::App& app, int& exit_code);
void add_pipeline_command(CLI::App& app, int& exit_code);
void add_prune_command(CLI::App& app, int& exit_code);
void add_lowrank_command(CLI::App& app, int& exit_code);
void add_stats_command(CLI::App& app, int& exit_code);

// "name  summary" and one indented line per option: `passes` and pass commands' --help.
std::string format_pass_help(const std::vector<PassInfo>& passes);
}  // namespace llmc::cli
