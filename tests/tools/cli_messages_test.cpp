// Messages and exit codes for bad input the runtime only meets while running (issue 12, item 7):
// each is exit 2 and one stderr line blaming the right file, node or flag.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <tuple>

#include "onnx/onnx_pb.h"
#include "tests/support/hostile_models.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;
namespace fs = std::filesystem;

namespace {
constexpr int kF32 = onnx::TensorProto::FLOAT, kI64 = onnx::TensorProto::INT64;

std::string npy_f32(const std::string& dir) {
  // Two floats as numpy writes them (version 1.0 header padded to 64 bytes).
  const std::string path = dir + "/x.npy";
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  const float v[2] = {1.f, -2.f};
  write_bytes(path, std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(h.size()) + '\0' + h +
                        std::string(reinterpret_cast<const char*>(v), sizeof v));
  return path;
}

// An initializer "w" of 4 floats in external data with the given key/value pairs.
std::string external_model(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& kv) {
  write_bytes(dir + "/w.bin", std::string(64, '\0'));
  onnx::ModelProto m = new_model();
  auto* g = m.mutable_graph();
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(4);
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  for (const auto& [k, v] : kv) {
    auto* e = w->add_external_data();
    e->set_key(k);
    e->set_value(v);
  }
  auto* n = g->add_node();
  n->set_op_type("Identity");
  n->add_input("w");
  n->add_output("y");
  add_io(g->add_output(), "y", kF32);
  const std::string path = dir + "/ext.onnx";
  write_bytes(path, m.SerializeAsString());
  return path;
}
}  // namespace

TEST_CASE("a node declaring more outputs than its kernel fills is exit 2 naming the node", "[cli][hostile]") {
  const std::string dir = scratch_dir("msg_outputs");
  const std::string model = one_node_model(dir, "Relu", {"x"}, {kF32}, kF32, {"y", "extra"});
  auto r = run_cli("run " + shell_quote(model) + " --input x=" + shell_quote(npy_f32(dir)) + " --output-dir " +
                   shell_quote(dir + "/out"));
  expect_clean_failure(r, model, "Relu_node", dir + "/out");
  CHECK(r.errors.find("extra") != std::string::npos);
}

TEST_CASE("run blames the .npy, not the model, for an input that does not fit", "[cli][hostile]") {
  const std::string dir = scratch_dir("msg_blame");
  const std::string model = one_node_model(dir, "Relu", {"x"}, {kF32}, kF32);
  const std::string bad = npy_i64(dir, "x64", {2}, {1, 2});
  auto r = run_cli("run " + shell_quote(model) + " --input x=" + shell_quote(bad) + " --output-dir " +
                   shell_quote(dir + "/out"));
  expect_clean_failure(r, bad, "must be f32", dir + "/out");
  CHECK(r.errors.rfind(bad, 40) != std::string::npos);  // the .npy leads the message
}

TEST_CASE("eval --tokens refuses ids past 2^31 and names the model in runtime errors", "[cli][hostile]") {
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (bin.empty()) return;
  const std::string dir = scratch_dir("msg_eval");
  const std::string huge = npy_i64(dir, "huge", {3}, {1, (int64_t{1} << 32) + 5, 7});
  expect_clean_failure(run_cli("eval " + shell_quote(bin) + " --tokens " + shell_quote(huge)), huge,
                       "not a valid token id");
  const std::string beyond = npy_i64(dir, "beyond", {4}, {1, 600, 7, 9});  // vocabulary 512
  expect_clean_failure(run_cli("eval " + shell_quote(bin) + " --tokens " + shell_quote(beyond)), bin, "600");
}

TEST_CASE("external data with a negative length or a non-numeric offset is refused", "[cli][hostile]") {
  const std::string dir = scratch_dir("msg_external");
  for (const auto& [kv, mention] : std::vector<std::pair<std::vector<std::pair<std::string, std::string>>, std::string>>{
           {{{"location", "w.bin"}, {"length", "-7"}}, "length '-7'"},
           {{{"location", "w.bin"}, {"offset", "12abc"}}, "offset '12abc'"},
           {{{"location", "w.bin"}, {"offset", "99999999999999999999"}}, "offset"},
           {{{"location", "w.bin"}, {"offset", "18446744073709551615"}}, "too short"}}) {
    const std::string model = external_model(dir, kv);
    expect_clean_failure(run_cli("inspect " + shell_quote(model)), model, mention);
  }
}

TEST_CASE("an empty output path or one ending in / is refused with a sensible message", "[cli][hostile]") {
  const std::string dir = scratch_dir("msg_empty_out");
  const std::string model = one_node_model(dir, "Relu", {"x"}, {kF32}, kF32);
  auto r = run_cli("convert " + shell_quote(model) + " -o ''");
  INFO(r.errors);
  CHECK(r.exit_code == 2);
  CHECK(r.errors.find("output path is empty") != std::string::npos);
  auto d = run_cli("convert " + shell_quote(model) + " -o " + shell_quote(dir + "/sub/"));
  INFO(d.errors);
  CHECK(d.exit_code == 2);
  CHECK(d.errors.find("expected an output file path") != std::string::npos);
}

TEST_CASE("run --output-dir keeps outputs named a/b and a:b apart", "[cli][hostile]") {
  const std::string dir = scratch_dir("msg_names");
  const std::string model = one_node_model(dir, "Split", {"x"}, {kF32}, kF32, {"a/b", "a:b"});
  auto r = run_cli("run " + shell_quote(model) + " --input x=" + shell_quote(npy_f32(dir)) + " --output-dir " +
                   shell_quote(dir + "/out"));
  INFO(r.errors << r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(dir + "/out/a%2Fb.npy"));
  CHECK(fs::exists(dir + "/out/a%3Ab.npy"));
  CHECK(std::distance(fs::directory_iterator(dir + "/out"), fs::directory_iterator{}) == 2);
}

TEST_CASE("an escaped exception is one line: exit 3 for a bug, exit 2 for resources", "[cli][hostile]") {
  // LLMC_FAULT_INJECTION throws as the command starts, reaching main's last-resort handler.
  for (const auto& [fault, code, says] : {std::tuple{"logic_error", 3, "please report"},
                                          std::tuple{"bad_alloc", 2, "out of memory"},
                                          std::tuple{"system_error", 2, "system error"}}) {
    auto r = run_shell(std::string("LLMC_FAULT_INJECTION=") + fault + " " + shell_quote(LLMC_BINARY) + " inspect nothing.onnx");
    INFO(fault << ": " << r.errors);
    CHECK(r.exit_code == code);
    CHECK(r.errors.find(says) != std::string::npos);
    CHECK(r.errors.find("llmcompress inspect: error:") == 0);
    CHECK(std::count(r.errors.begin(), r.errors.end(), '\n') == 1);
  }
}
