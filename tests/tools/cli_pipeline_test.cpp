// llmcompress pipeline end to end on the real stories260K: a recipe and the equivalent quantize
// command line give the same bytes, runs are byte-identical whatever --threads, the example
// recipes pass their asserts, an impossible assert exits 1 with the artifact and report
// written, and every bad recipe is refused before work starts, naming file, line and key.
#include <catch2/catch.hpp>
#include <fstream>
#include <regex>

#include "passes/registry.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {
std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// The data paths of stories260K as recipe lines (absolute: recipes in a scratch folder).
struct Stories {
  std::string bin, tok, text;
  bool ok() const { return !bin.empty() && !tok.empty() && !text.empty(); }
  std::string head() const {
    return "input: " + bin + "\ntokenizer: " + tok + "\n";
  }
  std::string calibration() const { return "calibration:\n  data: " + text + "\n  samples: 8\n  seq_len: 64\n"; }
  std::string eval() const { return "eval:\n  text: " + text + "\n  limit: 4000\n"; }
};

Stories stories() {
  return {data_path("llama2c/stories260K.bin"), data_path("llama2c/tok512.bin"),
          data_path("corpora/tinystories_val_prefix.txt")};
}

const char* kSmoothStatic =
    "steps:\n  - pass: smooth-quant\n    alpha: 0.5\n  - pass: quantize-int8-static\n    method: entropy\n";
}  // namespace

TEST_CASE("pipeline recipe equals the quantize command line and is byte-identical across runs and threads",
          "[cli][pipeline][llama2c]") {
  const Stories s = stories();
  if (!s.ok()) return;
  const std::string dir = scratch_dir("pipeline_same");
  const std::string recipe = dir + "/r.yaml";
  write_text(recipe, s.head() + s.calibration() + kSmoothStatic + s.eval());

  auto r1 = run_cli("pipeline " + shell_quote(recipe) + " -o " + shell_quote(dir + "/a.onnx") + " --threads 1");
  INFO(r1.errors);
  REQUIRE(r1.exit_code == 0);
  auto r2 = run_cli("pipeline " + shell_quote(recipe) + " -o " + shell_quote(dir + "/b.onnx") + " --threads 2 --json");
  INFO(r2.errors);
  REQUIRE(r2.exit_code == 0);
  CHECK(file_bytes(dir + "/a.onnx") == file_bytes(dir + "/b.onnx"));
  CHECK(file_exists(dir + "/a.onnx.report.json"));
  CHECK(r2.output.find("\"perplexity_after\"") != std::string::npos);

  auto q = run_cli("quantize " + shell_quote(s.bin) + " --tokenizer " + shell_quote(s.tok) + " -o " +
                   shell_quote(dir + "/q.onnx") + " --mode int8-static --method entropy --smoothquant 0.5 --calib " +
                   shell_quote(s.text) + " --calib-samples 8 --calib-seq-len 64 --eval " + shell_quote(s.text) +
                   " --eval-limit 4000");
  INFO(q.errors);
  REQUIRE(q.exit_code == 0);
  CHECK(file_bytes(dir + "/q.onnx") == file_bytes(dir + "/a.onnx"));

  auto p = run_cli("pipeline " + shell_quote(s.bin) + " --tokenizer " + shell_quote(s.tok) +
                   " --passes 'smooth-quant{alpha=0.50},quantize-int8-static{method=entropy}' --calib " +
                   shell_quote(s.text) + " --calib-samples 8 --calib-seq-len 64 --eval " + shell_quote(s.text) +
                   " --eval-limit 4000 -o " + shell_quote(dir + "/p.onnx") + " --keep-intermediate " +
                   shell_quote(dir + "/steps"));
  INFO(p.errors);
  REQUIRE(p.exit_code == 0);
  CHECK(file_bytes(dir + "/p.onnx") == file_bytes(dir + "/a.onnx"));
  CHECK(file_exists(dir + "/steps/01-smooth-quant.onnx"));
  CHECK(file_exists(dir + "/steps/02-quantize-int8-static.onnx"));

  // The manifest names the input by its SHA-256 (checked with coreutils) and carries the recipe.
  auto inspect = run_cli("inspect " + shell_quote(dir + "/a.onnx") + " --json");
  REQUIRE(inspect.exit_code == 0);
  auto sum = run_shell("sha256sum " + shell_quote(s.bin));
  REQUIRE(sum.exit_code == 0);
  const std::string digest = sum.output.substr(0, 64);
  CHECK(inspect.output.find(digest) != std::string::npos);
  CHECK(inspect.output.find("quantize-int8-static") != std::string::npos);
}

