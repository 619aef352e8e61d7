// The GGUF reader on the real SmolLM2 file (cross-checked with the `gguf` package) and on
// hand-built hostile files: every one an error naming the file and what is wrong, never a crash;
// through the CLI, exit 2 and no output file.
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>

#include "formats/gguf_import.h"
#include "formats/gguf_reader.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

// Writes GGUF bytes field by field.
struct GgufBuilder {
  std::string bytes;
  template <typename T>
  GgufBuilder& pod(T v) {
    bytes.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  GgufBuilder& str(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes += s;
    return *this;
  }
  GgufBuilder& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    bytes += "GGUF";
    return pod<uint32_t>(version).pod<uint64_t>(tensors).pod<uint64_t>(kvs);
  }
  GgufBuilder& kv_string(const std::string& key, const std::string& value) {
    return str(key).pod<uint32_t>(8).str(value);
  }
  GgufBuilder& kv_u32(const std::string& key, uint32_t value) { return str(key).pod<uint32_t>(4).pod<uint32_t>(value); }
  GgufBuilder& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).pod<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) pod<uint64_t>(d);
    return pod<uint32_t>(type).pod<uint64_t>(offset);
  }
  GgufBuilder& align(size_t a = 32) {
    bytes.resize((bytes.size() + a - 1) / a * a, '\0');
    return *this;
  }
  std::string write(const std::string& dir, const std::string& name) const {
    const std::string p = dir + "/" + name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
};

// One F32 tensor [4] after a one-key header: the smallest valid file.
GgufBuilder valid_file() {
  GgufBuilder b;
  b.header(1, 1).kv_string("general.architecture", "llama").tensor("t", {4}, 0, 0).align();
  for (int i = 0; i < 4; ++i) b.pod<float>(float(i));
  return b;
}

void expect_error(const std::string& path, const std::string& what) {
  auto g = GgufFile::open(path);
  REQUIRE_FALSE(g.is_ok());
  INFO(g.status().message());
  CHECK(g.status().message().find(path) != std::string::npos);
  CHECK(g.status().message().find(what) != std::string::npos);
}

}  // namespace

TEST_CASE("GGUF reader: the smallest valid file", "[gguf]") {
  const std::string dir = scratch_dir("gguf_valid");
  auto g = GgufFile::open(valid_file().write(dir, "ok.gguf"));
  REQUIRE(g.is_ok());
  CHECK(g->version() == 3);
  REQUIRE(g->tensors().size() == 1);
  const auto& t = g->tensors()[0];
  CHECK(t.dims() == std::vector<int64_t>{4});
  CHECK(t.nbytes == 16);
  float v[4];
  std::memcpy(v, g->tensor_data(t), 16);
  CHECK(v[3] == 3.0f);
  CHECK(g->get_string("general.architecture").value() == "llama");
  CHECK_FALSE(g->get_int("general.architecture", 0, 10).is_ok());
}

TEST_CASE("GGUF reader: hostile files give one error naming the file", "[gguf]") {
  const std::string dir = scratch_dir("gguf_bad");
  const std::string valid = valid_file().bytes;
  // Truncated at every length: an error, never a crash (the first bytes lose the magic).
  for (size_t n = 0; n < valid.size(); ++n) {
    GgufBuilder cut;
    cut.bytes = valid.substr(0, n);
    auto g = GgufFile::open(cut.write(dir, "cut.gguf"));
    INFO("cut at " << n);
    CHECK_FALSE(g.is_ok());
  }
  {
    GgufBuilder cut;
    cut.bytes = valid.substr(0, valid.size() - 1);
    expect_error(cut.write(dir, "short_data.gguf"), "past the end of the file");
  }
  GgufBuilder offset;
  offset.header(1, 0).tensor("w", {4}, 0, 64).align().pod<float>(1).pod<float>(2).pod<float>(3).pod<float>(4);
  expect_error(offset.write(dir, "offset.gguf"), "tensor 'w'");
  GgufBuilder type;
  type.header(1, 0).tensor("w", {32}, 16, 0).align();
  expect_error(type.write(dir, "type.gguf"), "IQ2_XXS");
  GgufBuilder str_len;
  str_len.header(0, 1).str("general.name").pod<uint32_t>(8).pod<uint64_t>(1ull << 40).str("x");
  expect_error(str_len.write(dir, "strlen.gguf"), "general.name");
  GgufBuilder array;
  array.header(0, 1).str("tokenizer.ggml.tokens").pod<uint32_t>(9).pod<uint32_t>(8).pod<uint64_t>(~0ull >> 1);
  expect_error(array.write(dir, "array.gguf"), "tokenizer.ggml.tokens");
  GgufBuilder dims;
  dims.header(1, 0).tensor("w", {1ull << 32, 1ull << 32}, 0, 0).align();
  expect_error(dims.write(dir, "dims.gguf"), "overflows");
  GgufBuilder version;
  version.header(0, 0, 1);
  expect_error(version.write(dir, "v1.gguf"), "version 1");
  GgufBuilder dup;
  dup.header(0, 2).kv_u32("a", 1).kv_u32("a", 2);
  expect_error(dup.write(dir, "dup.gguf"), "'a' appears twice");
  GgufBuilder align;
  align.header(0, 1).kv_u32("general.alignment", 3);
  expect_error(align.write(dir, "align.gguf"), "power of two");
  GgufBuilder q4;
  q4.header(1, 0).tensor("w", {33}, 2, 0).align();
  expect_error(q4.write(dir, "q4rows.gguf"), "blocks");
}

