// The CLI's file contract: commands never modify what they read, and a failed write leaves an
// existing output exactly as it was (the write goes to a temp file renamed only on success).
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>

#include "tests/support/hostile_models.h"
#include "tests/support/test_data.h"

using namespace llmc::testing;
namespace fs = std::filesystem;

namespace {

// Every regular file under `dir` with its bytes.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files[e.path().filename().string()] = read_text(e.path().string());
  return files;
}

}  // namespace

TEST_CASE("convert, quantize and eval leave every input byte-identical", "[cli][hostile]") {
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (bin.empty()) return;
  const std::string in = scratch_dir("contract_in"), out = scratch_dir("contract_out");
  fs::copy_file(bin, in + "/stories.bin");
  const auto before_convert = snapshot(in);
  REQUIRE(run_cli("convert " + shell_quote(in + "/stories.bin") + " -o " + shell_quote(in + "/m.onnx")).exit_code == 0);
  auto after = snapshot(in);
  CHECK(after.at("stories.bin") == before_convert.at("stories.bin"));

  npy_i64(in, "tokens", {40}, std::vector<int64_t>(40, 5));
  const auto before = snapshot(in);
  auto q = run_cli("quantize " + shell_quote(in + "/m.onnx") + " --mode int8-dynamic -o " + shell_quote(out + "/q.onnx"));
  INFO(q.errors);
  REQUIRE(q.exit_code == 0);
  auto e = run_cli("eval " + shell_quote(in + "/m.onnx") + " --tokens " + shell_quote(in + "/tokens.npy") + " --ctx 16");
  INFO(e.errors);
  REQUIRE(e.exit_code == 0);
  CHECK(snapshot(in) == before);  // names and bytes: nothing written beside the inputs either
}

TEST_CASE("a failed write leaves the existing output's old bytes", "[cli][hostile]") {
  const std::string dir = scratch_dir("contract_write");
  const std::string model = one_node_model(dir, "Relu", {"x"}, {1}, 1);
  const std::string out = dir + "/out/m.onnx";
  fs::create_directories(dir + "/out");
  write_bytes(out, "old bytes");
  // The write itself fails: a file-size limit below the model's size (SIGXFSZ ignored, so
  // write() returns EFBIG as on a full disk).
  auto r = run_shell("trap '' XFSZ; ulimit -f 0; " + shell_quote(LLMC_BINARY) + " convert " + shell_quote(model) +
                     " -o " + shell_quote(out));
  INFO(r.errors);
  CHECK(r.exit_code == 2);
  CHECK(read_text(out) == "old bytes");
  CHECK(snapshot(dir + "/out").size() == 1);  // no temp file left behind
  // The output's parent is a regular file: refused, the file untouched.
  write_bytes(dir + "/plain", "plain bytes");
  auto p = run_cli("convert " + shell_quote(model) + " -o " + shell_quote(dir + "/plain/m.onnx"));
  INFO(p.errors);
  CHECK(p.exit_code == 2);
  CHECK(read_text(dir + "/plain") == "plain bytes");
}
