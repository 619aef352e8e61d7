// tools/calibration_loader: which reader a --calib file goes to (by content), the windows text
// and token files give, tensor files viewed in place, and errors that name the file.
#include "tools/calibration_loader.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "formats/llama2c_import.h"
#include "formats/llama2c_tokenizer.h"
#include "formats/npy.h"
#include "tests/support/npz_files.h"
#include "tests/support/small_models.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::calib;
using namespace llmc::testing;
using llmc::cli::load_calibration_file;

namespace {

// Only the graph's inputs and outputs matter to calibration data.
Model tiny_lm(int64_t vocab = 32) { return tiny_lm_interface(vocab, false); }

std::vector<int64_t> ids_of(const Feeds& f) {
  const rt::Value& v = f.at("input_ids");
  return std::vector<int64_t>(v.data<int64_t>(), v.data<int64_t>() + v.numel());
}

void expect_error(const Status& s, const std::string& a, const std::string& b = "") {
  INFO(s.message());
  REQUIRE(!s.is_ok());
  CHECK(s.message().find(a) != std::string::npos);
  CHECK(s.message().find(b) != std::string::npos);
}

// The file this process has mapped at `p` ("" when none), from /proc/self/maps.
std::string mapped_file_at(const void* p) {
  std::ifstream maps("/proc/self/maps");
  const auto addr = reinterpret_cast<uintptr_t>(p);
  for (std::string line; std::getline(maps, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) != 2 || addr < lo || addr >= hi) continue;
    const size_t slash = line.find('/');
    return slash == std::string::npos ? "" : line.substr(slash);
  }
  return "";
}

}  // namespace

TEST_CASE("TinyStories text through stories260K's tokenizer gives seeded windows", "[tools][calibration]") {
  const std::string model_path = data_path("llama2c/stories260K.bin");
  const std::string tok_path = data_path("llama2c/tok512.bin");
  const std::string text_path = data_path("corpora/tinystories_val_prefix.txt");
  if (model_path.empty() || tok_path.empty() || text_path.empty()) return;
  auto model = import_llama2c(model_path);
  REQUIRE(model.is_ok());
  auto tok = Llama2cTokenizer::from_file(tok_path);
  REQUIRE(tok.is_ok());
  CalibrationOptions o;
  o.num_samples = 6;
  o.seq_len = 48;
  o.seed = 7;
  auto set = load_calibration_file(*model, text_path, &*tok, o);
  REQUIRE(set.is_ok());
  REQUIRE(set->size() == 6);
  for (const Feeds& f : set->samples) {
    CHECK(f.size() == 11);  // input_ids + 10 past_key_values
    CHECK(f.at("input_ids").dtype() == DType::kI64);
    CHECK(f.at("input_ids").shape() == std::vector<int64_t>{1, 48});
    CHECK(f.at("past_key_values.3.value").shape() == std::vector<int64_t>{1, 4, 0, 8});
    CHECK(f.at("past_key_values.3.value").dtype() == DType::kF32);
  }
  // The windows are slices of encode_lines at the seeded offsets.
  const auto tokens = encode_lines(*tok, read_text(text_path));
  auto offsets = window_offsets(static_cast<int64_t>(tokens.size()), o);
  REQUIRE(offsets.is_ok());
  for (size_t i = 0; i < 6; ++i) {
    std::vector<int64_t> want(tokens.begin() + (*offsets)[i], tokens.begin() + (*offsets)[i] + 48);
    CHECK(ids_of(set->samples[i]) == want);
  }
  // Deterministic per seed; another seed moves the windows.
  auto again = load_calibration_file(*model, text_path, &*tok, o);
  REQUIRE(again.is_ok());
  for (size_t i = 0; i < 6; ++i) CHECK(ids_of(again->samples[i]) == ids_of(set->samples[i]));
  o.seed = 8;
  auto other = load_calibration_file(*model, text_path, &*tok, o);
  REQUIRE(other.is_ok());
  CHECK(ids_of(other->samples[0]) != ids_of(set->samples[0]));
  // Evenly spaced: the first window opens the file (BOS), the last ends it.
  o.placement = WindowPlacement::kEvenlySpaced;
  o.max_tokens = 2000;
  auto even = load_calibration_file(*model, text_path, &*tok, o);
  REQUIRE(even.is_ok());
  CHECK(ids_of(even->samples[0])[0] == Llama2cTokenizer::kBos);
  CHECK(even->source.find("evenly spaced") != std::string::npos);
  // A window longer than the model's maximum sequence length is refused.
  o.seq_len = 100000;
  expect_error(load_calibration_file(*model, text_path, &*tok, o).status(), text_path, "maximum");
}