TEST_CASE("example recipes in recipes/ pass their asserts", "[cli][pipeline][llama2c]") {
  if (data_path("llama2c/stories260K.bin").empty()) return;
  const std::string dir = scratch_dir("pipeline_examples");
  int ran = 0;
  for (const char* name : {"stories260k_int8_static.yaml", "stories260k_int8_dynamic.json", "stories260k_fp16.yaml"}) {
    const std::string out = dir + "/" + name + ".onnx";
    auto r = run_cli("pipeline " + shell_quote(std::string(LLMC_SOURCE_DIR) + "/recipes/" + name) + " -o " +
                     shell_quote(out) + " --json");
    INFO(name << ": " << r.errors);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("\"passed\":true") != std::string::npos);
    CHECK(file_exists(out));
    ++ran;
  }
  CHECK(ran == 3);
}

TEST_CASE("a failed assert writes the artifact and the report and exits 1", "[cli][pipeline][llama2c]") {
  const Stories s = stories();
  if (!s.ok()) return;
  const std::string dir = scratch_dir("pipeline_assert");
  const std::string recipe = dir + "/r.yaml";
  write_text(recipe, s.head() + "steps:\n  - quantize-int8-dynamic\n" + s.eval() +
                         "bench:\n  prompt_len: 8\n  tokens: 8\nasserts:\n  max_ppl_increase: 0%\n"
                         "  min_decode_speedup: 1000\n  max_size_ratio: 0.9\n");
  auto r = run_cli("pipeline " + shell_quote(recipe) + " -o " + shell_quote(dir + "/out.onnx"));
  INFO(r.output << r.errors);
  CHECK(r.exit_code == 1);
  CHECK(r.errors.find("min_decode_speedup") != std::string::npos);
  CHECK(file_exists(dir + "/out.onnx"));
  const std::string report = read_text(dir + "/out.onnx.report.json");
  CHECK(report.find("\"passed\":false") != std::string::npos);
  CHECK(report.find("\"metric\":\"max_size_ratio\",\"limit\":0.9") != std::string::npos);
  auto run = run_cli("run " + shell_quote(dir + "/out.onnx") + " --prompt 'Once upon a time' --tokens 4");
  CHECK(run.exit_code == 0);
}

