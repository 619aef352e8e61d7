// The writer streams the file piece by piece (weights straight from their memory): the bytes
// must be exactly what protobuf writes for the whole message, so parsing the file and
// serialising it again gives it back unchanged, with inline payloads still 64-byte aligned.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "formats/onnx_format.h"
#include "formats/onnx_skeleton.h"
#include "onnx/onnx_pb.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Every part the writer emits: model fields before and after the graph, nodes with a tensor
// attribute, initializers of every storage kind (inline, empty, strings, doc strings, some
// big enough for external data), graph fields after the initializers.
Model varied_model() {
  Model m;
  m.ir_version = 8;
  m.opset_imports = {{"", 17}, {"com.microsoft", 1}};
  m.producer_name = "writer-test";
  m.producer_version = "1";
  m.domain = "test.domain";
  m.model_version = 3;
  m.doc_string = "a model";
  m.metadata_props = {{"k", "v"}, {"long", std::string(300, 'x')}};
  m.graph.name = "g";
  m.graph.doc_string = "the graph";
  std::vector<std::string> names;
  for (int i = 0; i < 24; ++i) {
    const int64_t n = i % 6 == 0 ? 3000 + i : (i * 53) % 200;  // some big, one empty, odd sizes
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) v[k] = float(i) - 0.25f * float(k);
    names.push_back("w" + std::string(i % 5 + 1, 'y') + std::to_string(i));
    Tensor t = Tensor::from_vector(names.back(), DType::kF32, {n}, v);
    if (i % 4 == 1) t.set_doc_string("doc of " + names.back());
    m.graph.initializers.push_back(t);
  }
  m.graph.initializers.push_back(Tensor::strings("labels", {2}, {"a", "bb"}));
  Node c;
  c.name = "c";
  c.op_type = "Constant";
  c.outputs = {"cst"};
  c.attributes = {Attribute::make_tensor("value", Tensor::from_vector("cst", DType::kF32, {3}, std::vector<float>{1, 2, 3}))};
  Node add;
  add.name = "add";
  add.op_type = "Add";
  add.inputs = {names[1], "cst"};
  add.outputs = {"y"};
  add.doc_string = "adds";
  m.graph.nodes = {c, add};
  ValueInfo y;
  y.name = "y";
  y.type.kind = ValueType::Kind::kTensor;
  y.type.elem = DType::kF32;
  m.graph.outputs = {y};
  ValueInfo mid = y;
  mid.name = "cst";
  m.graph.value_info = {mid};
  return m;
}

void require_canonical(const std::string& path) {
  const std::string bytes = file_bytes(path);
  onnx::ModelProto mp;
  REQUIRE(mp.ParseFromString(bytes));
  CHECK(mp.SerializeAsString() == bytes);
}

}  // namespace

TEST_CASE("the streamed ONNX file is protobuf's own serialisation of the model", "[formats][onnx]") {
  const Model m = varied_model();
  const std::string dir = scratch_dir("writer_stream");
  const std::string inline_path = dir + "/inline.onnx";
  REQUIRE(write_onnx(m, inline_path).is_ok());
  require_canonical(inline_path);
  const std::string bytes = file_bytes(inline_path);
  auto skel = split_onnx_skeleton(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  REQUIRE(skel.is_ok());
  for (size_t i = 1; i < skel->initializer_raw.size(); ++i)
    if (skel->initializer_raw[i].size >= 64) CHECK(skel->initializer_raw[i].offset % 64 == 0);
  auto back = read_onnx(inline_path);
  REQUIRE(back.is_ok());
  REQUIRE(back->graph.initializers.size() == m.graph.initializers.size());
  for (size_t i = 0; i < m.graph.initializers.size(); ++i)
    CHECK(back->graph.initializers[i].identical_to(m.graph.initializers[i]));

  Model given_up = m;  // the overload that frees each weight once written: same bytes
  REQUIRE(write_onnx(std::move(given_up), dir + "/released.onnx").is_ok());
  CHECK(file_bytes(dir + "/released.onnx") == bytes);

  OnnxWriteOptions o;  // the big initializers in a side file, the rest inline
  o.external_data = true;
  const std::string ext_path = dir + "/external.onnx";
  REQUIRE(write_onnx(m, ext_path, o).is_ok());
  require_canonical(ext_path);
  Model given_up_ext = m;  // same file name (the side file's name is inside the model)
  const std::string released_ext = scratch_dir("writer_stream_released") + "/external.onnx";
  REQUIRE(write_onnx(std::move(given_up_ext), released_ext, o).is_ok());
  CHECK(file_bytes(released_ext) == file_bytes(ext_path));
  CHECK(file_bytes(released_ext + ".data") == file_bytes(ext_path + ".data"));
  auto ext = read_onnx(ext_path);
  REQUIRE(ext.is_ok());
  for (size_t i = 0; i < m.graph.initializers.size(); ++i)
    CHECK(ext->graph.initializers[i].identical_to(m.graph.initializers[i]));

  // Deferred weights (a GGUF import's) are produced into the writer's scratch buffer as they are
  // written: the same bytes, inline and external, each produced exactly once.
  Model deferred = m;
  auto produced = std::make_shared<int>(0);
  for (auto& t : deferred.graph.initializers) {
    if (t.dtype() == DType::kString) continue;
    Tensor source = t;
    Tensor d = Tensor::deferred(t.name(), t.dtype(), t.dims(), [source, produced](uint8_t* dst) {
      ++*produced;
      std::memcpy(dst, source.data(), source.nbytes());
    });
    d.set_doc_string(t.doc_string());
    t = d;
  }
  const std::string deferred_dir = scratch_dir("writer_stream_deferred");
  REQUIRE(write_onnx(deferred, deferred_dir + "/inline.onnx").is_ok());
  CHECK(file_bytes(deferred_dir + "/inline.onnx") == bytes);
  CHECK(*produced == static_cast<int>(m.graph.initializers.size()) - 1);
  REQUIRE(write_onnx(deferred, deferred_dir + "/external.onnx", o).is_ok());
  CHECK(file_bytes(deferred_dir + "/external.onnx") == file_bytes(ext_path));
  CHECK(file_bytes(deferred_dir + "/external.onnx.data") == file_bytes(ext_path + ".data"));
  CHECK(*produced == 2 * (static_cast<int>(m.graph.initializers.size()) - 1));
}

TEST_CASE("late metadata lands where set_metadata would put it and its error leaves no file", "[formats][onnx]") {
  Model m = varied_model();
  const std::string dir = scratch_dir("writer_late");
  OnnxWriteOptions o;
  o.late_metadata = [] { return Result<StringPairs>(StringPairs{{"k", "later"}, {"added", "x"}}); };
  REQUIRE(write_onnx(m, dir + "/late.onnx", o).is_ok());
  require_canonical(dir + "/late.onnx");
  Model expected = m;
  expected.set_metadata("k", "later");
  expected.set_metadata("added", "x");
  REQUIRE(write_onnx(expected, dir + "/direct.onnx").is_ok());
  CHECK(file_bytes(dir + "/late.onnx") == file_bytes(dir + "/direct.onnx"));

  o.late_metadata = [] { return Result<StringPairs>(io_error("input.onnx: read failed while hashing")); };
  auto failed = write_onnx(m, dir + "/failed.onnx", o);
  REQUIRE(!failed.is_ok());
  CHECK(failed.message().find("hashing") != std::string::npos);
  for (const auto& e : std::filesystem::directory_iterator(dir))
    CHECK(e.path().filename().string().rfind("failed.onnx", 0) == std::string::npos);
}