TEST_CASE("GGUF import refuses other architectures by name", "[gguf]") {
  const std::string dir = scratch_dir("gguf_arch");
  GgufBuilder b;
  b.header(0, 1).kv_string("general.architecture", "mamba");
  const std::string path = b.write(dir, "mamba.gguf");
  auto g = GgufFile::open(path);
  REQUIRE(g.is_ok());
  auto m = gguf_to_model(*g);
  REQUIRE_FALSE(m.is_ok());
  CHECK(m.status().message().find("'mamba'") != std::string::npos);
  // Through the CLI: exit 2, one line naming the file, nothing written.
  const std::string out = dir + "/out.onnx";
  auto r = run_cli("convert " + shell_quote(path) + " -o " + shell_quote(out));
  CHECK(r.exit_code == 2);
  CHECK(r.errors.find(path) != std::string::npos);
  CHECK(std::count(r.errors.begin(), r.errors.end(), '\n') == 1);
  CHECK_FALSE(file_exists(out));
  // A llama file missing its hyperparameters names the key.
  GgufBuilder llama;
  llama.header(0, 1).kv_string("general.architecture", "llama");
  auto g2 = GgufFile::open(llama.write(dir, "llama.gguf"));
  REQUIRE(g2.is_ok());
  auto m2 = gguf_to_model(*g2);
  REQUIRE_FALSE(m2.is_ok());
  CHECK(m2.status().message().find("llama.block_count") != std::string::npos);
}

TEST_CASE("GGUF reader on SmolLM2: metadata and tensors as the gguf package reads them", "[gguf][smollm2]") {
  const std::string path = model_path(kSmolLm2Gguf);
  const std::string py = venv_python();
  if (path.empty() || py.empty()) return;
  auto g = GgufFile::open(path);
  REQUIRE(g.is_ok());
  // The package's view: tensor count, per tensor name/type/shape/offset, a few metadata values.
  const std::string script =
      "import sys, gguf\n"
      "r = gguf.GGUFReader(sys.argv[1])\n"
      "print(len(r.tensors))\n"
      "for t in r.tensors: print(t.name, int(t.tensor_type), *[int(n) for n in t.shape], int(t.data_offset))\n"
      "for k in ['llama.block_count', 'llama.rope.freq_base', 'tokenizer.ggml.pre']: print(k, r.fields[k].contents())\n"
      "print(len(r.fields['tokenizer.ggml.tokens'].contents()), len(r.fields['tokenizer.ggml.merges'].contents()))\n";
  const std::string dir = scratch_dir("gguf_py");
  std::ofstream(dir + "/read.py") << script;
  auto r = run_shell(shell_quote(py) + " " + shell_quote(dir + "/read.py") + " " + shell_quote(path));
  REQUIRE(r.exit_code == 0);
  std::istringstream in(r.output);
  size_t count = 0;
  in >> count;
  REQUIRE(count == g->tensors().size());
  const auto& f = *g->mapping();
  for (size_t i = 0; i < count; ++i) {
    std::string line;
    if (i == 0) std::getline(in, line);
    std::getline(in, line);
    std::istringstream ls(line);
    std::string name;
    ls >> name;
    std::vector<int64_t> nums;
    for (int64_t v; ls >> v;) nums.push_back(v);
    const GgufTensorInfo* t = g->find_tensor(name);
    REQUIRE(t != nullptr);
    CHECK(static_cast<int64_t>(t->type) == nums.front());
    CHECK(std::vector<int64_t>(nums.begin() + 1, nums.end() - 1) == t->ne);
    CHECK(g->tensor_data(*t) - f.data() == nums.back());
  }
  std::string key, value;
  in >> key >> value;
  CHECK(g->get_int("llama.block_count", 0, 1000).value() == std::stoll(value));
  in >> key >> value;
  CHECK(g->get_float("llama.rope.freq_base").value() == std::stod(value));
  in >> key >> value;
  CHECK(g->get_string("tokenizer.ggml.pre").value() == value);
  size_t tokens = 0, merges = 0;
  in >> tokens >> merges;
  CHECK(g->get_strings("tokenizer.ggml.tokens")->size() == tokens);
  CHECK(g->get_strings("tokenizer.ggml.merges")->size() == merges);
}
