// The CLI against hostile input: sizes that overflow or exhaust memory, absurd flag values, a
// tokenizer smaller than the model. Each gets one stderr line naming the file, exit code 2, and
// no output written.
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>

#include "formats/npy.h"
#include "onnx/onnx_pb.h"
#include "tests/support/hostile_models.h"
#include "tests/support/npz_files.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;
namespace fs = std::filesystem;

namespace {

constexpr int kF32 = onnx::TensorProto::FLOAT, kI64 = onnx::TensorProto::INT64;

}  // namespace

TEST_CASE("an initializer whose declared size overflows is refused naming it", "[cli][hostile]") {
  const std::string dir = scratch_dir("hostile_init");
  onnx::ModelProto m = new_model();
  auto* g = m.mutable_graph();
  auto* w = g->add_initializer();
  w->set_name("huge_w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : {int64_t{512}, int64_t{1} << 58, int64_t{64}}) w->add_dims(d);  // 2^73 elements
  w->set_raw_data("");
  auto* n = g->add_node();
  n->set_op_type("Identity");
  n->add_input("huge_w");
  n->add_output("y");
  add_io(g->add_output(), "y", kF32);
  const std::string model = dir + "/init.onnx", out_dir = scratch_dir("hostile_init_out");
  write_bytes(model, m.SerializeAsString());
  expect_clean_failure(run_cli("convert " + shell_quote(model) + " -o " + shell_quote(out_dir + "/o.onnx")), model,
                       "huge_w", out_dir);
}

TEST_CASE("run: Expand, Range and ConstantOfShape with absurd sizes from a .npy fail cleanly", "[cli][hostile]") {
  const std::string dir = scratch_dir("hostile_run");
  struct Case {
    std::string op;
    std::vector<std::string> ins;
    std::vector<int> elems;
    std::vector<std::vector<int64_t>> dims, values;
    int out_elem;
  };
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  const std::vector<Case> cases = {
      {"Expand", {"x", "shape"}, {kI64, kI64}, {{1}, {2}}, {{7}, {int64_t{1} << 58, 64}}, kI64},
      {"Range", {"start", "limit", "delta"}, {kI64, kI64, kI64}, {{}, {}, {}}, {{0}, {kMin}, {-1}}, kI64},
      {"ConstantOfShape", {"shape"}, {kI64}, {{2}}, {{int64_t{1} << 31, int64_t{1} << 31}}, kF32},
  };
  for (const auto& c : cases) {
    SECTION(c.op) {
      const std::string model = one_node_model(dir, c.op, c.ins, c.elems, c.out_elem);
      std::string args = "run " + shell_quote(model);
      for (size_t i = 0; i < c.ins.size(); ++i)
        args += " --input " + c.ins[i] + "=" + shell_quote(npy_i64(dir, c.op + c.ins[i], c.dims[i], c.values[i]));
      const std::string out_dir = dir + "/out_" + c.op;
      expect_clean_failure(run_cli(args + " --output-dir " + shell_quote(out_dir)), model, c.op + "_node", out_dir);
    }
  }
}

TEST_CASE("run: LLMC_MAX_TENSOR_BYTES bounds what a kernel may allocate", "[cli][hostile]") {
  const std::string dir = scratch_dir("hostile_limit");
  const std::string model = one_node_model(dir, "ConstantOfShape", {"shape"}, {kI64}, kF32);
  const std::string args = "run " + shell_quote(model) + " --input shape=" +
                           shell_quote(npy_i64(dir, "shape", {2}, {100, 100})) + " --output-dir " + shell_quote(dir + "/out");
  REQUIRE(run_cli(args).exit_code == 0);
  fs::remove_all(dir + "/out");
  expect_clean_failure(run_shell("LLMC_MAX_TENSOR_BYTES=1000 " + shell_quote(LLMC_BINARY) + " " + args), model,
                       "LLMC_MAX_TENSOR_BYTES", dir + "/out");
  auto bad = run_shell("LLMC_MAX_TENSOR_BYTES=lots " + shell_quote(LLMC_BINARY) + " " + args);
  CHECK(bad.exit_code == 2);
  CHECK(bad.errors.find("LLMC_MAX_TENSOR_BYTES") != std::string::npos);
}

TEST_CASE("stats: the calibration session honours LLMC_MAX_TENSOR_BYTES too", "[cli][hostile]") {
  const std::string dir = scratch_dir("hostile_limit_stats");
  const std::string model = one_node_model(dir, "ConstantOfShape", {"shape"}, {kI64}, kF32);
  const std::string calib = dir + "/calib.npz";  // one sample: shape = [100, 100]
  write_bytes(calib, make_zip({{"shape.npy", npy_bytes(llmc::Tensor::from_vector(
                                                 "shape", llmc::DType::kI64, {1, 2}, std::vector<int64_t>{100, 100}))}}));
  const std::string args = "stats " + shell_quote(model) + " --calib " + shell_quote(calib) + " --values y";
  auto ok = run_cli(args);
  INFO(ok.errors);
  REQUIRE(ok.exit_code == 0);
  expect_clean_failure(run_shell("LLMC_MAX_TENSOR_BYTES=1000 " + shell_quote(LLMC_BINARY) + " " + args), model,
                       "LLMC_MAX_TENSOR_BYTES");
}

TEST_CASE("out of memory is one line and exit 2, not an abort", "[cli][hostile][ulimit]") {
  // 4 GiB is under the default tensor limit, but not under a 1 GiB address-space limit.
  const std::string dir = scratch_dir("hostile_oom");
  const std::string model = one_node_model(dir, "ConstantOfShape", {"shape"}, {kI64}, kF32);
  const std::string args = "run " + shell_quote(model) + " --threads 1 --input shape=" +
                           shell_quote(npy_i64(dir, "shape", {1}, {int64_t{1} << 30})) + " --output-dir " +
                           shell_quote(dir + "/out");
  auto r = run_shell("ulimit -v 1000000 && " + shell_quote(LLMC_BINARY) + " " + args);
  INFO(r.errors);
  CHECK(r.exit_code == 2);
  CHECK(std::count(r.errors.begin(), r.errors.end(), '\n') == 1);
  CHECK(r.errors.find("out of memory") != std::string::npos);
}

TEST_CASE("under ulimit -v, LLMC_MAX_TENSOR_BYTES refuses before allocating", "[cli][hostile][ulimit]") {
  // The same 4 GiB request from a tiny .npy, with the limit below the address space: the limit
  // names the node before anything is allocated, so the message is not "out of memory".
  const std::string dir = scratch_dir("hostile_ulimit");
  const std::string model = one_node_model(dir, "ConstantOfShape", {"shape"}, {kI64}, kF32);
  const std::string shape = npy_i64(dir, "shape", {1}, {int64_t{1} << 30});
  REQUIRE(fs::file_size(shape) <= 200);
  const std::string args = "run " + shell_quote(model) + " --threads 1 --input shape=" + shell_quote(shape) +
                           " --output-dir " + shell_quote(dir + "/out");
  auto r = run_shell("ulimit -v 1000000 && LLMC_MAX_TENSOR_BYTES=256M " + shell_quote(LLMC_BINARY) + " " + args);
  expect_clean_failure(r, model, "ConstantOfShape_node", dir + "/out");
  CHECK(r.errors.find("268435456") != std::string::npos);
  CHECK(r.errors.find("out of memory") == std::string::npos);
}

TEST_CASE("absurd --threads and --calib-samples are usage errors", "[cli][hostile]") {
  const std::string dir = scratch_dir("hostile_flags");
  const std::string model = one_node_model(dir, "ConstantOfShape", {"shape"}, {kI64}, kF32);
  const std::string shape = npy_i64(dir, "shape", {1}, {4});
  for (const std::string cmd : {"run " + shell_quote(model) + " --input shape=" + shell_quote(shape) + " --output-dir " +
                                    shell_quote(dir + "/out"),
                                "eval " + shell_quote(model) + " --tokens " + shell_quote(shape),
                                "bench " + shell_quote(model)}) {
    auto r = run_cli(cmd + " --threads 100000");
    INFO(cmd << "\n" << r.errors);
    CHECK(r.exit_code == 2);
    CHECK(std::count(r.errors.begin(), r.errors.end(), '\n') == 1);
    CHECK(r.errors.find("threads") != std::string::npos);
  }
  CHECK(!fs::exists(dir + "/out"));
  auto s = run_cli("stats " + shell_quote(model) + " --calib " + shell_quote(shape) +
                   " --calib-samples 9223372036854775807");
  INFO(s.errors);
  CHECK(s.exit_code == 2);
  CHECK(std::count(s.errors.begin(), s.errors.end(), '\n') == 1);
  CHECK(s.errors.find("calib-samples") != std::string::npos);
}

TEST_CASE("run --prompt with a tokenizer smaller than the model's vocabulary fails cleanly", "[cli][hostile]") {
  const std::string bin = data_path("llama2c/stories260K.bin");
  const std::string tok = data_path("llama2c/tok512.bin");
  if (bin.empty() || tok.empty()) return;
  // The first 300 of tok512's pieces: max_token_length, then (score, length, bytes) each.
  const std::string full = read_text(tok);
  size_t p = 4;
  for (int i = 0; i < 300; ++i) {
    int32_t len = 0;
    std::memcpy(&len, full.data() + p + 4, 4);
    p += 8 + static_cast<size_t>(len);
  }
  const std::string dir = scratch_dir("hostile_tok");
  const std::string small = dir + "/tok300.bin";
  write_bytes(small, full.substr(0, p));
  auto r = run_cli("run " + shell_quote(bin) + " --tokenizer " + shell_quote(small) +
                   " --prompt 'Once upon a time' --tokens 20");
  INFO(r.errors);
  CHECK(r.exit_code == 2);
  CHECK(std::count(r.errors.begin(), r.errors.end(), '\n') == 1);
  CHECK(r.errors.find(small) != std::string::npos);
  CHECK(r.errors.find("300") != std::string::npos);
  CHECK(r.errors.find("512") != std::string::npos);
}
