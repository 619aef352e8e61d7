// llmcompress prune end to end on the real stories260K: the report names every pruned weight
// with its sparsity, --eval measures before/after, bad flags are refused before any work.
#include <catch2/catch.hpp>
#include <regex>

#include "tests/support/test_data.h"

using namespace llmc::testing;

TEST_CASE("prune --method wanda reports per-weight sparsity and perplexity", "[cli][prune][llama2c]") {
  const std::string bin = data_path("llama2c/stories260K.bin"), tok = data_path("llama2c/tok512.bin");
  const std::string text = data_path("corpora/tinystories_val_prefix.txt");
  if (bin.empty() || tok.empty() || text.empty()) return;
  const std::string dir = scratch_dir("prune_cli");
  const std::string common = shell_quote(bin) + " --tokenizer " + shell_quote(tok) + " -o " + shell_quote(dir + "/p.onnx");
  auto r = run_cli("prune " + common + " --method wanda --sparsity 0.5 --calib " + shell_quote(text) +
                   " --calib-samples 8 --eval " + shell_quote(text) + " --eval-limit 4000 --json");
  INFO(r.errors);
  REQUIRE(r.exit_code == 0);
  const std::regex pruned("wanda row, \\d+ of \\d+ weights zeroed, sparsity 0\\.5\"");
  CHECK(std::distance(std::sregex_iterator(r.output.begin(), r.output.end(), pruned), std::sregex_iterator()) == 35);
  CHECK(r.output.find("LM head") != std::string::npos);
  CHECK(r.output.find("\"perplexity_after\"") != std::string::npos);
  CHECK(run_cli("run " + shell_quote(dir + "/p.onnx") + " --prompt 'Once upon a time' --tokens 4").exit_code == 0);

  // Artifacts are the same bytes whatever --threads (the manifest holds no times).
  const std::string calib = " --calib " + shell_quote(text) + " --calib-samples 4 --calib-seq-len 64";
  for (const char* threads : {"1", "2"})
    REQUIRE(run_cli("prune " + common.substr(0, common.find(" -o ")) + " -o " + shell_quote(dir + "/sg" + threads + ".onnx") +
                    " --method sparsegpt" + calib + " --threads " + threads).exit_code == 0);
  CHECK(read_text(dir + "/sg1.onnx") == read_text(dir + "/sg2.onnx"));

  for (const auto& [args, mentions] : std::vector<std::pair<std::string, std::string>>{
           {"--method wanda", "needs calibration data: give --calib DATA"},
           {"--method obs", "unknown --method 'obs'"},
           {"--sparsity 1.5", "option 'sparsity' must be a number in (0, 1)"},
           {"--pattern 4:2", "N must be smaller than M"},
           {"--pattern 2:4 --sparsity 0.5", "not both"},
       }) {
    auto bad = run_cli("prune " + shell_quote(bin) + " -o " + shell_quote(dir + "/bad.onnx") + " " + args);
    INFO(args << " -> " << bad.errors);
    CHECK(bad.exit_code == 2);
    CHECK(bad.errors.find(mentions) != std::string::npos);
    CHECK_FALSE(file_exists(dir + "/bad.onnx"));
  }
}

TEST_CASE("prune --structured: flags and ratios checked before work", "[cli][prune][ffn]") {
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (bin.empty()) return;
  const std::string dir = scratch_dir("prune_structured_flags");
  const std::string base = "prune " + shell_quote(bin) + " -o " + shell_quote(dir + "/out.onnx");
  for (const auto& [flags, says] : std::vector<std::pair<std::string, std::string>>{
           {"--structured heads --ratio 0.1 --calib " + shell_quote(data_path("corpora/tinystories_val_prefix.txt")) +
                " --tokenizer " + shell_quote(data_path("llama2c/tok512.bin")),
            "removes no KV head group"},
           {"--structured rows", "unknown --structured 'rows'"},
           {"--structured ffn --sparsity 0.5", "--structured removes whole neurons"},
           {"--ratio 0.25", "--ratio and --multiple-of need --structured ffn|heads"},
           {"--structured ffn --ratio 1.5", "ratio"},
           {"--structured ffn", "needs calibration data"}}) {
    auto r = run_cli(base + " " + flags);
    INFO(flags << ": " << r.errors);
    CHECK(r.exit_code == 2);
    CHECK(r.errors.find(says) != std::string::npos);
    CHECK_FALSE(file_exists(dir + "/out.onnx"));
  }
}
