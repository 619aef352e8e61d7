// llmcompress: load a model, compress it, write an artifact, measure it.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"llmcompress: make language models smaller and faster, offline"};
  app.set_version_flag("--version", std::string("llmcompress ") + LLMC_VERSION);
  app.require_subcommand(1);
  app.failure_message(CLI::FailureMessage::help);
  int exit_code = 0;
  llmc::cli::add_convert_command(app, exit_code);
  llmc::cli::add_inspect_command(app, exit_code);
  llmc::cli::add_tokenize_command(app, exit_code);
  llmc::cli::add_run_command(app, exit_code);
  llmc::cli::add_eval_command(app, exit_code);
  llmc::cli::add_bench_command(app, exit_code);
  llmc::cli::add_synth_command(app, exit_code);
  llmc::cli::add_quantize_command(app, exit_code);
  llmc::cli::add_passes_command(app, exit_code);
  llmc::cli::add_pipeline_command(app, exit_code);
  llmc::cli::add_prune_command(app, exit_code);
  llmc::cli::add_stats_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "llmcompress: error: %s (see llmcompress --help)\n", e.what());
    return 2;
  }
  return exit_code;
}
