// Calibration sets from data already in memory: window offsets, token feeds, token streams and
// named tensors split along the sample dimension; errors name the source. Reading files into
// these (text, .npy, .npz) is tools/calibration_loader's, tested in tests/tools.
#include <catch2/catch.hpp>

#include "calibration/calibration_data.h"
#include "ir/metadata_keys.h"
#include "tests/support/small_models.h"

using namespace llmc;
using namespace llmc::calib;
using namespace llmc::testing;

namespace {

// Only the graph's inputs and outputs matter to calibration data.
Model tiny_lm(int64_t vocab = 32) { return tiny_lm_interface(vocab, true); }

std::vector<int64_t> ids_of(const Feeds& f) {
  const rt::Value& v = f.at("input_ids");
  return std::vector<int64_t>(v.data<int64_t>(), v.data<int64_t>() + v.numel());
}

std::string lone(const Model& m, const CalibrationOptions& o) {
  auto r = lone_array_input(m, o);
  REQUIRE(r.is_ok());
  return *r;
}

void expect_error(const Status& s, const std::string& a, const std::string& b = "") {
  INFO(s.message());
  REQUIRE(!s.is_ok());
  CHECK(s.message().find(a) != std::string::npos);
  CHECK(s.message().find(b) != std::string::npos);
}

}  // namespace

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
  odd.graph.inputs.push_back(tensor_value("pixel_values", DType::kF32, {sym("b"), num(3)}));
  expect_error(token_feeds(odd, toks.data(), 3).status(), "pixel_values");
}

TEST_CASE("token streams are cut into seeded or evenly spaced windows", "[calibration][data]") {
  Model m = tiny_lm();
  std::vector<int32_t> toks(100);
  for (int i = 0; i < 100; ++i) toks[i] = i % 32;
  CalibrationOptions o;
  o.num_samples = 3;
  o.seq_len = 20;
  o.seed = 3;
  auto set = calibration_from_tokens(m, toks, o, "stream");
  REQUIRE(set.is_ok());
  REQUIRE(set->size() == 3);
  auto off = window_offsets(100, o);
  REQUIRE(off.is_ok());
  for (size_t i = 0; i < 3; ++i) {
    CHECK(ids_of(set->samples[i])[0] == (*off)[i] % 32);
    CHECK(set->samples[i].size() == 5);  // input_ids and the derived inputs
  }
  CHECK(set->source == "stream: 3 windows of 20 tokens from 100 (seed 3)");
  o.placement = WindowPlacement::kEvenlySpaced;
  auto even = calibration_from_tokens(m, toks, o, "stream");
  REQUIRE(even.is_ok());
  CHECK(ids_of(even->samples[0])[0] == 0);
  CHECK(ids_of(even->samples[2])[19] == 99 % 32);
  CHECK(even->source == "stream: 3 windows of 20 tokens from 100 (evenly spaced)");

  // Refusals carry the source.
  expect_error(calibration_from_tokens(m, {}, o, "none.npy").status(), "none.npy: ", "no tokens");
  expect_error(calibration_from_tokens(m, std::vector<int32_t>(30, 40), o, "big.npy").status(), "big.npy: ",
               "outside the vocabulary [0, 32)");
  expect_error(calibration_from_tokens(m, std::vector<int32_t>(30, -1), o, "neg.npy").status(), "neg.npy: ",
               "outside the vocabulary");
  m.set_metadata(kMetaMaxSequenceLength, "16");  // the windows are 20 tokens
  expect_error(calibration_from_tokens(m, toks, o, "long.txt").status(), "long.txt: ", "the model's maximum of 16");
}

