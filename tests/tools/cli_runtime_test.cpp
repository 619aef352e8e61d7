// The runtime's commands end to end: generation reproduces llama2.c's golden text, sampling is
// seeded, run writes every output, bench and synth produce sane numbers.
#include <catch2/catch.hpp>

#include "formats/npy.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {
std::string stories_onnx(const std::string& dir) {
  const std::string bin = data_path("llama2c/stories260K.bin");
  const std::string tok = data_path("llama2c/tok512.bin");
  if (bin.empty() || tok.empty()) return "";
  const std::string out = dir + "/stories260K.onnx";
  REQUIRE(run_cli("convert " + shell_quote(bin) + " --tokenizer " + shell_quote(tok) + " -o " + shell_quote(out)).exit_code == 0);
  return out;
}
}  // namespace

TEST_CASE("run --prompt reproduces llama2.c's greedy golden text with the KV cache", "[cli][run][llama2c]") {
  const std::string golden = data_path("llama2c/golden/stories260K_t0_n64_prompt_once_upon_a_time.txt");
  if (golden.empty()) return;
  const std::string model = stories_onnx(scratch_dir("run_golden"));
  if (model.empty()) return;
  // run.c ran 64 steps, printing a piece at each: 4 forced prompt tokens, then 60 generated.
  auto r = run_cli("run " + shell_quote(model) + " --prompt 'Once upon a time' --tokens 60");
  INFO(r.errors);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output == read_text(golden));
}

TEST_CASE("run --prompt sampling is reproducible with a seed", "[cli][run]") {
  const std::string model = stories_onnx(scratch_dir("run_seed"));
  if (model.empty()) return;
  const std::string cmd = "run " + shell_quote(model) + " --prompt 'The cat' --tokens 40 --temperature 1.0 --top-k 40 ";
  auto a = run_cli(cmd + "--seed 7"), b = run_cli(cmd + "--seed 7"), c = run_cli(cmd + "--seed 8");
  REQUIRE((a.exit_code == 0 && b.exit_code == 0 && c.exit_code == 0));
  CHECK(a.output == b.output);
  CHECK(a.output != c.output);
  CHECK(a.output.rfind("The cat", 0) == 0);
}

TEST_CASE("run writes every graph output as .npy - bad inputs are named", "[cli][run]") {
  const std::string dir = scratch_dir("run_npy");
  const std::string model = stories_onnx(dir);
  if (model.empty()) return;
  std::vector<int64_t> ids{1, 403, 407};
  REQUIRE(write_npy(dir + "/ids.npy", Tensor::from_vector("ids", DType::kI64, {1, 3}, ids)).is_ok());
  REQUIRE(write_npy(dir + "/past.npy", Tensor::zeros("p", DType::kF32, {1, 4, 0, 8})).is_ok());
  std::string args = "run " + shell_quote(model) + " --output-dir " + shell_quote(dir + "/out") + " --input input_ids=" +
                     shell_quote(dir + "/ids.npy");
  for (int l = 0; l < 5; ++l)
    for (const char* kv : {"key", "value"})
      args += " --input past_key_values." + std::to_string(l) + "." + kv + "=" + shell_quote(dir + "/past.npy");
  auto r = run_cli(args);
  INFO(r.errors);
  REQUIRE(r.exit_code == 0);
  auto logits = read_npy(dir + "/out/logits.npy", "logits");
  REQUIRE(logits.is_ok());
  CHECK(logits->dims() == std::vector<int64_t>{1, 3, 512});
  CHECK(file_exists(dir + "/out/present.4.value.npy"));
  // A wrong dtype for input_ids is refused, naming the input.
  REQUIRE(write_npy(dir + "/ids_f.npy", Tensor::zeros("ids", DType::kF32, {1, 3})).is_ok());
  auto bad = run_cli("run " + shell_quote(model) + " --output-dir " + shell_quote(dir + "/bad") +
                     " --input input_ids=" + shell_quote(dir + "/ids_f.npy"));
  CHECK(bad.exit_code == 2);
  CHECK(bad.errors.find("input_ids") != std::string::npos);
}

TEST_CASE("synth and bench: a seeded model, positive timings, RSS reported", "[cli][bench][synth]") {
  const std::string dir = scratch_dir("bench");
  auto s = run_cli("synth --preset llama-tiny --seed 3 -o " + shell_quote(dir + "/tiny.onnx"));
  INFO(s.errors);
  REQUIRE(s.exit_code == 0);
  auto b = run_cli("bench " + shell_quote(dir + "/tiny.onnx") + " --prompt-len 16 --tokens 8 --json --threads 2");
  INFO(b.errors);
  REQUIRE(b.exit_code == 0);
  for (const char* key : {"\"prefill_ms\":", "\"decode_ms_p50\":", "\"peak_rss_bytes\":", "\"threads\":2"})
    CHECK(b.output.find(key) != std::string::npos);
  CHECK(b.output.find("\"prefill_ms\":0,") == std::string::npos);
  // Two models interleaved: one JSON object listing both, the first the baseline of the ratios.
  auto s2 = run_cli("synth --preset llama-tiny --seed 4 -o " + shell_quote(dir + "/tiny2.onnx"));
  REQUIRE(s2.exit_code == 0);
  auto two = run_cli("bench " + shell_quote(dir + "/tiny.onnx") + " " + shell_quote(dir + "/tiny2.onnx") +
                     " --prompt-len 16 --tokens 8 --json --threads 2");
  INFO(two.errors);
  REQUIRE(two.exit_code == 0);
  for (const char* key : {"\"interleaved\":true", "\"models\":[", "\"decode_speedup_vs_first\":1,", "tiny2.onnx", "\"decode_ms\":["})
    CHECK(two.output.find(key) != std::string::npos);
  auto table = run_cli("bench " + shell_quote(dir + "/tiny.onnx") + " " + shell_quote(dir + "/tiny2.onnx") +
                       " --prompt-len 16 --tokens 4 --threads 2");
  REQUIRE(table.exit_code == 0);
  CHECK(table.output.find("2 models interleaved") != std::string::npos);
  CHECK(run_cli("bench " + shell_quote(dir + "/tiny.onnx") + " " + shell_quote(dir + "/missing.onnx")).exit_code != 0);
  auto e = run_cli("eval " + shell_quote(dir + "/tiny.onnx") + " --tokens " + shell_quote(dir + "/none.npy"));
  CHECK(e.exit_code == 2);
  CHECK(run_cli("synth --preset nope -o " + shell_quote(dir + "/x.onnx")).exit_code == 2);
}
