// llmcompress quantize end to end on the real stories260K: the accuracy and size gates of the
// issue, measured with our runtime (--eval), and the bad-input contract.
#include <catch2/catch.hpp>
#include <fstream>
#include <regex>

#include "formats/npy.h"
#include "onnx/onnx_pb.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {
std::string stories(const std::string& dir) {
  const std::string bin = data_path("llama2c/stories260K.bin"), tok = data_path("llama2c/tok512.bin");
  if (bin.empty() || tok.empty()) return "";
  const std::string out = dir + "/stories260K.onnx";
  REQUIRE(run_cli("convert " + shell_quote(bin) + " --tokenizer " + shell_quote(tok) + " -o " + shell_quote(out)).exit_code == 0);
  return out;
}
}  // namespace

TEST_CASE("quantize int8-dynamic and fp16 on stories260K meet the accuracy and size gates", "[cli][quantize][llama2c]") {
  const std::string text = data_path("corpora/tinystories_val_prefix.txt");
  const std::string dir = scratch_dir("quantize_cli");
  const std::string model = stories(dir);
  if (model.empty() || text.empty()) return;
  const std::string eval = " --eval " + shell_quote(text) + " --eval-limit 20000 --json";
  auto q8 = run_cli("quantize " + shell_quote(model) + " -o " + shell_quote(dir + "/q8.onnx") + " --mode int8-dynamic" + eval);
  INFO(q8.errors);
  REQUIRE(q8.exit_code == 0);
  const double before = json_number(q8.output, "perplexity_before"), after8 = json_number(q8.output, "perplexity_after");
  INFO("float32 " << before << ", int8-dynamic " << after8);
  CHECK(after8 <= before * 1.01);
  CHECK(json_number(q8.output, "bytes_after") <= 0.3 * json_number(q8.output, "bytes_before"));
  CHECK(json_number(q8.output, "top1_agreement") > 0.9);

  auto q16 = run_cli("quantize " + shell_quote(model) + " -o " + shell_quote(dir + "/q16.onnx") + " --mode fp16" + eval);
  INFO(q16.errors);
  REQUIRE(q16.exit_code == 0);
  const double after16 = json_number(q16.output, "perplexity_after");
  INFO("fp16 " << after16);
  CHECK(after16 <= before * 1.001);
  CHECK(json_number(q16.output, "bytes_after") <= 0.51 * json_number(q16.output, "bytes_before"));
  // The artifacts run: a short generation from each.
  for (const char* m : {"/q8.onnx", "/q16.onnx"})
    CHECK(run_cli("run " + shell_quote(dir + m) + " --prompt 'Once upon a time' --tokens 8").exit_code == 0);
}

TEST_CASE("quantize rejects bad calibration data, NaN weights and bad flags - warns on --exclude matching nothing",
          "[cli][quantize][bad-input]") {
  const std::string dir = scratch_dir("quantize_bad");
  const std::string model = stories(dir);
  if (model.empty()) return;
  const std::string out = dir + "/out.onnx";
  auto expect_fail = [&](const std::string& args, const std::string& mention) {
    auto r = run_cli("quantize " + shell_quote(model) + " -o " + shell_quote(out) + " " + args);
    INFO(args << " -> " << r.errors);
    CHECK(r.exit_code == 2);
    CHECK(r.errors.find(mention) != std::string::npos);
    CHECK(!file_exists(out));
  };
  REQUIRE(write_npy(dir + "/floats.npy", Tensor::zeros("x", DType::kF32, {4, 16})).is_ok());
  expect_fail("--mode int8-static --calib " + shell_quote(dir + "/floats.npy"), "floats.npy");
  std::ofstream(dir + "/empty.txt").close();
  expect_fail("--mode int8-static --calib " + shell_quote(dir + "/empty.txt"), "empty.txt");
  expect_fail("--mode int8-static", "--calib");
  expect_fail("--mode int5", "--mode");
  expect_fail("--mode int4 --method gptq", "--calib");
  expect_fail("--mode int4 --method awq", "--calib");
  expect_fail("--mode int4 --method bogus", "rtn, gptq or awq");
  expect_fail("--mode int4 --block-size 24", "power of two");
  expect_fail("--mode int4 --bits 3", "bits");
  expect_fail("--mode int4 --act-order", "--act-order");
  expect_fail("--mode int8-dynamic --block-size 32", "apply to --mode int4");
  expect_fail("--mode int4 --method gptq --calib " + shell_quote(dir + "/floats.npy"), "floats.npy");
  expect_fail("--mode int8-static --calib " + shell_quote(dir + "/floats.npy") + " --method bogus", "bogus");
  expect_fail("--smoothquant 1.5 --calib " + shell_quote(dir + "/floats.npy"), "1.5");

  auto warn = run_cli("quantize " + shell_quote(model) + " -o " + shell_quote(dir + "/warned.onnx") + " --exclude no_such_node");
  CHECK(warn.exit_code == 0);
  CHECK(warn.errors.find("no_such_node") != std::string::npos);
  CHECK(warn.errors.find("warning") != std::string::npos);

  // A MatMul whose weight holds NaN: refused, naming the tensor, nothing written.
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  auto* w = g->add_initializer();
  w->set_name("w_with_nan");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(2);
  w->add_dims(2);
  for (float v : {1.f, NAN, 0.5f, 2.f}) w->add_float_data(v);
  auto* n = g->add_node();
  n->set_name("mm");
  n->set_op_type("MatMul");
  n->add_input("x");
  n->add_input("w_with_nan");
  n->add_output("y");
  g->add_output()->set_name("y");
  std::ofstream(dir + "/nan.onnx", std::ios::binary) << m.SerializeAsString();
  auto nan = run_cli("quantize " + shell_quote(dir + "/nan.onnx") + " -o " + shell_quote(out));
  CHECK(nan.exit_code == 2);
  CHECK(nan.errors.find("w_with_nan") != std::string::npos);
  CHECK(!file_exists(out));
}

// The manifest's input hash is read through a mapping, 4 MB at a time, by two threads (one maps
// ahead, one hashes): a 60 MB model (many chunks, an uneven last one) and its external data file
// must still carry coreutils' SHA-256. The timings the report adds must be there too.
TEST_CASE("quantize: manifest hashes of a multi-chunk model and its external data match sha256sum", "[cli][quantize]") {
  const std::string dir = scratch_dir("quantize_hash");
  const std::string model = dir + "/m.onnx";
  REQUIRE(run_cli("synth --preset llama-15m --vocab 1001 --external-data -o " + shell_quote(model)).exit_code == 0);
  auto q = run_cli("quantize " + shell_quote(model) + " -o " + shell_quote(dir + "/q.onnx") + " --mode int8-dynamic --json");
  INFO(q.errors);
  REQUIRE(q.exit_code == 0);
  for (const char* key : {"load_seconds", "hash_wait_seconds", "write_seconds"}) CHECK(json_number(q.output, key) >= 0);
  auto inspect = run_cli("inspect " + shell_quote(dir + "/q.onnx") + " --json");
  REQUIRE(inspect.exit_code == 0);
  for (const std::string file : {model, model + ".data"}) {
    auto sum = run_shell("sha256sum " + shell_quote(file));
    REQUIRE(sum.exit_code == 0);
    INFO(file);
    CHECK(inspect.output.find(sum.output.substr(0, 64)) != std::string::npos);
  }
}