TEST_CASE("bad recipes are refused before any work naming the file line and key", "[cli][pipeline][bad-input]") {
  const Stories s = stories();
  if (!s.ok()) return;
  const std::string dir = scratch_dir("pipeline_bad");
  const std::string out = dir + "/out.onnx";
  struct Case {
    std::string label, body, mentions;
  };
  const std::vector<Case> cases = {
      {"unknown pass", s.head() + "steps:\n  - pass: quantize-int9\n", "r.yaml:4: unknown pass 'quantize-int9'"},
      {"misspelt option", s.head() + s.calibration() + "steps:\n  - pass: smooth-quant\n    alpah: 0.5\n",
       "r.yaml:9: pass 'smooth-quant': unknown option 'alpah' (did you mean 'alpha'?)"},
      {"wrong type", s.head() + "steps:\n  - pass: quantize-int8-dynamic\n    per-tensor: maybe\n",
       "r.yaml:5: pass 'quantize-int8-dynamic': option 'per-tensor' must be a boolean"},
      {"out of range", s.head() + s.calibration() + "steps:\n  - pass: smooth-quant\n    alpha: 1.5\n",
       "r.yaml:9: pass 'smooth-quant': option 'alpha' must be a number in [0, 1], got '1.5'"},
      {"bad choice", s.head() + s.calibration() + "steps:\n  - pass: quantize-int8-static\n    method: best\n",
       "option 'method' must be one of minmax|percentile|entropy|mse"},
      {"missing calibration file", s.head() + "calibration:\n  data: no_such_corpus.txt\n" + kSmoothStatic,
       "r.yaml:3: calibration data '" + dir + "/no_such_corpus.txt' does not exist"},
      {"pass needs calibration", s.head() + kSmoothStatic, "r.yaml:4: pass 'smooth-quant' needs calibration data"},
      {"assert without eval", s.head() + "steps:\n  - quantize-fp16\nasserts:\n  max_ppl_increase: 1%\n",
       "r.yaml:6: assert 'max_ppl_increase' needs an 'eval' section"},
      {"speed assert without bench", s.head() + "steps:\n  - quantize-fp16\nasserts:\n  min_decode_speedup: 1.2\n",
       "r.yaml:6: assert 'min_decode_speedup' needs a 'bench' section"},
      {"unknown top-level key", s.head() + "stepz:\n  - quantize-fp16\n", "r.yaml:3: unknown key 'stepz' (did you mean 'steps'?)"},
      {"unknown section key", s.head() + "steps:\n  - quantize-fp16\neval:\n  txt: x\n",
       "r.yaml:6: unknown key 'txt' in eval (did you mean 'text'?)"},
      {"not yaml", "steps: [unclosed\n", "r.yaml:2: not valid YAML/JSON"},
      {"bad number", s.head() + "steps:\n  - quantize-fp16\n" + s.eval() + "asserts:\n  min_top1_agreement: high\n",
       "r.yaml:9: 'min_top1_agreement' must be a number"},
      {"option given twice", s.head() + "steps:\n  - pass: quantize-int8-dynamic\n    per-tensor: true\n    per-tensor: false\n",
       "r.yaml:6: 'per-tensor' is given twice"},
      {"section given twice", s.head() + "steps:\n  - quantize-fp16\nsteps:\n  - remove-unused\n", "r.yaml:5: 'steps' is given twice"},
      {"null boolean", s.head() + "steps:\n  - pass: quantize-int8-dynamic\n    reduce-range:\n",
       "option 'reduce-range' must be a boolean"},
      {"unused calibration", s.head() + s.calibration() + "steps:\n  - quantize-fp16\n",
       "r.yaml:3: calibration data is given but no step uses it"},
      {"huge sample count", s.head() + "calibration:\n  data: x.txt\n  samples: 4000000000000\n" + kSmoothStatic,
       "r.yaml:5: 'samples' must be an integer in [1, 1048576]"},
      {"context too long", s.head() + "steps:\n  - quantize-fp16\neval:\n  text: " + s.text + "\n  context: 4096\n",
       "r.yaml:5: context 4096 is longer than the model's maximum sequence length 512"},
  };
  for (const auto& c : cases) {
    write_text(dir + "/r.yaml", c.body);
    auto r = run_cli("pipeline " + shell_quote(dir + "/r.yaml") + " -o " + shell_quote(out));
    INFO(c.label << ": " << r.errors);
    CHECK(r.exit_code == 2);
    CHECK(r.errors.find(c.mentions) != std::string::npos);
    CHECK(r.errors.find('\n') == r.errors.size() - 1);  // one line
    CHECK(!file_exists(out));
  }
  // --passes one-liners are checked the same way.
  auto typo = run_cli("pipeline " + shell_quote(s.bin) + " --passes 'quantize-fp16{keep-io-type=false}' -o " + shell_quote(out));
  CHECK(typo.exit_code == 2);
  CHECK(typo.errors.find("--passes step 1: pass 'quantize-fp16': unknown option 'keep-io-type' (did you mean 'keep-io-types'?)") !=
        std::string::npos);
  CHECK(!file_exists(out));
  // A refining flag without the flag it refines is refused, not ignored.
  auto stray = run_cli("pipeline " + shell_quote(s.bin) + " --passes quantize-fp16 --calib-samples 4 -o " + shell_quote(out));
  CHECK(stray.exit_code == 2);
  CHECK(stray.errors.find("--calib") != std::string::npos);
  // ${VAR} values are taken as they are (a value naming itself does not loop).
  write_text(dir + "/r.yaml", "input: ${LOOPY}/m.onnx\nsteps:\n  - quantize-fp16\n");
  auto loopy = run_shell("LOOPY='${LOOPY}' " + std::string(LLMC_BINARY) + " pipeline " + shell_quote(dir + "/r.yaml") +
                         " -o " + shell_quote(out));
  CHECK(loopy.exit_code == 2);
  CHECK(loopy.errors.find("/${LOOPY}/m.onnx' does not exist") != std::string::npos);
}