TEST_CASE("bad text calibration input names the file", "[tools][calibration]") {
  const std::string tok_path = data_path("llama2c/tok512.bin");
  if (tok_path.empty()) return;
  auto tok = Llama2cTokenizer::from_file(tok_path);
  REQUIRE(tok.is_ok());
  const Model m = tiny_lm(tok->vocab_size());
  CalibrationOptions o;
  o.seq_len = 64;
  const std::string short_text = write_scratch_file("short.txt", "Once upon a time.\n\n");
  expect_error(load_calibration_file(m, short_text, &*tok, o).status(), short_text, "fewer than the sequence length 64");
  const std::string empty = write_scratch_file("empty.txt", "");
  expect_error(load_calibration_file(m, empty, &*tok, o).status(), empty, "empty");
  const std::string blank = write_scratch_file("blank.txt", "\n\r\n\n");
  expect_error(load_calibration_file(m, blank, &*tok, o).status(), blank, "only blank lines");
  expect_error(load_calibration_file(m, "/nonexistent/x.txt", &*tok, o).status(), "/nonexistent/x.txt");
  o.seq_len = 4;
  o.num_samples = -1;
  expect_error(load_calibration_file(m, short_text, &*tok, o).status(), short_text, "must be positive");
  o.num_samples = 2;
  auto ok = load_calibration_file(m, short_text, &*tok, o);
  REQUIRE(ok.is_ok());
  CHECK(ok->size() == 2);
  expect_error(load_calibration_file(m, short_text, nullptr, o).status(), short_text, "needs a tokenizer");
}

TEST_CASE("1-D integer npy files are token streams windowed like text", "[tools][calibration]") {
  const Model m = tiny_lm();
  std::vector<int32_t> toks(100);
  for (int i = 0; i < 100; ++i) toks[i] = i % 32;
  const std::string dir = scratch_dir("tokens");
  REQUIRE(write_npy(dir + "/t32.npy", Tensor::from_vector("t", DType::kI32, {100}, toks)).is_ok());
  REQUIRE(write_npy(dir + "/t64.npy", Tensor::from_vector("t", DType::kI64, {100}, std::vector<int64_t>(toks.begin(), toks.end()))).is_ok());
  CalibrationOptions o;
  o.num_samples = 3;
  o.seq_len = 20;
  o.seed = 3;
  auto want = calibration_from_tokens(m, toks, o, dir + "/t32.npy");
  REQUIRE(want.is_ok());
  for (const char* name : {"/t32.npy", "/t64.npy"}) {
    auto set = load_calibration_file(m, dir + name, nullptr, o);  // no tokenizer needed
    REQUIRE(set.is_ok());
    REQUIRE(set->size() == 3);
    for (size_t i = 0; i < 3; ++i) CHECK(ids_of(set->samples[i]) == ids_of(want->samples[i]));
    CHECK(set->source == dir + name + ": 3 windows of 20 tokens from 100 (seed 3)");
  }
  REQUIRE(write_npy(dir + "/empty.npy", Tensor::from_vector("t", DType::kI64, {0}, std::vector<int64_t>{})).is_ok());
  expect_error(load_calibration_file(m, dir + "/empty.npy", nullptr, o).status(), dir + "/empty.npy", "no tokens");
  REQUIRE(write_npy(dir + "/big.npy", Tensor::from_vector("t", DType::kI32, {30}, std::vector<int32_t>(30, 40))).is_ok());
  expect_error(load_calibration_file(m, dir + "/big.npy", nullptr, o).status(), dir + "/big.npy", "outside the vocabulary");
  // int64 ids that do not fit a token id are refused before windowing.
  std::vector<int64_t> huge(30, 1);
  huge[7] = int64_t{1} << 40;
  REQUIRE(write_npy(dir + "/huge.npy", Tensor::from_vector("t", DType::kI64, {30}, huge)).is_ok());
  expect_error(load_calibration_file(m, dir + "/huge.npy", nullptr, o).status(), dir + "/huge.npy",
               "token 7 is 1099511627776, not a valid token id");
  huge[7] = -2;
  REQUIRE(write_npy(dir + "/neg.npy", Tensor::from_vector("t", DType::kI64, {30}, huge)).is_ok());
  expect_error(load_calibration_file(m, dir + "/neg.npy", nullptr, o).status(), dir + "/neg.npy", "not a valid token id");
  expect_error(load_calibration_file(m, dir + "/missing.npy", nullptr, o).status(), dir + "/missing.npy");
}

