// Calibration sets from text (TinyStories through stories260K's tokenizer), token .npy files and
// tensor .npy/.npz files; the .npz reader (hand-made zips and numpy.savez); errors naming files.
#include <catch2/catch.hpp>

#include "calibration/calibration_data.h"
#include "calibration/npz.h"
#include "formats/llama2c_import.h"
#include "formats/npy.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::calib;
using namespace llmc::testing;

namespace {

ValueInfo input(const std::string& name, DType t, std::vector<Dim> dims) {
  ValueInfo v;
  v.name = name;
  v.type.kind = ValueType::Kind::kTensor;
  v.type.elem = t;
  v.type.has_shape = true;
  v.type.dims = std::move(dims);
  return v;
}
Dim sym(const char* s) { return Dim{-1, s, ""}; }
Dim num(int64_t n) { return Dim{n, "", ""}; }

// Only the graph's inputs and outputs matter to calibration data.
Model tiny_lm(int64_t vocab = 32) {
  Model m;
  m.graph.inputs = {input("input_ids", DType::kI64, {sym("b"), sym("s")}),
                    input("attention_mask", DType::kI64, {sym("b"), sym("t")}),
                    input("position_ids", DType::kI32, {sym("b"), sym("s")}),
                    input("past_key_values.0.key", DType::kF32, {sym("b"), num(2), sym("p"), num(4)}),
                    input("past_key_values.0.value", DType::kF32, {sym("b"), num(2), sym("p"), num(4)})};
  m.graph.outputs = {input("logits", DType::kF32, {sym("b"), sym("s"), num(vocab)})};
  return m;
}

std::string npy_bytes(const Tensor& t) {
  const std::string path = scratch_dir("npy") + "/t.npy";
  REQUIRE(write_npy(path, t).is_ok());
  return read_text(path);
}

std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

// A minimal zip (no CRCs, which the reader does not check) of `members`, with `method`.
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& members, int method = 0) {
  std::string out, cd;
  for (const auto& [name, data] : members) {
    const uint64_t off = out.size();
    out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(method, 2) + le(0, 4) + le(0, 4) + le(data.size(), 4) +
           le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
    cd += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(method, 2) + le(0, 4) + le(0, 4) +
          le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 2) +
          le(0, 4) + le(off, 4) + name;
  }
  const uint64_t cd_off = out.size();
  out += cd + le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(members.size(), 2) + le(members.size(), 2) +
         le(cd.size(), 4) + le(cd_off, 4) + le(0, 2);
  return out;
}

std::string write_file(const std::string& name, const std::string& bytes) {
  const std::string path = scratch_dir("calib") + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  return path;
}

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

}  // namespace

TEST_CASE("TinyStories text through stories260K's tokenizer gives seeded windows", "[calibration][data]") {
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
  auto set = calibration_from_text(*model, *tok, text_path, o);
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
  auto again = calibration_from_text(*model, *tok, text_path, o);
  REQUIRE(again.is_ok());
  for (size_t i = 0; i < 6; ++i) CHECK(ids_of(again->samples[i]) == ids_of(set->samples[i]));
  o.seed = 8;
  auto other = calibration_from_text(*model, *tok, text_path, o);
  REQUIRE(other.is_ok());
  CHECK(ids_of(other->samples[0]) != ids_of(set->samples[0]));
  // Evenly spaced: the first window opens the file (BOS), the last ends it.
  o.placement = WindowPlacement::kEvenlySpaced;
  o.max_tokens = 2000;
  auto even = calibration_from_text(*model, *tok, text_path, o);
  REQUIRE(even.is_ok());
  CHECK(ids_of(even->samples[0])[0] == Llama2cTokenizer::kBos);
  CHECK(even->source.find("evenly spaced") != std::string::npos);
  // A window longer than the model's maximum sequence length is refused.
  o.seq_len = 100000;
  expect_error(calibration_from_text(*model, *tok, text_path, o).status(), text_path, "maximum");
}

