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

TEST_CASE("prune --pattern 2:4 --packed writes NMSparseMatMul that runs and matches the unpacked model", "[cli][prune][nm_sparse][llama2c]") {
  const std::string bin = data_path("llama2c/stories260K.bin"), tok = data_path("llama2c/tok512.bin");
  const std::string text = data_path("corpora/tinystories_val_prefix.txt");
  if (bin.empty() || tok.empty() || text.empty()) return;
  const std::string dir = scratch_dir("prune_packed_cli");
  const std::string base = "prune " + shell_quote(bin) + " --tokenizer " + shell_quote(tok) + " --pattern 2:4 --eval " +
                           shell_quote(text) + " --eval-limit 1000 --json";
  auto plain = run_cli(base + " -o " + shell_quote(dir + "/p.onnx"));
  auto packed = run_cli(base + " --packed -o " + shell_quote(dir + "/pp.onnx"));
  INFO(packed.errors);
  REQUIRE(plain.exit_code == 0);
  REQUIRE(packed.exit_code == 0);
  const std::regex packed_decision("\"packed\"");
  CHECK(std::distance(std::sregex_iterator(packed.output.begin(), packed.output.end(), packed_decision),
                      std::sregex_iterator()) == 35);
  CHECK(read_text(dir + "/pp.onnx").find("com.llmcompress") != std::string::npos);
  CHECK(read_text(dir + "/pp.onnx").size() < read_text(dir + "/p.onnx").size() * 3 / 4);
  // Same perplexity after pruning, packed or not (to the printed digits: summation order only).
  const std::regex after("\"perplexity_after\": *([0-9.]+)");
  std::smatch a, b;
  REQUIRE(std::regex_search(plain.output, a, after));
  REQUIRE(std::regex_search(packed.output, b, after));
  CHECK(std::stod(a[1]) == Approx(std::stod(b[1])).epsilon(1e-4));
  auto gen = run_cli("run " + shell_quote(dir + "/pp.onnx") + " --prompt 'Once upon a time' --tokens 8");
  CHECK(gen.exit_code == 0);
  CHECK(gen.output == run_cli("run " + shell_quote(dir + "/p.onnx") + " --prompt 'Once upon a time' --tokens 8").output);
  for (const auto& [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"--packed", "--packed stores --pattern 2:4 or 1:4"},
           {"--sparsity 0.5 --packed", "--packed stores --pattern 2:4 or 1:4"},
           {"--pattern 2:8 --packed", "--packed stores --pattern 2:4 or 1:4"},
           {"--structured ffn --packed", "--packed are for unstructured pruning"}}) {
    auto r = run_cli("prune " + shell_quote(bin) + " -o " + shell_quote(dir + "/bad.onnx") + " " + args);
    INFO(args << ": " << r.errors);
    CHECK(r.exit_code == 2);
    CHECK(r.errors.find(says) != std::string::npos);
    CHECK_FALSE(file_exists(dir + "/bad.onnx"));
  }
}
