#include "formats/safetensors.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <sstream>

#include "runtime/kernels/kernel_util.h"
#include "tests/support/safetensors_files.h"
#include "tests/support/test_data.h"

namespace llmc {
namespace {

using testing::make_safetensors;
using testing::scratch_dir;
using testing::write_file_in;

// Reads the named tensors of a .safetensors file with json + numpy only (no safetensors
// package) and prints "name dtype numel first sequential-float64-sum" per tensor; repr() keeps
// every double exact.
constexpr const char* kPythonReader = R"(
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
for name in sys.argv[2:]:
    e = header[name]
    b, end = e['data_offsets']
    if e['dtype'] == 'BF16':
        a = (np.frombuffer(data[b:end], '<u2').astype('<u4') << 16).view('<f4')
    else:
        a = np.frombuffer(data[b:end], {'F32': '<f4', 'F16': '<f2', 'I64': '<i8'}[e['dtype']])
    a = a.astype(np.float64)
    print(name, e['dtype'], a.size, repr(float(a[0])), repr(float(np.cumsum(a)[-1])))
)";

struct Summary {
  std::string dtype;
  int64_t numel = 0;
  double first = 0, sum = 0;
};

// Python's summaries of `names` in `path`, keyed by name; empty when Python is missing.
std::map<std::string, Summary> python_summaries(const std::string& path,
                                                const std::vector<std::string>& names) {
  const std::string python = testing::venv_python();
  if (python.empty()) return {};
  std::string command = testing::shell_quote(python) + " -c " + testing::shell_quote(kPythonReader) +
                        " " + testing::shell_quote(path);
  for (const auto& n : names) command.append(" ").append(testing::shell_quote(n));
  const auto r = testing::run_shell(command);
  INFO(r.errors);
  REQUIRE(r.exit_code == 0);
  std::map<std::string, Summary> out;
  std::istringstream lines(r.output);
  std::string name, first, sum;
  Summary s;
  while (lines >> name >> s.dtype >> s.numel >> first >> sum) {
    s.first = std::strtod(first.c_str(), nullptr);
    s.sum = std::strtod(sum.c_str(), nullptr);
    out[name] = s;
  }
  REQUIRE(out.size() == names.size());
  return out;
}

double element(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kF32: return t.data_as<float>()[i];
    case DType::kF16: return rt::half_to_float(t.data_as<uint16_t>()[i]);
    case DType::kBF16: return rt::bf16_to_float(t.data_as<uint16_t>()[i]);
    case DType::kI64: return static_cast<double>(t.data_as<int64_t>()[i]);
    default: FAIL("no element reader for " << dtype_name(t.dtype())); return 0;
  }
}

// Our view of each tensor must give Python's numel, first value and sequential sum exactly.
void expect_same_as_python(const SafetensorsCheckpoint& ckpt, const std::string& path,
                           const std::vector<std::string>& names) {
  const auto expected = python_summaries(path, names);
  for (const auto& [name, want] : expected) {
    INFO(name);
    const Tensor* t = ckpt.find(name);
    REQUIRE(t != nullptr);
    CHECK(t->numel() == want.numel);
    double sum = 0;
    for (int64_t i = 0; i < t->numel(); ++i) sum += element(*t, i);
    CHECK(element(*t, 0) == want.first);
    CHECK(sum == want.sum);
  }
}

TEST_CASE("safetensors reads the real all-MiniLM-L6-v2 weights as views, equal to numpy's",
          "[safetensors]") {
  const std::string path =
      testing::model_path(std::string(testing::kMiniLmDir) + "/model.safetensors");
  if (path.empty()) return;
  auto ckpt = open_safetensors_checkpoint(path);
  INFO((ckpt.is_ok() ? "" : ckpt.status().message()));
  REQUIRE(ckpt.is_ok());
  CHECK(ckpt->tensors().size() == 104);
  CHECK(ckpt->files() == std::vector<std::string>{path});
  CHECK(ckpt->file_of("embeddings.word_embeddings.weight") == path);
  CHECK(ckpt->metadata() == std::vector<std::pair<std::string, std::string>>{{"format", "pt"}});
  const Tensor* words = ckpt->find("embeddings.word_embeddings.weight");
  REQUIRE(words != nullptr);
  CHECK(words->dtype() == DType::kF32);
  CHECK(words->dims() == std::vector<int64_t>{30522, 384});
  CHECK(words->is_view());
  const Tensor* positions = ckpt->find("embeddings.position_ids");
  REQUIRE(positions != nullptr);
  CHECK(positions->dtype() == DType::kI64);
  CHECK(positions->data_as<int64_t>()[511] == 511);
  for (const Tensor& t : ckpt->tensors()) CHECK(t.is_view());
  CHECK(ckpt->find("no.such.tensor") == nullptr);

  expect_same_as_python(*ckpt, path,
                        {"embeddings.word_embeddings.weight", "embeddings.position_ids",
                         "encoder.layer.0.attention.self.query.weight",
                         "encoder.layer.5.output.dense.bias", "embeddings.LayerNorm.weight"});

  // The model directory opens the same single file.
  const std::string dir = path.substr(0, path.rfind('/'));
  auto from_dir = open_safetensors_checkpoint(dir);
  REQUIRE(from_dir.is_ok());
  CHECK(from_dir->tensors().size() == 104);
  CHECK(from_dir->find("embeddings.word_embeddings.weight")->identical_to(*words));
}

