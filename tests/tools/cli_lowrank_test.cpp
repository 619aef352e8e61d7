// llmcompress lowrank end to end on the real stories260K: the report gives every layer's rank,
// parameters and bytes, --eval measures before/after; a recipe lowrank → int8-dynamic composes
// (the factors quantise like any MatMul, and --exclude of the original layer name reaches both
// factors); bad budgets, a missing --calib and a budget no layer can meet are refused, nothing
// written.
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <regex>

#include "formats/onnx_format.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {
int64_t count_ops(const std::string& path, const std::string& op, const std::string& name_part) {
  auto m = read_onnx(path);
  REQUIRE(m.is_ok());
  int64_t n = 0;
  for (const auto& node : m->graph.nodes) n += node.op_type == op && node.name.find(name_part) != std::string::npos;
  return n;
}
}  // namespace

TEST_CASE("lowrank --method svd-llm reports ranks and perplexity, composes with int8 in a recipe",
          "[cli][lowrank][llama2c]") {
  const std::string bin = data_path("llama2c/stories260K.bin"), tok = data_path("llama2c/tok512.bin");
  const std::string text = data_path("corpora/tinystories_val_prefix.txt");
  if (bin.empty() || tok.empty() || text.empty()) return;
  const std::string dir = scratch_dir("lowrank_cli");
  const std::string calib = " --calib " + shell_quote(text) + " --calib-samples 8";
  const std::string eval = " --eval " + shell_quote(text) + " --eval-limit 2000";
  auto r = run_cli("lowrank " + shell_quote(bin) + " --tokenizer " + shell_quote(tok) + " -o " + shell_quote(dir + "/lr.onnx") +
                   " --method svd-llm --param-ratio 0.8 --exclude /model/layers.0/mlp/down_proj/MatMul" + calib + eval +
                   " --json");
  INFO(r.errors);
  REQUIRE(r.exit_code == 0);
  const std::regex layer("svd-llm rank \\d+ of \\d+: \\d+ -> \\d+ parameters \\(\\d+ -> \\d+ bytes\\), relative output error");
  const int64_t factorised = std::distance(std::sregex_iterator(r.output.begin(), r.output.end(), layer), std::sregex_iterator());
  CHECK(factorised > 10);
  CHECK(r.output.find("excluded by exclude") != std::string::npos);
  CHECK(count_ops(dir + "/lr.onnx", "MatMul", "/model/layers.0/mlp/down_proj/MatMul.lowrank") == 0);
  const double ppl_lowrank = json_number(r.output, "perplexity_after");
  CHECK(ppl_lowrank > json_number(r.output, "perplexity_before"));
  CHECK(run_cli("run " + shell_quote(dir + "/lr.onnx") + " --prompt 'Once upon a time' --tokens 4").exit_code == 0);

  // The recipe: the same factorisation, then int8-dynamic over every MatMul, factors included.
  const std::string recipe = dir + "/r.yaml";
  std::ofstream(recipe) << "input: " << bin << "\ntokenizer: " << tok << "\ncalibration:\n  data: " << text
                        << "\n  samples: 8\nsteps:\n  - pass: factorize-svd-llm\n    param-ratio: 0.8\n"
                        << "    exclude: /model/layers.0/mlp/down_proj/MatMul\n  - quantize-int8-dynamic\neval:\n  text: "
                        << text << "\n  limit: 2000\n";
  auto p = run_cli("pipeline " + shell_quote(recipe) + " -o " + shell_quote(dir + "/lr_int8.onnx") + " --json");
  INFO(p.errors);
  REQUIRE(p.exit_code == 0);
  // Every factor is an integer product now (MatMul over activations, QKᵀ and PV, stays float).
  CHECK(count_ops(dir + "/lr_int8.onnx", "MatMul", ".lowrank_") == 0);
  CHECK(count_ops(dir + "/lr_int8.onnx", "MatMulInteger", ".lowrank_") == 2 * factorised);
  const double ppl_both = json_number(p.output, "perplexity_after");
  INFO("perplexity low-rank " << ppl_lowrank << ", low-rank + int8 " << ppl_both);
  CHECK(std::fabs(ppl_both / ppl_lowrank - 1) < 0.03);

  // A later pass's --exclude by the original layer name reaches both of its factors.
  auto q = run_cli("quantize " + shell_quote(dir + "/lr.onnx") + " -o " + shell_quote(dir + "/q.onnx") +
                   " --mode int8-dynamic --exclude /model/layers.1/self_attn/q_proj/MatMul");
  INFO(q.errors);
  REQUIRE(q.exit_code == 0);
  CHECK(count_ops(dir + "/q.onnx", "MatMul", "/model/layers.1/self_attn/q_proj/MatMul.lowrank_") == 2);
}