TEST_CASE("other npy files and npz archives are tensors viewed in place", "[tools][calibration]") {
  const Model m = tiny_lm();
  std::vector<int64_t> ids(4 * 6);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i % 32);
  const Tensor rows = Tensor::from_vector("whatever", DType::kI64, {4, 6}, ids);
  const std::string dir = scratch_dir("tensors");
  REQUIRE(write_npy(dir + "/ids.npy", rows).is_ok());
  CalibrationOptions o;
  o.num_samples = 3;
  {
    auto set = load_calibration_file(m, dir + "/ids.npy", nullptr, o);  // feeds input_ids, whatever its key
    REQUIRE(set.is_ok());
    REQUIRE(set->size() == 3);
    CHECK(set->source == dir + "/ids.npy: 3 of 4 samples");
    CHECK(ids_of(set->samples[1]) == std::vector<int64_t>(ids.begin() + 6, ids.begin() + 12));
    // No copies: the samples view the file's mapping, which the set keeps alive.
    const std::string canonical = std::filesystem::canonical(dir + "/ids.npy").string();
    for (const Feeds& f : set->samples) CHECK(mapped_file_at(f.at("input_ids").raw()) == canonical);
  }
  // A 1-D float array is no token file: it is a tensor, and the wrong dtype for input_ids.
  REQUIRE(write_npy(dir + "/f.npy", Tensor::from_vector("t", DType::kF32, {4}, std::vector<float>{1, 2, 3, 4})).is_ok());
  expect_error(load_calibration_file(m, dir + "/f.npy", nullptr, o).status(), dir + "/f.npy: ",
               "array 'input_ids' is f32");
  // An npz by extension, and a zip by content whatever its name.
  const Tensor ids3 = Tensor::from_vector("input_ids", DType::kI64, {4, 1, 6}, ids);
  const std::string zip = make_zip({{"input_ids.npy", npy_bytes(ids3)}});
  o.num_samples = 10;
  for (const char* name : {"set.npz", "set.bin"}) {
    const std::string path = write_scratch_file(name, zip);
    auto z = load_calibration_file(m, path, nullptr, o);
    REQUIRE(z.is_ok());
    REQUIRE(z->size() == 4);
    CHECK(ids_of(z->samples[3]) == std::vector<int64_t>(ids.begin() + 18, ids.end()));
    CHECK(z->source == path + ": 4 of 4 samples");
  }
  // Refusals name the file, from the reader and from the calibration set alike.
  const std::string unknown = write_scratch_file("unknown.npz", make_zip({{"pixels.npy", npy_bytes(rows)}}));
  expect_error(load_calibration_file(m, unknown, nullptr, o).status(), unknown, "'pixels' matches no model input");
  const std::string broken = write_scratch_file("broken.npz", "PK\x03\x04 and then nothing");
  expect_error(load_calibration_file(m, broken, nullptr, o).status(), broken, "not a zip archive");
  const std::string deflated = write_scratch_file("deflated.npz", make_zip({{"input_ids.npy", npy_bytes(ids3)}}, 8));
  expect_error(load_calibration_file(m, deflated, nullptr, o).status(), deflated, "numpy.savez_compressed");
  Model two = m;
  two.graph.inputs = {tensor_value("a", DType::kI64, {sym("b"), sym("s")}), tensor_value("b", DType::kI64, {sym("b"), sym("s")})};
  expect_error(load_calibration_file(two, dir + "/ids.npy", nullptr, o).status(), dir + "/ids.npy: ",
               "name the one this .npy holds");
  o.input_name = "b";  // now it feeds b, and nothing feeds a
  expect_error(load_calibration_file(two, dir + "/ids.npy", nullptr, o).status(), dir + "/ids.npy: ",
               "no array for the model input 'a'");
  o.input_name.clear();
  o.num_samples = 0;
  expect_error(load_calibration_file(m, dir + "/ids.npy", nullptr, o).status(), dir + "/ids.npy: ", "must be positive");
}

TEST_CASE("numpy.savez archives feed the model inputs they name", "[tools][calibration]") {
  const std::string py = venv_python();
  if (py.empty()) return;
  const std::string dir = scratch_dir("numpy");
  const std::string script =
      "import numpy as np\n"
      "ids = np.arange(24, dtype=np.int64).reshape(3, 1, 8)\n"
      "np.savez('" + dir + "/ok.npz', input_ids=ids)\n"
      "np.savez('" + dir + "/s.npz', input_ids=ids, extra=np.linspace(0, 1, 5, dtype=np.float32))\n";
  REQUIRE(run_shell(shell_quote(py) + " " + shell_quote(write_scratch_file("make.py", script))).exit_code == 0);
  const Model m = tiny_lm();
  CalibrationOptions o;
  auto set = load_calibration_file(m, dir + "/ok.npz", nullptr, o);
  REQUIRE(set.is_ok());
  REQUIRE(set->size() == 3);
  CHECK(ids_of(set->samples[2]) == std::vector<int64_t>{16, 17, 18, 19, 20, 21, 22, 23});
  expect_error(load_calibration_file(m, dir + "/s.npz", nullptr, o).status(), dir + "/s.npz",
               "'extra' matches no model input");
}
