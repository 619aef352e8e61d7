// llmcompress: load a model, compress it, write an artifact, measure it.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

#include "formats/input_files.h"
#include "formats/temp_files.h"
#include "tools/commands.h"
#include "tools/model_session.h"

namespace {

// The last resort: library code returns Status, but an exception may still escape (an
// allocation the limits did not foresee, a thread the OS refused, a bug). One line and an exit
// code instead of std::terminate's abort (exit 134).
int report_escaped(const CLI::App& app, const std::string& what, int code) {
  std::string line = what;
  for (char& c : line)
    if (c == '\n' || c == '\r') c = ' ';
  std::string command = "llmcompress";
  for (const CLI::App* sub : app.get_subcommands()) command += " " + sub->get_name();
  std::fprintf(stderr, "%s: error: %s\n", command.c_str(), line.c_str());
  return code;
}

// LLMC_FAULT_INJECTION=logic_error|bad_alloc|system_error throws that exception as a command
// starts: the tests' only way to reach the last-resort handler, which no input should reach.
void inject_fault() {
  const char* fault = std::getenv("LLMC_FAULT_INJECTION");
  if (!fault) return;
  const std::string f = fault;
  if (f == "logic_error") throw std::logic_error("injected fault");
  if (f == "bad_alloc") throw std::bad_alloc();
  if (f == "system_error") throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again), "injected fault");
}

}  // namespace

int main(int argc, char** argv) {
  llmc::remove_temp_files_on_signals();  // Ctrl-C during a write leaves no OUT.tmp.XXXXXX
  llmc::refuse_outputs_over_inputs();    // -o onto an input (any name for it) loses nothing
  CLI::App app{"llmcompress: make language models smaller and faster, offline"};
  app.set_version_flag("--version", std::string("llmcompress ") + LLMC_VERSION);
  app.require_subcommand(1);
  app.failure_message(CLI::FailureMessage::help);
  app.footer("Exit codes: 0 ok, 2 bad input, usage or resources, 3 a bug (please report).\n" +
             llmc::cli::memory_limits_help());
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
  llmc::cli::add_lowrank_command(app, exit_code);
  llmc::cli::add_stats_command(app, exit_code);
  for (CLI::App* sub : app.get_subcommands({})) sub->preparse_callback([](size_t) { inject_fault(); });
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
  } catch (const std::bad_alloc&) {
    return report_escaped(app, "out of memory (a size in the input may be too large; see LLMC_MAX_TENSOR_BYTES)", 2);
  } catch (const std::length_error& e) {  // before logic_error, which it derives from
    return report_escaped(app, std::string("a size in the input is too large (") + e.what() + ")", 2);
  } catch (const std::system_error& e) {  // thread creation, files: the OS refused a resource
    return report_escaped(app, std::string("system error: ") + e.what(), 2);
  } catch (const std::exception& e) {
    return report_escaped(app, std::string("internal error: ") + e.what() + " (a bug: please report it)", 3);
  } catch (...) {
    return report_escaped(app, "internal error: unknown exception (a bug: please report it)", 3);
  }
  return exit_code;
}
