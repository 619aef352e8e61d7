// Every bad input gets one stderr line naming the file and the problem, exit code 2, and no
// output file (nor temporary) left behind.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "onnx/onnx_pb.h"
#include "tests/support/test_data.h"

using namespace llmc::testing;
namespace fs = std::filesystem;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

onnx::ModelProto tiny_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("tiny");
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(4);
  w->set_raw_data(std::string(16, '\0'));
  auto* n = g->add_node();
  n->set_name("add");
  n->set_op_type("Add");
  n->add_input("x");
  n->add_input("w");
  n->add_output("y");
  auto* out = g->add_output();
  out->set_name("y");
  out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  return m;
}

void save(const onnx::ModelProto& m, const std::string& path) { write_bytes(path, m.SerializeAsString()); }

// Runs convert on `input` and checks the failure contract.
void expect_rejected(const std::string& input, const std::string& must_mention) {
  const std::string out_dir = scratch_dir("bad_out");
  const std::string out = out_dir + "/out.onnx";
  auto r = run_cli("convert " + shell_quote(input) + " -o " + shell_quote(out));
  INFO("stderr: " << r.errors);
  CHECK(r.exit_code == 2);
  CHECK(std::count(r.errors.begin(), r.errors.end(), '\n') == 1);
  CHECK(r.errors.find(input) != std::string::npos);
  CHECK(r.errors.find(must_mention) != std::string::npos);
  CHECK(fs::is_empty(out_dir));  // neither the output nor a temporary
  auto ins = run_cli("inspect " + shell_quote(input));
  CHECK(ins.exit_code == 2);
}

}  // namespace

TEST_CASE("bad ONNX files are rejected with one line, exit 2, nothing written", "[cli][bad-input]") {
  const std::string dir = scratch_dir("bad_in");
  SECTION("empty file") {
    write_bytes(dir + "/empty.onnx", "");
    expect_rejected(dir + "/empty.onnx", "empty");
  }
  SECTION("not protobuf") {
    write_bytes(dir + "/text.onnx", "this is plainly not a protobuf model\n\xff\xff\xff");
    expect_rejected(dir + "/text.onnx", "not a valid ONNX model");
  }
  SECTION("truncated") {
    const std::string whole = tiny_model().SerializeAsString();
    write_bytes(dir + "/trunc.onnx", whole.substr(0, whole.size() - 7));
    expect_rejected(dir + "/trunc.onnx", "truncated");
  }
  SECTION("directory given as file") {
    fs::create_directory(dir + "/adir.onnx");
    expect_rejected(dir + "/adir.onnx", "directory");
  }
  SECTION("missing file") { expect_rejected(dir + "/nope.onnx", "No such file"); }
  SECTION("initializer bytes do not match its shape") {
    auto m = tiny_model();
    m.mutable_graph()->mutable_initializer(0)->set_raw_data(std::string(12, '\0'));
    save(m, dir + "/short_init.onnx");
    expect_rejected(dir + "/short_init.onnx", "initializer 'w'");
  }
  SECTION("graph cycle") {
    auto m = tiny_model();
    auto* g = m.mutable_graph();
    g->mutable_node(0)->set_input(1, "z");  // add reads z, relu reads y and writes z
    auto* relu = g->add_node();
    relu->set_name("relu");
    relu->set_op_type("Relu");
    relu->add_input("y");
    relu->add_output("z");
    save(m, dir + "/cycle.onnx");
    expect_rejected(dir + "/cycle.onnx", "cycle");
  }
  SECTION("dangling input name") {
    auto m = tiny_model();
    m.mutable_graph()->mutable_node(0)->set_input(1, "ghost");
    save(m, dir + "/dangling.onnx");
    expect_rejected(dir + "/dangling.onnx", "'ghost'");
  }
  SECTION("missing and short external data") {
    auto m = tiny_model();
    auto* w = m.mutable_graph()->mutable_initializer(0);
    w->clear_raw_data();
    w->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* loc = w->add_external_data();
    loc->set_key("location");
    loc->set_value("weights.bin");
    save(m, dir + "/ext.onnx");
    expect_rejected(dir + "/ext.onnx", "weights.bin");
    write_bytes(dir + "/weights.bin", std::string(8, '\0'));  // 8 of 16 bytes
    expect_rejected(dir + "/ext.onnx", "too short");
    write_bytes(dir + "/weights.bin", std::string(16, '\0'));
    auto ok = run_cli("convert " + shell_quote(dir + "/ext.onnx") + " -o " + shell_quote(dir + "/ext_ok.onnx"));
    CHECK(ok.exit_code == 0);
  }
  SECTION("external data escaping the model directory") {
    auto m = tiny_model();
    auto* w = m.mutable_graph()->mutable_initializer(0);
    w->clear_raw_data();
    w->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* loc = w->add_external_data();
    loc->set_key("location");
    loc->set_value("../../etc/passwd");
    save(m, dir + "/escape.onnx");
    expect_rejected(dir + "/escape.onnx", "relative path inside");
  }
}

TEST_CASE("bad llama2.c checkpoints are rejected", "[cli][bad-input][llama2c]") {
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (bin.empty()) return;
  const std::string dir = scratch_dir("bad_bin");
  const std::string whole = read_text(bin);
  write_bytes(dir + "/short.bin", whole.substr(0, whole.size() - 4));
  expect_rejected(dir + "/short.bin", "implies");
  write_bytes(dir + "/empty.bin", "");
  expect_rejected(dir + "/empty.bin", "empty");
  write_bytes(dir + "/header_only.bin", whole.substr(0, 20));
  expect_rejected(dir + "/header_only.bin", "header");
}

TEST_CASE("unwritable output and usage errors exit 2", "[cli][bad-input]") {
  const std::string dir = scratch_dir("bad_usage");
  auto m = tiny_model();
  save(m, dir + "/ok.onnx");
  auto r = run_cli("convert " + shell_quote(dir + "/ok.onnx") + " -o " + shell_quote(dir + "/no/such/dir/out.onnx"));
  CHECK(r.exit_code == 2);
  CHECK(r.errors.find("out.onnx") != std::string::npos);
  auto to_dir = run_cli("convert " + shell_quote(dir + "/ok.onnx") + " -o " + shell_quote(dir));
  CHECK(to_dir.exit_code == 2);
  CHECK(run_cli("convert").exit_code == 2);
  CHECK(run_cli("no-such-command").exit_code == 2);
  CHECK(run_cli("--version").output.find("llmcompress") == 0);
  for (const char* cmd : {"convert", "inspect", "tokenize"}) {
    auto help = run_cli(std::string(cmd) + " --help");
    CHECK(help.exit_code == 0);
    CHECK(help.output.find(cmd) != std::string::npos);
  }
}