TEST_CASE("named tensors split along the sample dimension without copies", "[calibration][data]") {
  const Model m = tiny_lm();
  std::vector<int64_t> ids(4 * 6);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i % 32);
  // Rows as batch-1 samples: [4, 6] for a rank-2 input.
  const Tensor rows = Tensor::from_vector("input_ids", DType::kI64, {4, 6}, ids);
  CalibrationOptions o;
  o.num_samples = 3;  // at most 3 of the 4
  auto set = calibration_from_tensors(m, {rows}, o, "ids.npy");
  REQUIRE(set.is_ok());
  REQUIRE(set->size() == 3);
  CHECK(set->source == "ids.npy: 3 of 4 samples");
  CHECK(ids_of(set->samples[1]) == std::vector<int64_t>(ids.begin() + 6, ids.begin() + 12));
  CHECK(set->samples[1].at("input_ids").shape() == std::vector<int64_t>{1, 6});
  CHECK(set->samples[1].at("past_key_values.0.value").shape() == std::vector<int64_t>{1, 2, 0, 4});
  CHECK(set->samples[1].at("attention_mask").shape() == std::vector<int64_t>{1, 6});
  // Each sample views its slice of the array's bytes.
  CHECK(set->samples[1].at("input_ids").raw() == rows.data() + 6 * sizeof(int64_t));

  // Samples first ([N, 1, 6]), with an explicit attention mask.
  const Tensor ids3 = Tensor::from_vector("input_ids", DType::kI64, {4, 1, 6}, ids);
  std::vector<int64_t> mask(24, 1);
  mask[5] = 0;
  const Tensor mask3 = Tensor::from_vector("attention_mask", DType::kI64, {4, 1, 6}, mask);
  o.num_samples = 10;
  auto z = calibration_from_tensors(m, {ids3, mask3}, o, "set.npz");
  REQUIRE(z.is_ok());
  REQUIRE(z->size() == 4);
  CHECK(z->samples[0].at("attention_mask").data<int64_t>()[5] == 0);
  CHECK(ids_of(z->samples[3]) == std::vector<int64_t>(ids.begin() + 18, ids.end()));

  // Refusals carry the source.
  const Tensor f32 = Tensor::from_vector("input_ids", DType::kF32, {2, 3}, std::vector<float>(6, 1.f));
  expect_error(calibration_from_tensors(m, {f32}, o, "f32.npy").status(), "f32.npy: ", "is f32");
  Tensor pixels = rows;
  pixels.set_name("pixels");
  expect_error(calibration_from_tensors(m, {pixels}, o, "u.npz").status(), "u.npz: ", "'pixels' matches no model input");
  const Tensor rank4 = Tensor::from_vector("input_ids", DType::kI64, {1, 1, 1, 6}, std::vector<int64_t>(6, 1));
  expect_error(calibration_from_tensors(m, {rank4}, o, "deep.npz").status(), "deep.npz: ", "expected rank 3");
  const Tensor none = Tensor::from_vector("input_ids", DType::kI64, {0, 6}, std::vector<int64_t>{});
  expect_error(calibration_from_tensors(m, {none}, o, "empty.npz").status(), "empty.npz: ", "no samples");
  const Tensor two = Tensor::from_vector("attention_mask", DType::kI64, {2, 6}, std::vector<int64_t>(12, 1));
  expect_error(calibration_from_tensors(m, {rows, two}, o, "uneven.npz").status(), "uneven.npz: ", "2 samples");
  expect_error(calibration_from_tensors(m, {}, o, "nothing.npz").status(), "nothing.npz: ", "no arrays");
  o.num_samples = 0;
  expect_error(calibration_from_tensors(m, {ids3}, o, "set.npz").status(), "set.npz: ", "must be positive");
}

TEST_CASE("a lone array feeds the named input or the only one or input_ids", "[calibration][data]") {
  Model m = tiny_lm();
  CalibrationOptions o;
  CHECK(lone(m, o) == "input_ids");
  o.input_name = "attention_mask";
  CHECK(lone(m, o) == "attention_mask");
  o.input_name.clear();
  Model one;
  one.graph.inputs = {tensor_value("pixel_values", DType::kF32, {sym("b"), num(3)})};
  CHECK(lone(one, o) == "pixel_values");
  one.graph.inputs.push_back(tensor_value("mask", DType::kI64, {sym("b"), num(3)}));
  expect_error(lone_array_input(one, o).status(), "the model has 2 inputs (pixel_values, mask)", "keyed by input name");
}
