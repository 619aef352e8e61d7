// read -> write -> read gives the same IR for every .onnx under $LLMC_DATA (inline and with
// external data), and writing is deterministic. The onnx checker / ONNX Runtime side of the
// round trip is scripts/check_roundtrip.sh (a ctest of its own).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "formats/llama2c_import.h"
#include "formats/onnx_format.h"
#include "formats/onnx_skeleton.h"
#include "ir/graph_utils.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> all_onnx_files() {
  std::vector<std::string> files;
  const char* root = std::getenv("LLMC_DATA");
  if (!root || !fs::is_directory(root)) return files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && e.path().extension() == ".onnx") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

// Every serialized field of the two models equal, weights bit for bit.
void require_same_model(const Model& a, const Model& b, const std::string& what) {
  INFO(what);
  REQUIRE(a.ir_version == b.ir_version);
  REQUIRE(a.opset_imports == b.opset_imports);
  REQUIRE(a.producer_name == b.producer_name);
  REQUIRE(a.producer_version == b.producer_version);
  REQUIRE(a.metadata_props == b.metadata_props);
  REQUIRE(a.functions == b.functions);
  REQUIRE(a.extra_fields == b.extra_fields);
  const Graph& ga = a.graph;
  const Graph& gb = b.graph;
  REQUIRE(ga.inputs == gb.inputs);
  REQUIRE(ga.outputs == gb.outputs);
  REQUIRE(ga.value_info == gb.value_info);
  REQUIRE(ga.nodes.size() == gb.nodes.size());
  for (size_t i = 0; i < ga.nodes.size(); ++i) {
    INFO("node " << i << " '" << ga.nodes[i].name << "'");
    REQUIRE(ga.nodes[i].same_as(gb.nodes[i]));
    REQUIRE(ga.nodes[i].implicit_inputs == gb.nodes[i].implicit_inputs);
  }
  REQUIRE(ga.initializers.size() == gb.initializers.size());
  for (size_t i = 0; i < ga.initializers.size(); ++i) {
    INFO("initializer '" << ga.initializers[i].name() << "'");
    REQUIRE(ga.initializers[i].identical_to(gb.initializers[i]));
  }
}

}  // namespace

TEST_CASE("every ONNX model under LLMC_DATA survives read-write-read unchanged", "[formats][onnx]") {
  if (data_path("onnx-node-tests").empty()) return;
  const auto files = all_onnx_files();
  REQUIRE(files.size() > 300);
  const std::string dir = scratch_dir("rt");
  int external_checked = 0;
  for (const auto& f : files) {
    auto first = read_onnx(f);
    INFO(f << ": " << first.status().message());
    REQUIRE(first.is_ok());
    const std::string out = dir + "/m.onnx";
    REQUIRE(write_onnx(first.value(), out).is_ok());
    auto second = read_onnx(out);
    REQUIRE(second.is_ok());
    require_same_model(first.value(), second.value(), f);
    // Deterministic bytes: writing the re-read model gives the same file.
    const std::string out2 = dir + "/m2.onnx";
    REQUIRE(write_onnx(second.value(), out2).is_ok());
    REQUIRE(read_text(out) == read_text(out2));
    const bool has_large_weight =
        std::any_of(first->graph.initializers.begin(), first->graph.initializers.end(),
                    [](const Tensor& t) { return t.nbytes() >= OnnxWriteOptions{}.external_threshold; });
    if (has_large_weight) {
      OnnxWriteOptions ext;
      ext.external_data = true;
      const std::string eout = dir + "/ext.onnx";
      REQUIRE(write_onnx(first.value(), eout, ext).is_ok());
      REQUIRE(fs::exists(eout + ".data"));
      CHECK(fs::file_size(eout) < fs::file_size(out));
      auto third = read_onnx(eout);
      REQUIRE(third.is_ok());
      require_same_model(first.value(), third.value(), f + " (external data)");
      bool any_view = false;
      for (const auto& t : third->graph.initializers) any_view |= t.is_view();
      CHECK(any_view);  // external weights are mapped, not copied
      ++external_checked;
    }
  }
  CHECK(external_checked >= 2);
}

