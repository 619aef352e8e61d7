// ONNX model files <-> ir::Model. The only place protobuf is used.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

#include "ir/graph.h"
#include "ir/status.h"

namespace llmc {

// Reads an ONNX model. Weights stored inline are moved out of the parsed protobuf (no copy);
// external data is memory-mapped and viewed (no copy). Graphs stored out of topological order
// are sorted. Fails with a message naming the file (and node or tensor) on: empty, truncated
// or non-protobuf files, missing or short external data, initializers whose byte size does not
// match their shape, cycles, and inputs nothing defines.
// `external_files` (optional) receives the external data files the weights were read from.
Result<Model> read_onnx(const std::string& path, std::vector<std::string>* external_files = nullptr);

// Reads a serialized TensorProto file (the ONNX backend tests' input_0.pb / output_0.pb).
Result<Tensor> read_tensor_proto_file(const std::string& path);

struct OnnxWriteOptions {
  // Put initializers of at least `external_threshold` bytes in a side file. Forced on when the
  // weights would not fit the 2 GB protobuf limit.
  bool external_data = false;
  size_t external_threshold = 1024;
  // Side file name, relative to the model's directory. Default: "<model file name>.data".
  std::string external_file;
  // Metadata known only later (the pipeline's manifest waits for the input's hash): called once
  // the graph's bytes are written, which come before metadata_props in the file; its entries are
  // set as Model::set_metadata would (a key already there keeps its place). An error aborts the
  // write (nothing is left behind).
  std::function<Result<StringPairs>()> late_metadata;
};

// Writes atomically (temp file + rename; the side file first). Never modifies the input: the
// model's mapped weights stay valid even when the output path equals the input path.
Status write_onnx(const Model& model, const std::string& path, const OnnxWriteOptions& options = {});
// The same bytes, from a model the caller gives up: each initializer is released once written
// (freed on a helper thread), so the teardown of a large model overlaps the write.
Status write_onnx(Model&& model, const std::string& path, const OnnxWriteOptions& options = {});

// Weights above this total are written as external data whatever the options say.
constexpr size_t kInlineWeightLimit = size_t(1800) << 20;

}  // namespace llmc
