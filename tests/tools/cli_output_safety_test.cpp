// Output safety (issue 12, item 5): an output that is an input under another name (the same
// path, a symlink, a hard link, the input's external data) is refused before a byte is written;
// so is an output that is not a regular file (a FIFO would have been replaced by a regular
// file); external data may not leave the model's folder through a symlink. Each case: exit 2,
// one line naming the file, the input byte-identical.
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>

#include "formats/npy.h"
#include "tests/support/hostile_models.h"
#include "tests/support/test_data.h"

using namespace llmc::testing;
namespace fs = std::filesystem;

namespace {

// A stories260K ONNX model with its weights in model.onnx.data beside it.
std::string external_model(const std::string& dir) {
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (bin.empty()) return "";
  auto r = run_cli("convert " + shell_quote(bin) + " --external-data -o " + shell_quote(dir + "/model.onnx"));
  INFO(r.errors);
  REQUIRE(r.exit_code == 0);
  REQUIRE(file_exists(dir + "/model.onnx.data"));
  return dir + "/model.onnx";
}

void expect_refused(const std::string& args, const std::string& mention, const std::vector<std::string>& unchanged) {
  std::vector<std::string> before;
  for (const auto& f : unchanged) before.push_back(read_text(f));
  auto r = run_cli(args);
  INFO(args);
  INFO(r.errors);
  CHECK(r.exit_code == 2);
  CHECK(r.errors.find(mention) != std::string::npos);
  CHECK(std::count(r.errors.begin(), r.errors.end(), '\n') == 1);
  for (size_t i = 0; i < unchanged.size(); ++i) CHECK(read_text(unchanged[i]) == before[i]);
}

}  // namespace

TEST_CASE("an output naming an input under any name is refused, the input intact", "[cli][hostile]") {
  const std::string dir = scratch_dir("out_is_input");
  const std::string model = external_model(dir);
  if (model.empty()) return;
  const std::string data = dir + "/model.onnx.data";
  const std::vector<std::string> inputs{model, data};
  const std::string q = "quantize --mode int8-dynamic " + shell_quote(model) + " -o ";
  expect_refused("convert " + shell_quote(model) + " -o " + shell_quote(model), "is an input", inputs);
  expect_refused(q + shell_quote(dir + "/./model.onnx"), "same file as input", inputs);
  fs::create_symlink("model.onnx", dir + "/link.onnx");
  expect_refused(q + shell_quote(dir + "/link.onnx"), "same file as input", inputs);
  fs::create_hard_link(model, dir + "/hard.onnx");
  expect_refused("convert " + shell_quote(model) + " -o " + shell_quote(dir + "/hard.onnx"), "same file as input", inputs);
  // The output's own external data would land on the input's: out.onnx -> out.onnx.data.
  fs::create_symlink("model.onnx.data", dir + "/other.onnx.data");
  expect_refused("convert --external-data " + shell_quote(model) + " -o " + shell_quote(dir + "/other.onnx"),
                 "model.onnx.data", inputs);
  CHECK_FALSE(file_exists(dir + "/other.onnx"));  // neither file of the pair was written
  // A llama2.c checkpoint being read.
  const std::string bin = dir + "/stories.bin";
  fs::copy_file(data_path("llama2c/stories260K.bin"), bin);
  expect_refused("convert " + shell_quote(bin) + " -o " + shell_quote(bin), "is an input", {bin});
  for (const auto& e : fs::directory_iterator(dir))
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
}

TEST_CASE("an output onto a FIFO or device is refused, the node left as it was", "[cli][hostile]") {
  const std::string dir = scratch_dir("out_fifo");
  const std::string model = one_node_model(dir, "Relu", {"x"}, {1}, 1);
  const std::string fifo = dir + "/pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  auto r = run_cli("convert " + shell_quote(model) + " -o " + shell_quote(fifo));
  INFO(r.errors);
  CHECK(r.exit_code == 2);
  CHECK(r.errors.find("not a regular file") != std::string::npos);
  CHECK(fs::is_fifo(fifo));
  // A symlink to a device is judged by what it names.
  fs::create_symlink("/dev/null", dir + "/null.onnx");
  auto d = run_cli("convert " + shell_quote(model) + " -o " + shell_quote(dir + "/null.onnx"));
  CHECK(d.exit_code == 2);
  CHECK(d.errors.find("not a regular file") != std::string::npos);
  CHECK(fs::is_symlink(dir + "/null.onnx"));
  CHECK(fs::is_character_file("/dev/null"));
}