TEST_CASE("graphs stored out of topological order are sorted on read", "[formats][onnx]") {
  const std::string f = data_path("ort-transformer-models/gpt2_past.onnx");
  if (f.empty()) return;
  auto m = read_onnx(f);
  REQUIRE(m.is_ok());
  REQUIRE(verify(m->graph).is_ok());
  // 3,069 nodes stored, minus Constants shadowed by a later duplicate (ONNX Runtime's rule).
  CHECK(m->graph.nodes.size() > 3000);
}

TEST_CASE("writing over the input keeps the input's mapped weights valid", "[formats][onnx]") {
  const std::string bin = data_path("llama2c/stories260K.bin");
  if (bin.empty()) return;
  const std::string dir = scratch_dir("overwrite");
  auto imported = import_llama2c(bin);
  REQUIRE(imported.is_ok());
  OnnxWriteOptions ext;
  ext.external_data = true;
  const std::string path = dir + "/model.onnx";
  REQUIRE(write_onnx(imported.value(), path, ext).is_ok());
  auto a = read_onnx(path);
  REQUIRE(a.is_ok());
  // Same path again: the side file is replaced by rename, the old mapping stays readable.
  REQUIRE(write_onnx(a.value(), path, ext).is_ok());
  auto b = read_onnx(path);
  REQUIRE(b.is_ok());
  require_same_model(a.value(), b.value(), "rewritten in place");
  require_same_model(imported.value(), b.value(), "imported vs rewritten");
  for (const auto& e : fs::directory_iterator(dir))
    CHECK(e.path().string().find(".tmp.") == std::string::npos);
}

// The writer pads so inline weights start 64-byte aligned in the file (formats/onnx_align.h):
// checked on the written bytes by walking the wire format, and the reader then views every one
// of them in the mapped file instead of copying it. Sizes chosen so payload lengths and the
// padding's own length prefixes vary.
TEST_CASE("inline weights are written 64-byte aligned and read in place", "[formats][onnx]") {
  Model m;
  m.opset_imports = {{"", 17}};
  std::vector<std::string> names;
  for (int i = 0; i < 40; ++i) {
    const int64_t n = (i * 37) % 300 + (i % 5 == 0 ? 5000 : 1);  // a few big ones, odd sizes
    std::vector<float> v(n);
    for (int64_t k = 0; k < n; ++k) v[k] = float(i) + 0.001f * float(k);
    names.push_back("w" + std::string(i % 7 + 1, 'x') + std::to_string(i));  // names of varying length
    m.graph.initializers.push_back(Tensor::from_vector(names.back(), DType::kF32, {n}, v));
  }
  Node id;
  id.name = "id";
  id.op_type = "Identity";
  id.inputs = {names[0]};
  id.outputs = {"y"};
  m.graph.nodes = {id};
  ValueInfo y;
  y.name = "y";
  m.graph.outputs = {y};
  const std::string path = scratch_dir("aligned") + "/m.onnx";
  REQUIRE(write_onnx(m, path).is_ok());
  std::ifstream f(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto skel = split_onnx_skeleton(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  REQUIRE(skel.is_ok());
  REQUIRE(skel->initializer_raw.size() == m.graph.initializers.size());
  for (size_t i = 1; i < skel->initializer_raw.size(); ++i) {  // the first has no predecessor to pad
    INFO("initializer " << i << " of " << skel->initializer_raw[i].size << " bytes at " << skel->initializer_raw[i].offset);
    if (skel->initializer_raw[i].size >= 64) CHECK(skel->initializer_raw[i].offset % 64 == 0);
  }
  auto back = read_onnx(path);
  REQUIRE(back.is_ok());
  require_same_model(m, back.value(), "aligned write");
  for (size_t i = 1; i < back->graph.initializers.size(); ++i)
    if (back->graph.initializers[i].nbytes() >= 64) CHECK(back->graph.initializers[i].is_view());
}