TEST_CASE("lowrank bad input: budgets, method, calibration, a budget no layer meets", "[cli][lowrank][bad-input]") {
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (bin.empty()) return;
  const std::string dir = scratch_dir("lowrank_bad");
  for (const auto& [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"--method svd --rank-ratio 0", "option 'rank-ratio' must be a number in (0, 1]"},
           {"--method svd --rank-ratio 1.5", "option 'rank-ratio' must be a number in (0, 1]"},
           {"--method svd --energy 0", "option 'energy' must be a number in (0, 1]"},
           {"--method svd --energy 1.2", "option 'energy' must be a number in (0, 1]"},
           {"--method svd --param-ratio -0.5", "option 'param-ratio' must be a number in (0, 1]"},
           {"--method svd --rank-ratio 0.2 --energy 0.9", "give one of rank-ratio, energy or param-ratio, not 2"},
           {"--method asvd --rank-ratio 0.2", "needs calibration data: give --calib DATA"},
           {"--method svd-llm --energy 0.9", "needs calibration data: give --calib DATA"},
           {"--method tucker --rank-ratio 0.2", "unknown --method 'tucker' (available: svd, asvd, svd-llm)"},
           {"--method svd --rank-ratio 1", "factorises no layer"},
           {"--method svd --param-ratio 0.004", "rank 1 in each already needs"},
           {"--method svd --rank-ratio 0.2 --alpha 0.5", "--alpha is for --method asvd"},
       }) {
    auto bad = run_cli("lowrank " + shell_quote(bin) + " -o " + shell_quote(dir + "/bad.onnx") + " " + args);
    INFO(args << " -> " << bad.errors);
    CHECK(bad.exit_code == 2);
    CHECK(bad.errors.find(says) != std::string::npos);
    CHECK(std::count(bad.errors.begin(), bad.errors.end(), '\n') == 1);
    CHECK_FALSE(file_exists(dir + "/bad.onnx"));
  }
}

// The real SmolLM2-135M (GGUF import), its first four layers factorised to 60% of their
// parameters: the same ordering as stories260K, much wider apart (plain SVD of a pretrained
// LLM's layers destroys it; whitening keeps it usable). The full table (every layer, 80% and
// 60%) is scripts/bench_lowrank.sh's.
TEST_CASE("lowrank on SmolLM2-135M layers 0-3 at 60%: svd-llm < asvd < svd in perplexity", "[cli][lowrank][smollm2]") {
  const std::string gguf = model_path(kSmolLm2Gguf), text = data_path("corpora/tinystories_val_prefix.txt");
  if (gguf.empty() || text.empty()) return;
  const std::string dir = scratch_dir("lowrank_smollm2");
  std::map<std::string, double> ppl;
  double dense = 0;
  for (const char* method : {"svd", "asvd", "svd-llm"}) {
    auto r = run_cli("lowrank " + shell_quote(gguf) + " -o " + shell_quote(dir + "/m.onnx") + " --method " + method +
                     " --param-ratio 0.6 --include '/model/layers\\.[0-3]/.*' --calib " + shell_quote(text) +
                     " --calib-samples 16 --eval " + shell_quote(text) + " --eval-limit 512 --json");
    INFO(method << ": " << r.errors);
    REQUIRE(r.exit_code == 0);
    dense = json_number(r.output, "perplexity_before");
    ppl[method] = json_number(r.output, "perplexity_after");
  }
  std::printf("SmolLM2-135M, layers 0-3 at param-ratio 0.6, perplexity over 512 tokens: dense %.3f, svd %.1f, asvd %.1f, "
              "svd-llm %.3f\n", dense, ppl["svd"], ppl["asvd"], ppl["svd-llm"]);
  CHECK(ppl["svd-llm"] < ppl["asvd"]);
  CHECK(ppl["asvd"] < ppl["svd"]);
  CHECK(ppl["svd-llm"] < 3 * dense);
}
