#include "tests/support/test_data.h"

#include <cpuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

namespace llmc::testing {

namespace {
bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

std::vector<std::string>& scratch_dirs() {
  static std::vector<std::string> dirs;
  static bool registered = false;
  if (!registered) {
    registered = true;
    std::atexit([] {
      for (const auto& d : scratch_dirs()) std::filesystem::remove_all(d);
    });
  }
  return dirs;
}

void missing(const std::string& what) {
  if (in_ci()) FAIL(what << " (CI=true: tests needing real data must not skip)");
  WARN("SKIPPED: " << what);
  SUCCEED("skipped");  // an assertion, so the no-assertion rule (tests/main.cpp) lets the skip through
}
}  // namespace

bool cpu_has_vnni() {
  if (__builtin_cpu_supports("avx512vnni")) return true;
  // AVX-VNNI: CPUID.(EAX=7, ECX=1):EAX bit 4 (clang 14's __builtin_cpu_supports lacks "avxvnni").
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)) != 0;
}

std::string data_path(const std::string& relative) {
  const char* root = std::getenv("LLMC_DATA");
  if (!root || !*root) {
    missing("LLMC_DATA is not set; point it at shared/data");
    return "";
  }
  std::string p = std::string(root) + "/" + relative;
  if (!file_exists(p)) {
    missing("missing test data " + p);
    return "";
  }
  return p;
}

std::string model_path(const std::string& relative) {
  std::string root;
  if (const char* m = std::getenv("LLMC_MODELS"); m && *m) {
    root = m;
  } else if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache && *cache) {
    root = std::string(cache) + "/llmcompress/models";
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    root = std::string(home) + "/.cache/llmcompress/models";
  }
  const std::string p = root + "/" + relative;
  if (root.empty() || !file_exists(p)) {
    missing("missing model " + p + " (scripts/setup.sh fetches it; LLMC_MODELS names the cache)");
    return "";
  }
  return p;
}

std::string scratch_dir(const std::string& label) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("llmc_" + label + "_XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  REQUIRE(::mkdtemp(buf.data()) != nullptr);
  scratch_dirs().push_back(buf.data());
  return buf.data();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void expect_convert_rejects(const std::string& model, const std::string& what, const std::string& dir) {
  const std::string out = dir + "/out.onnx";
  auto r = run_cli("convert " + shell_quote(model) + " -o " + shell_quote(out));
  INFO(r.errors);
  CHECK(r.exit_code == 2);
  CHECK(r.errors.find(what) != std::string::npos);
  CHECK(std::count(r.errors.begin(), r.errors.end(), '\n') == 1);
  CHECK_FALSE(file_exists(out));
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

CommandResult run_shell(const std::string& command) {
  const std::string dir = scratch_dir("cmd");
  const std::string out = dir + "/stdout", err = dir + "/stderr";
  int rc = std::system((command + " >" + out + " 2>" + err).c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.output = read_text(out);
  r.errors = read_text(err);
  return r;
}

CommandResult run_cli(const std::string& args) {
  return run_shell(shell_quote(LLMC_BINARY) + " " + args);
}

double json_number(const std::string& json, const std::string& key) {
  std::smatch m;
  const std::regex re("\"" + key + "\":([-0-9.eE+]+)");
  REQUIRE(std::regex_search(json, m, re));
  return std::stod(m[1]);
}

std::string venv_python() {
  std::string py = std::string(LLMC_SOURCE_DIR) + "/.venv/bin/python";
  if (!file_exists(py)) {
    missing(".venv with onnxruntime is missing: run scripts/setup.sh");
    return "";
  }
  return py;
}

}  // namespace llmc::testing