TEST_CASE("passes lists every registered pass with its options", "[cli][pipeline]") {
  auto r = run_cli("passes --json");
  REQUIRE(r.exit_code == 0);
  for (const auto& name : pass_names()) CHECK(r.output.find("\"name\":\"" + name + "\"") != std::string::npos);
  CHECK(r.output.find("\"name\":\"alpha\",\"type\":\"float\",\"accepts\":\"a number in [0, 1]\",\"default\":\"0.5\"") !=
        std::string::npos);
  auto help = run_cli("quantize --help");
  CHECK(help.output.find("percentile-tails=abs") != std::string::npos);
}

TEST_CASE("progress lines appear on a terminal only and never with --quiet or --json", "[cli][pipeline][llama2c]") {
  const Stories s = stories();
  if (!s.ok()) return;
  const std::string dir = scratch_dir("pipeline_progress");
  const std::string recipe = dir + "/r.yaml";
  write_text(recipe, s.head() + "steps:\n  - quantize-int8-dynamic\n" + s.eval());
  const std::string cmd = std::string(LLMC_BINARY) + " pipeline " + shell_quote(recipe) + " -o " + shell_quote(dir + "/o.onnx");
  // util-linux `script` gives the command a pseudo-terminal, as a user's shell would.
  auto tty = run_shell("script -qec " + shell_quote(cmd) + " /dev/null");
  REQUIRE(tty.exit_code == 0);
  CHECK(tty.output.find("eval: windows") != std::string::npos);
  CHECK(tty.output.find("ETA") != std::string::npos);
  for (const char* flag : {" --quiet", " --json"}) {
    auto quiet = run_shell("script -qec " + shell_quote(cmd + flag) + " /dev/null");
    REQUIRE(quiet.exit_code == 0);
    CHECK(quiet.output.find("ETA") == std::string::npos);
  }
  auto piped = run_cli("pipeline " + shell_quote(recipe) + " -o " + shell_quote(dir + "/o.onnx"));
  REQUIRE(piped.exit_code == 0);
  CHECK(piped.output.find("ETA") == std::string::npos);
  CHECK(piped.errors.find("ETA") == std::string::npos);
}

TEST_CASE("the manifest hashes the input's external data too", "[cli][pipeline][llama2c]") {
  const Stories s = stories();
  if (!s.ok()) return;
  const std::string dir = scratch_dir("pipeline_external");
  REQUIRE(run_cli("convert " + shell_quote(s.bin) + " --tokenizer " + shell_quote(s.tok) + " -o " +
                  shell_quote(dir + "/ext.onnx") + " --external-data").exit_code == 0);
  REQUIRE(file_exists(dir + "/ext.onnx.data"));
  auto r = run_cli("pipeline " + shell_quote(dir + "/ext.onnx") + " --passes quantize-fp16 -o " + shell_quote(dir + "/o.onnx"));
  INFO(r.errors);
  REQUIRE(r.exit_code == 0);
  auto inspect = run_cli("inspect " + shell_quote(dir + "/o.onnx") + " --json");
  for (const char* f : {"/ext.onnx", "/ext.onnx.data"}) {
    auto sum = run_shell("sha256sum " + shell_quote(dir + f));
    REQUIRE(sum.exit_code == 0);
    INFO(f);
    CHECK(inspect.output.find(sum.output.substr(0, 64)) != std::string::npos);
  }
  CHECK(inspect.output.find("ext.onnx.data") != std::string::npos);
}
