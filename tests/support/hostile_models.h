// One-node ONNX models and tiny .npy files for the CLI's hostile-input tests: the smallest files
// that reach a kernel with sizes or names an attacker chose.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/test_data.h"

#include "onnx/onnx_pb.h"

namespace llmc::testing {

// An empty model at IR version 8, opset 17.
onnx::ModelProto new_model();
// Names `v` and gives it tensor type `elem` (an onnx::TensorProto element type).
void add_io(onnx::ValueInfoProto* v, const std::string& name, int elem);
void write_bytes(const std::string& path, const std::string& bytes);
// dir/<op>.onnx: one node `op` (named "<op>_node") reading graph inputs `ins` of ONNX element
// types `elems` and writing `outs` (graph outputs of type `out_elem`; default one output "y").
std::string one_node_model(const std::string& dir, const std::string& op, const std::vector<std::string>& ins,
                           const std::vector<int>& elems, int out_elem, const std::vector<std::string>& outs = {"y"});
// dir/<name>.npy holding int64 `v` of shape `dims`.
std::string npy_i64(const std::string& dir, const std::string& name, std::vector<int64_t> dims,
                    const std::vector<int64_t>& v);
// The failure contract: exit 2, one stderr line naming `file` and `mention`, `out_dir` absent or
// empty. Uses Catch2 CHECKs.
void expect_clean_failure(const CommandResult& r, const std::string& file, const std::string& mention,
                          const std::string& out_dir = "");

}  // namespace llmc::testing