TEST_CASE("window offsets and token feeds", "[calibration][data]") {
  CalibrationOptions o;
  o.num_samples = 5;
  o.seq_len = 10;
  o.placement = WindowPlacement::kEvenlySpaced;
  auto off = window_offsets(50, o);
  REQUIRE(off.is_ok());
  CHECK(*off == std::vector<int64_t>{0, 10, 20, 30, 40});
  o.placement = WindowPlacement::kSeededRandom;
  off = window_offsets(50, o);
  REQUIRE(off.is_ok());
  for (int64_t x : *off) CHECK((x >= 0 && x <= 40));
  CHECK(window_offsets(10, o).is_ok());  // exactly one window's worth
  expect_error(window_offsets(9, o).status(), "fewer than the sequence length 10");
  o.num_samples = 0;
  expect_error(window_offsets(50, o).status(), "must be positive");

  const Model m = tiny_lm();
  std::vector<int32_t> toks{5, 6, 7};
  auto f = token_feeds(m, toks.data(), 3);
  REQUIRE(f.is_ok());
  CHECK(f->at("attention_mask").shape() == std::vector<int64_t>{1, 3});
  CHECK(f->at("attention_mask").data<int64_t>()[2] == 1);
  CHECK(f->at("position_ids").dtype() == DType::kI32);
  CHECK(f->at("position_ids").data<int32_t>()[2] == 2);
  CHECK(f->at("past_key_values.0.key").shape() == std::vector<int64_t>{1, 2, 0, 4});
  Model odd = m;
  odd.graph.inputs.push_back(input("pixel_values", DType::kF32, {sym("b"), num(3)}));
  expect_error(token_feeds(odd, toks.data(), 3).status(), "pixel_values");
}

TEST_CASE("token .npy files are windowed like text", "[calibration][data]") {
  const Model m = tiny_lm();
  std::vector<int32_t> toks(100);
  for (int i = 0; i < 100; ++i) toks[i] = i % 32;
  const std::string dir = scratch_dir("tokens");
  REQUIRE(write_npy(dir + "/t32.npy", Tensor::from_vector("t", DType::kI32, {100}, toks)).is_ok());
  CalibrationOptions o;
  o.num_samples = 3;
  o.seq_len = 20;
  o.seed = 3;
  auto set = calibration_from_token_file(m, dir + "/t32.npy", o);
  REQUIRE(set.is_ok());
  REQUIRE(set->size() == 3);
  auto off = window_offsets(100, o);
  CHECK(ids_of(set->samples[1])[0] == (*off)[1] % 32);
  // load_calibration_set routes a 1-D integer .npy to the token path.
  auto routed = load_calibration_set(m, dir + "/t32.npy", nullptr, o);
  REQUIRE(routed.is_ok());
  CHECK(ids_of(routed->samples[2]) == ids_of(set->samples[2]));

  REQUIRE(write_npy(dir + "/f.npy", Tensor::from_vector("t", DType::kF32, {4}, std::vector<float>{1, 2, 3, 4})).is_ok());
  expect_error(calibration_from_token_file(m, dir + "/f.npy", o).status(), dir + "/f.npy", "1-D int32 or int64");
  REQUIRE(write_npy(dir + "/empty.npy", Tensor::from_vector("t", DType::kI64, {0}, std::vector<int64_t>{})).is_ok());
  expect_error(calibration_from_token_file(m, dir + "/empty.npy", o).status(), dir + "/empty.npy", "no tokens");
  REQUIRE(write_npy(dir + "/big.npy", Tensor::from_vector("t", DType::kI32, {30}, std::vector<int32_t>(30, 40))).is_ok());
  expect_error(calibration_from_token_file(m, dir + "/big.npy", o).status(), dir + "/big.npy", "outside the vocabulary");
}