TEST_CASE("safetensors fp16 and bf16 files round trip bit-exactly and match numpy",
          "[safetensors]") {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<uint16_t> halves(6 * 5), bf16s(4 * 3 * 2);
  for (auto& h : halves) h = rt::float_to_half(normal(rng));
  for (auto& b : bf16s) b = rt::float_to_bf16(normal(rng));
  halves[0] = 0x7BFF;  // 65504, the largest finite half
  bf16s[0] = 0xC049;   // -3.140625
  const std::vector<Tensor> tensors = {
      Tensor::from_vector("layer.w16", DType::kF16, {6, 5}, halves),
      Tensor::from_vector("layer.wbf16", DType::kBF16, {4, 3, 2}, bf16s),
      Tensor::from_vector("scalar", DType::kF32, {}, std::vector<float>{2.5f}),
      Tensor::from_vector("empty", DType::kF16, {3, 0}, std::vector<uint16_t>{}),
  };
  const std::string path = write_file_in(scratch_dir("safetensors"), "half.safetensors",
                                         make_safetensors(tensors, {"F16", "BF16", "F32", "F16"}));
  auto ckpt = read_safetensors_file(path);
  INFO((ckpt.is_ok() ? "" : ckpt.status().message()));
  REQUIRE(ckpt.is_ok());
  REQUIRE(ckpt->tensors().size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    INFO(tensors[i].name());
    CHECK(ckpt->tensors()[i].identical_to(tensors[i]));  // file order, bit-exact
    CHECK(ckpt->tensors()[i].is_view());
  }
  CHECK(element(*ckpt->find("layer.w16"), 0) == 65504.0);
  CHECK(element(*ckpt->find("layer.wbf16"), 0) == -3.140625);
  CHECK(ckpt->find("scalar")->numel() == 1);
  CHECK(ckpt->find("empty")->nbytes() == 0);
  expect_same_as_python(*ckpt, path, {"layer.w16", "layer.wbf16", "scalar"});
}

TEST_CASE("safetensors allows overlapping tensors and copies misaligned ones", "[safetensors]") {
  const std::string dir = scratch_dir("safetensors");
  SECTION("two tensors over the same bytes (documented as allowed)") {
    std::string data(16, '\0');
    const float values[4] = {1, 2, 3, 4};
    std::memcpy(data.data(), values, 16);
    std::string header = R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
    while (header.size() % 8 != 0) header += ' ';  // keep the floats aligned, so both are views
    const std::string path =
        write_file_in(dir, "overlap.safetensors", testing::safetensors_bytes(header, data));
    auto ckpt = read_safetensors_file(path);
    REQUIRE(ckpt.is_ok());
    CHECK(ckpt->find("b")->data_as<float>()[0] == 2.0f);
    CHECK(ckpt->find("b")->data() == ckpt->find("a")->data() + 4);
  }
  SECTION("a header length that is not a multiple of 8 leaves floats misaligned") {
    const Tensor t = Tensor::from_vector("w", DType::kF32, {3}, std::vector<float>{1.5f, -2, 8});
    std::string bytes = make_safetensors({t}, {"F32"}, /*pad_header=*/false);
    std::string header = bytes.substr(8, bytes.size() - 8 - 12);
    while ((8 + header.size()) % 4 == 0) header += ' ';
    const std::string path =
        write_file_in(dir, "odd.safetensors", testing::safetensors_bytes(header, bytes.substr(bytes.size() - 12)));
    auto ckpt = read_safetensors_file(path);
    REQUIRE(ckpt.is_ok());
    const Tensor* w = ckpt->find("w");
    CHECK_FALSE(w->is_view());
    CHECK(w->identical_to(t));
  }
}

TEST_CASE("safetensors sharded checkpoints join their shards through the index", "[safetensors]") {
  const std::string dir = scratch_dir("safetensors");
  const Tensor a = Tensor::from_vector("model.a", DType::kF32, {2}, std::vector<float>{1, 2});
  const Tensor b = Tensor::from_vector("model.b", DType::kI64, {1}, std::vector<int64_t>{-7});
  const Tensor c = Tensor::from_vector("model.c", DType::kF32, {1}, std::vector<float>{9});
  const std::string shard1 = write_file_in(dir, "model-00001-of-00002.safetensors",
                                           make_safetensors({a, b}, {"F32", "I64"}));
  const std::string shard2 =
      write_file_in(dir, "model-00002-of-00002.safetensors", make_safetensors({c}, {"F32"}));
  write_file_in(dir, "model.safetensors.index.json",
                R"({"metadata": {"total_size": 20}, "weight_map": {
                     "model.c": "model-00002-of-00002.safetensors",
                     "model.a": "model-00001-of-00002.safetensors",
                     "model.b": "model-00001-of-00002.safetensors"}})");
  auto ckpt = open_safetensors_checkpoint(dir);
  INFO((ckpt.is_ok() ? "" : ckpt.status().message()));
  REQUIRE(ckpt.is_ok());
  CHECK(ckpt->files() == std::vector<std::string>{shard2, shard1});  // as the index names them
  REQUIRE(ckpt->tensors().size() == 3);
  CHECK(ckpt->find("model.a")->identical_to(a));
  CHECK(ckpt->find("model.b")->identical_to(b));
  CHECK(ckpt->find("model.c")->identical_to(c));
  CHECK(ckpt->file_of("model.a") == shard1);
  CHECK(ckpt->file_of("model.c") == shard2);
  // The index file itself works as well as its directory.
  auto by_index = open_safetensors_checkpoint(dir + "/model.safetensors.index.json");
  REQUIRE(by_index.is_ok());
  CHECK(by_index->tensors().size() == 3);
}

}  // namespace
}  // namespace llmc