TEST_CASE("external data reached through a symlink leaving the model's folder is refused", "[cli][hostile]") {
  const std::string root = scratch_dir("ext_escape");
  fs::create_directories(root + "/model");
  const std::string model = external_model(root + "/model");
  if (model.empty()) return;
  const std::string secret = root + "/secret.bin";
  fs::rename(root + "/model/model.onnx.data", secret);  // outside the model's folder
  // 1. The data file is a symlink out of the folder.
  fs::create_symlink(secret, root + "/model/model.onnx.data");
  auto r = run_cli("convert " + shell_quote(model) + " -o " + shell_quote(root + "/out.onnx"));
  INFO(r.errors);
  CHECK(r.exit_code == 2);
  CHECK(r.errors.find("outside the model's folder") != std::string::npos);
  CHECK_FALSE(file_exists(root + "/out.onnx"));
  // 2. A folder on the way out is a symlink: the location "sub/model.onnx.data" (rewritten by
  // the onnx package) with sub -> a folder outside.
  fs::remove(root + "/model/model.onnx.data");
  fs::create_directories(root + "/elsewhere");
  fs::rename(secret, root + "/elsewhere/model.onnx.data");
  fs::create_directories(root + "/model2");
  fs::create_directory_symlink(root + "/elsewhere", root + "/model2/sub");
  const std::string py = venv_python();
  if (py.empty()) return;
  auto w = run_shell(py + " -c " + shell_quote(
      "import onnx, sys\n"
      "m = onnx.load(sys.argv[1], load_external_data=False)\n"
      "for t in m.graph.initializer:\n"
      "  for kv in t.external_data:\n"
      "    if kv.key == 'location': kv.value = 'sub/model.onnx.data'\n"
      "onnx.save(m, sys.argv[2])\n") + " " + shell_quote(model) + " " + shell_quote(root + "/model2/m.onnx"));
  INFO(w.errors);
  REQUIRE(w.exit_code == 0);
  auto f = run_cli("convert " + shell_quote(root + "/model2/m.onnx") + " -o " + shell_quote(root + "/out.onnx"));
  INFO(f.errors);
  CHECK(f.exit_code == 2);
  CHECK(f.errors.find("outside the model's folder") != std::string::npos);
  CHECK_FALSE(file_exists(root + "/out.onnx"));
  // 3. A Hugging Face cache: snapshots/REV/ links to blobs/, the model and its data side by
  // side there. Accepted: the data is beside the real model file.
  fs::create_directories(root + "/hub/blobs");
  fs::create_directories(root + "/hub/snapshots/rev");
  fs::copy_file(model, root + "/hub/blobs/aaa");
  fs::rename(root + "/elsewhere/model.onnx.data", root + "/hub/blobs/bbb");
  fs::create_symlink("../../blobs/aaa", root + "/hub/snapshots/rev/model.onnx");
  fs::create_symlink("../../blobs/bbb", root + "/hub/snapshots/rev/model.onnx.data");
  auto h = run_cli("convert " + shell_quote(root + "/hub/snapshots/rev/model.onnx") + " -o " + shell_quote(root + "/hub.onnx"));
  INFO(h.errors);
  CHECK(h.exit_code == 0);
}

TEST_CASE("run --output-dir is all or nothing: a later output that cannot be written leaves none", "[cli][hostile]") {
  const std::string dir = scratch_dir("run_all_or_nothing");
  // Two outputs; the second's target is a directory, so its write fails after the first's.
  const std::string model = one_node_model(dir, "Split", {"x"}, {1}, 1, {"a", "b"});
  const std::string x = dir + "/x.npy";
  REQUIRE(llmc::write_npy(x, llmc::Tensor::from_vector("x", llmc::DType::kF32, {4}, std::vector<float>{1, 2, 3, 4})).is_ok());
  const std::string out = dir + "/out";
  fs::create_directories(out + "/b.npy");
  auto r = run_cli("run " + shell_quote(model) + " --input " + shell_quote("x=" + x) + " --output-dir " + shell_quote(out));
  INFO(r.errors);
  CHECK(r.exit_code == 2);
  CHECK_FALSE(file_exists(out + "/a.npy"));
  for (const auto& e : fs::directory_iterator(out)) CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  fs::remove(out + "/b.npy");
  auto ok = run_cli("run " + shell_quote(model) + " --input " + shell_quote("x=" + x) + " --output-dir " + shell_quote(out));
  INFO(ok.errors);
  CHECK(ok.exit_code == 0);
  CHECK(file_exists(out + "/a.npy"));
  CHECK(file_exists(out + "/b.npy"));
}

TEST_CASE("convert killed by SIGTERM or SIGHUP mid-write leaves no temporary and the old output", "[cli][hostile]") {
  const std::string gguf = model_path(kSmolLm2Gguf);  // a 540 MB write: long enough to interrupt
  if (gguf.empty()) return;
  const std::string dir = scratch_dir("convert_sigterm");
  const std::string out = dir + "/out.onnx";
  write_bytes(out, "old bytes");
  for (const char* sig : {"TERM", "HUP"}) {  // (a background job of sh ignores SIGINT)
    // Waits for the temporary to appear (at most ~20 s), then signals; prints the exit status.
    const std::string script =
        shell_quote(LLMC_BINARY) + " convert " + shell_quote(gguf) + " -o " + shell_quote(out) + " & pid=$!; " +
        "for i in $(seq 2000); do ls " + shell_quote(out) + ".tmp.* >/dev/null 2>&1 && break; sleep 0.01; done; " +
        "kill -" + sig + " $pid; { wait $pid; } 2>/dev/null; echo $?";
    auto r = run_shell(script);
    INFO(sig << ": " << r.errors);
    CHECK(r.output == std::string(std::string(sig) == "TERM" ? "143\n" : "129\n"));  // 128 + signal: died of it
    CHECK(read_text(out) == "old bytes");
    for (const auto& e : fs::directory_iterator(dir))
      CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  }
}