TEST_CASE("tensor .npy and .npz files split along the sample dimension", "[calibration][data]") {
  const Model m = tiny_lm();
  std::vector<int64_t> ids(4 * 6);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i % 32);
  const Tensor rows = Tensor::from_vector("input_ids", DType::kI64, {4, 6}, ids);
  const std::string dir = scratch_dir("tensors");
  REQUIRE(write_npy(dir + "/ids.npy", rows).is_ok());
  CalibrationOptions o;
  o.num_samples = 3;  // at most 3 of the 4
  auto set = calibration_from_tensor_file(m, dir + "/ids.npy", o);
  REQUIRE(set.is_ok());
  REQUIRE(set->size() == 3);
  CHECK(ids_of(set->samples[1]) == std::vector<int64_t>(ids.begin() + 6, ids.begin() + 12));
  CHECK(set->samples[1].at("past_key_values.0.value").shape() == std::vector<int64_t>{1, 2, 0, 4});
  CHECK(set->samples[1].at("attention_mask").shape() == std::vector<int64_t>{1, 6});

  // .npz keyed by input name, samples first ([N, 1, 6]), with an explicit attention mask.
  const Tensor ids3 = Tensor::from_vector("input_ids", DType::kI64, {4, 1, 6}, ids);
  std::vector<int64_t> mask(24, 1);
  mask[5] = 0;
  const Tensor mask3 = Tensor::from_vector("attention_mask", DType::kI64, {4, 1, 6}, mask);
  const std::string npz = write_file("set.npz", make_zip({{"input_ids.npy", npy_bytes(ids3)},
                                                          {"attention_mask.npy", npy_bytes(mask3)}}));
  o.num_samples = 10;
  auto z = load_calibration_set(m, npz, nullptr, o);
  REQUIRE(z.is_ok());
  REQUIRE(z->size() == 4);
  CHECK(z->samples[0].at("attention_mask").data<int64_t>()[5] == 0);
  CHECK(ids_of(z->samples[3]) == std::vector<int64_t>(ids.begin() + 18, ids.end()));

  // Refusals name the file.
  const Tensor f32 = Tensor::from_vector("input_ids", DType::kF32, {2, 3}, std::vector<float>(6, 1.f));
  REQUIRE(write_npy(dir + "/f32.npy", f32).is_ok());
  expect_error(calibration_from_tensor_file(m, dir + "/f32.npy", o).status(), dir + "/f32.npy", "is f32");
  const Tensor rank4 = Tensor::from_vector("input_ids", DType::kI64, {1, 1, 1, 6}, std::vector<int64_t>(6, 1));
  const std::string unknown = write_file("unknown.npz", make_zip({{"pixels.npy", npy_bytes(rows)}}));
  expect_error(calibration_from_tensor_file(m, unknown, o).status(), unknown, "'pixels' matches no model input");
  const std::string deep = write_file("deep.npz", make_zip({{"input_ids.npy", npy_bytes(rank4)}}));
  expect_error(calibration_from_tensor_file(m, deep, o).status(), deep, "expected rank 3");
  const Tensor none = Tensor::from_vector("input_ids", DType::kI64, {0, 6}, std::vector<int64_t>{});
  const std::string empty = write_file("empty.npz", make_zip({{"input_ids.npy", npy_bytes(none)}}));
  expect_error(calibration_from_tensor_file(m, empty, o).status(), empty, "no samples");
  const Tensor two = Tensor::from_vector("attention_mask", DType::kI64, {2, 6}, std::vector<int64_t>(12, 1));
  const std::string uneven = write_file("uneven.npz", make_zip({{"input_ids.npy", npy_bytes(rows)},
                                                               {"attention_mask.npy", npy_bytes(two)}}));
  expect_error(calibration_from_tensor_file(m, uneven, o).status(), uneven, "2 samples");
  o.num_samples = 0;
  expect_error(calibration_from_tensor_file(m, npz, o).status(), npz, "must be positive");
}

