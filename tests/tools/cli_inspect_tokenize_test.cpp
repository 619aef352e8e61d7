// inspect works on every model under $LLMC_DATA (text and valid JSON that agrees with the
// reader); tokenize prints ids and writes token files numpy reads.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "formats/llama2c_tokenizer.h"
#include "formats/model_loader.h"
#include "formats/npy.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;
namespace fs = std::filesystem;

TEST_CASE("inspect works on every model under LLMC_DATA, as text and as JSON", "[cli][inspect]") {
  const std::string root = data_path("onnx-node-tests");
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (root.empty() || bin.empty()) return;
  const std::string py = venv_python();
  if (py.empty()) return;
  std::vector<std::string> models{bin};
  for (const auto& e : fs::recursive_directory_iterator(std::getenv("LLMC_DATA")))
    if (e.path().extension() == ".onnx") models.push_back(e.path().string());
  REQUIRE(models.size() > 300);
  const std::string dir = scratch_dir("inspect");
  std::ofstream manifest(dir + "/manifest.tsv");
  int k = 0;
  for (const auto& m : models) {
    auto text = run_cli("inspect " + shell_quote(m));
    INFO(m << ": " << text.errors);
    REQUIRE(text.exit_code == 0);
    REQUIRE(text.output.find("ops (") != std::string::npos);
    auto json = run_cli("inspect --json " + shell_quote(m));
    REQUIRE(json.exit_code == 0);
    const std::string jpath = dir + "/" + std::to_string(k++) + ".json";
    std::ofstream(jpath) << json.output;
    auto loaded = load_model(m);
    REQUIRE(loaded.is_ok());
    size_t params = 0;
    for (const auto& t : loaded->graph.initializers) params += t.numel();
    manifest << jpath << "\t" << loaded->graph.nodes.size() << "\t" << params << "\n";
  }
  manifest.close();
  // An independent JSON parser must accept every document and see the reader's counts.
  const std::string check =
      "import json,sys\n"
      "bad=0\n"
      "for line in open(sys.argv[1]):\n"
      "  p,n,params=line.rstrip('\\n').split('\\t')\n"
      "  d=json.load(open(p))\n"
      "  if d['nodes']!=int(n) or d['parameters']!=int(params) or sum(d['ops'].values())!=int(n):\n"
      "    bad+=1; print('mismatch',p,d['file'])\n"
      "sys.exit(1 if bad else 0)\n";
  std::ofstream(dir + "/check.py") << check;
  auto r = run_shell(shell_quote(py) + " " + shell_quote(dir + "/check.py") + " " + shell_quote(dir + "/manifest.tsv"));
  INFO(r.output << r.errors);
  CHECK(r.exit_code == 0);
}

TEST_CASE("inspect of a llama2.c checkpoint reports its real parameter count", "[cli][inspect][llama2c]") {
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (bin.empty()) return;
  auto r = run_cli("inspect --json " + shell_quote(bin));
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("\"format\":\"llama2.c checkpoint\"") != std::string::npos);
  // 260,032 trained parameters + the tied classifier stored again as lm_head (512*64) + RoPE
  // tables (2*512*4) + small i64 shape constants.
  CHECK(r.output.find("\"model.embed_tokens.weight\"") != std::string::npos);
  CHECK(r.output.find("\"input_ids\"") != std::string::npos);
}

TEST_CASE("tokenize prints llama2.c ids and writes int32 token files", "[cli][tokenize]") {
  const std::string tok_path = data_path("llama2c/tok512.bin");
  const std::string bin = data_path("llama2c/stories260K.bin");
  const std::string text = data_path("corpora/tinystories_val_prefix.txt");
  if (tok_path.empty() || bin.empty() || text.empty()) return;
  auto tok = Llama2cTokenizer::from_file(tok_path);
  REQUIRE(tok.is_ok());
  const auto expected = tok->encode("Once upon a time", true, false);
  std::string expected_text;
  for (size_t i = 0; i < expected.size(); ++i) expected_text += (i ? " " : "") + std::to_string(expected[i]);

  auto plain = run_cli("tokenize " + shell_quote(tok_path) + " --text 'Once upon a time'");
  REQUIRE(plain.exit_code == 0);
  CHECK(plain.output == expected_text + "\n");

  // The tokenizer travels inside the converted model.
  const std::string dir = scratch_dir("tokenize");
  const std::string model = dir + "/s.onnx";
  REQUIRE(run_cli("convert " + shell_quote(bin) + " --tokenizer " + shell_quote(tok_path) + " -o " +
                  shell_quote(model)).exit_code == 0);
  auto via_model = run_cli("tokenize " + shell_quote(model) + " --text 'Once upon a time' --json");
  REQUIRE(via_model.exit_code == 0);
  CHECK(via_model.output.find("\"ids\":[" + std::to_string(expected[0])) != std::string::npos);
  // A model without one says how to supply it.
  const std::string bare = dir + "/bare.onnx";
  REQUIRE(run_cli("convert " + shell_quote(bin) + " -o " + shell_quote(bare)).exit_code == 0);
  auto none = run_cli("tokenize " + shell_quote(bare) + " --text hi");
  CHECK(none.exit_code == 2);
  CHECK(none.errors.find("--tokenizer") != std::string::npos);

  const std::string ids = dir + "/ids.npy";
  auto file = run_cli("tokenize " + shell_quote(model) + " --file " + shell_quote(text) + " -o " + shell_quote(ids));
  INFO(file.errors);
  REQUIRE(file.exit_code == 0);
  auto t = read_npy(ids, "ids");
  REQUIRE(t.is_ok());
  CHECK(t->dtype() == DType::kI32);
  REQUIRE(t->dims().size() == 1);
  const auto want = encode_lines(tok.value(), read_text(text));
  REQUIRE(t->numel() == static_cast<int64_t>(want.size()));
  CHECK(std::equal(want.begin(), want.end(), t->data_as<int32_t>()));
  int64_t bos = std::count(t->data_as<int32_t>(), t->data_as<int32_t>() + t->numel(), 1);
  int64_t lines = 0;
  std::ifstream in(text);
  for (std::string line; std::getline(in, line);) lines += !line.empty();
  CHECK(bos == lines);
}
