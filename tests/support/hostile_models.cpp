#include "tests/support/hostile_models.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "formats/npy.h"

namespace llmc::testing {

onnx::ModelProto new_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  return m;
}

void add_io(onnx::ValueInfoProto* v, const std::string& name, int elem) {
  v->set_name(name);
  v->mutable_type()->mutable_tensor_type()->set_elem_type(elem);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string one_node_model(const std::string& dir, const std::string& op, const std::vector<std::string>& ins,
                           const std::vector<int>& elems, int out_elem, const std::vector<std::string>& outs) {
  onnx::ModelProto m = new_model();
  auto* g = m.mutable_graph();
  g->set_name("hostile");
  auto* n = g->add_node();
  n->set_name(op + "_node");
  n->set_op_type(op);
  for (size_t i = 0; i < ins.size(); ++i) {
    add_io(g->add_input(), ins[i], elems[i]);
    n->add_input(ins[i]);
  }
  for (const auto& o : outs) {
    n->add_output(o);
    add_io(g->add_output(), o, out_elem);
  }
  const std::string path = dir + "/" + op + ".onnx";
  write_bytes(path, m.SerializeAsString());
  return path;
}

std::string npy_i64(const std::string& dir, const std::string& name, std::vector<int64_t> dims,
                    const std::vector<int64_t>& v) {
  const std::string path = dir + "/" + name + ".npy";
  REQUIRE(write_npy(path, Tensor::from_vector(name, DType::kI64, std::move(dims), v)).is_ok());
  return path;
}

void expect_clean_failure(const CommandResult& r, const std::string& file, const std::string& mention,
                          const std::string& out_dir) {
  namespace fs = std::filesystem;
  INFO("stderr: " << r.errors << "stdout: " << r.output);
  CHECK(r.exit_code == 2);
  CHECK(std::count(r.errors.begin(), r.errors.end(), '\n') == 1);
  CHECK(r.errors.find(file) != std::string::npos);
  CHECK(r.errors.find(mention) != std::string::npos);
  if (!out_dir.empty()) CHECK((!fs::exists(out_dir) || fs::is_empty(out_dir)));
}

}  // namespace llmc::testing