TEST_CASE("npz reader: members, refusals", "[calibration][npz]") {
  const Tensor a = Tensor::from_vector("a", DType::kF32, {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  const Tensor b = Tensor::from_vector("b", DType::kI32, {4}, std::vector<int32_t>{7, 8, 9, 10});
  // An odd-length first name leaves b's data misaligned in the file: it is copied, not viewed.
  const std::string zip = write_file("ab.npz", make_zip({{"a.npy", npy_bytes(a)}, {"bb_odd.npy", npy_bytes(b)}}));
  auto arrays = read_npz(zip);
  REQUIRE(arrays.is_ok());
  REQUIRE(arrays->size() == 2);
  CHECK((*arrays)[0].name() == "a");
  CHECK((*arrays)[0].dims() == std::vector<int64_t>{2, 3});
  CHECK((*arrays)[0].data_as<float>()[5] == 6.f);
  CHECK((*arrays)[1].name() == "bb_odd");
  CHECK((*arrays)[1].data_as<int32_t>()[3] == 10);

  expect_error(read_npz(write_file("deflate.npz", make_zip({{"a.npy", npy_bytes(a)}}, 8))).status(), "deflate.npz",
               "numpy.savez_compressed");
  expect_error(read_npz(write_file("txt.npz", make_zip({{"a.txt", "hello"}}))).status(), "'a.txt'", "not a .npy");
  expect_error(read_npz(write_file("dup.npz", make_zip({{"a.npy", npy_bytes(a)}, {"a.npy", npy_bytes(a)}}))).status(),
               "dup.npz", "twice");
  expect_error(read_npz(write_file("plain.npz", "not a zip at all, just some text here")).status(), "plain.npz",
               "not a zip");
  std::string cut = make_zip({{"a.npy", npy_bytes(a)}});
  cut.erase(40, 30);  // drop part of the member's data
  expect_error(read_npz(write_file("cut.npz", cut)).status(), "cut.npz");
  expect_error(read_npz(write_file("bad.npz", make_zip({{"a.npy", "\x93NUMPY garbage"}}))).status(), "'a.npy'");
}

TEST_CASE("numpy.savez archives are read; savez_compressed ones are refused", "[calibration][npz]") {
  const std::string py = venv_python();
  if (py.empty()) return;
  const std::string dir = scratch_dir("numpy");
  const std::string script =
      "import numpy as np\n"
      "ids = np.arange(24, dtype=np.int64).reshape(3, 1, 8)\n"
      "np.savez('" + dir + "/s.npz', input_ids=ids, extra=np.linspace(0, 1, 5, dtype=np.float32))\n"
      "np.savez_compressed('" + dir + "/c.npz', input_ids=ids)\n";
  const std::string script_path = write_file("make.py", script);
  auto r = run_shell(shell_quote(py) + " " + shell_quote(script_path));
  REQUIRE(r.exit_code == 0);
  auto arrays = read_npz(dir + "/s.npz");
  REQUIRE(arrays.is_ok());
  REQUIRE(arrays->size() == 2);
  CHECK((*arrays)[0].name() == "input_ids");
  CHECK((*arrays)[0].dims() == std::vector<int64_t>{3, 1, 8});
  CHECK((*arrays)[0].data_as<int64_t>()[23] == 23);
  CHECK((*arrays)[1].data_as<float>()[4] == 1.f);
  const Model m = tiny_lm();
  CalibrationOptions o;
  expect_error(calibration_from_tensor_file(m, dir + "/s.npz", o).status(), "'extra' matches no model input");
  expect_error(read_npz(dir + "/c.npz").status(), dir + "/c.npz", "numpy.savez_compressed");
}

TEST_CASE("bad text calibration input names the file", "[calibration][data]") {
  const std::string tok_path = data_path("llama2c/tok512.bin");
  if (tok_path.empty()) return;
  auto tok = Llama2cTokenizer::from_file(tok_path);
  REQUIRE(tok.is_ok());
  const Model m = tiny_lm(tok->vocab_size());
  CalibrationOptions o;
  o.seq_len = 64;
  const std::string short_text = write_file("short.txt", "Once upon a time.\n\n");
  expect_error(calibration_from_text(m, *tok, short_text, o).status(), short_text, "fewer than the sequence length 64");
  const std::string empty = write_file("empty.txt", "");
  expect_error(calibration_from_text(m, *tok, empty, o).status(), empty, "empty");
  expect_error(calibration_from_text(m, *tok, "/nonexistent/x.txt", o).status(), "/nonexistent/x.txt");
  o.seq_len = 4;
  o.num_samples = -1;
  expect_error(calibration_from_text(m, *tok, short_text, o).status(), short_text, "must be positive");
  o.num_samples = 2;
  auto ok = load_calibration_set(m, short_text, &*tok, o);
  REQUIRE(ok.is_ok());
  CHECK(ok->size() == 2);
  expect_error(load_calibration_set(m, short_text, nullptr, o).status(), short_text, "tokenizer");
}
