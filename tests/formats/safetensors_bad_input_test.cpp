// Hand-made broken .safetensors files and shard indexes: each must fail with one message that
// names the file and the problem, and no byte pattern may crash the reader.
#include <catch2/catch.hpp>
#include <random>

#include "formats/safetensors.h"
#include "tests/support/safetensors_files.h"
#include "tests/support/test_data.h"

namespace llmc {
namespace {

using testing::make_safetensors;
using testing::safetensors_bytes;
using testing::scratch_dir;
using testing::write_file_in;

void expect_error_naming(const Status& s, const std::string& path, const std::string& what) {
  REQUIRE_FALSE(s.is_ok());
  INFO(s.message());
  CHECK(s.message().find(path) != std::string::npos);
  CHECK(s.message().find(what) != std::string::npos);
}

// Reads a file holding `header` then `data` and expects an error naming it and `what`.
void expect_file_error(const std::string& header, const std::string& data, const std::string& what,
                       StatusCode code = StatusCode::kInvalidInput) {
  const std::string path =
      write_file_in(scratch_dir("safetensors_bad"), "bad.safetensors", safetensors_bytes(header, data));
  const auto r = read_safetensors_file(path);
  expect_error_naming(r.status(), path, what);
  CHECK(r.status().code() == code);
}

// A header with one tensor "w" described by `entry`.
std::string one_tensor(const std::string& entry) { return "{\"w\": " + entry + "}"; }

TEST_CASE("safetensors refuses broken headers, naming the file and the problem", "[safetensors]") {
  const std::string floats(24, '\0');  // room for F32 [2, 3]
  SECTION("header length past the file") {
    std::string bytes = safetensors_bytes("{}", "");  // 10 bytes
    bytes[0] = static_cast<char>(200);
    const std::string longer = write_file_in(scratch_dir("safetensors_bad"), "len.safetensors", bytes);
    expect_error_naming(read_safetensors_file(longer).status(), longer,
                        "header length 200 runs past the end of the file (10 bytes)");
    std::string huge = bytes;
    for (int i = 0; i < 8; ++i) huge[i] = '\xFF';
    const std::string huge_path = write_file_in(scratch_dir("safetensors_bad"), "huge.safetensors", huge);
    expect_error_naming(read_safetensors_file(huge_path).status(), huge_path,
                        "header length 18446744073709551615 runs past the end");
  }
  SECTION("file shorter than the length field") {
    const std::string path = write_file_in(scratch_dir("safetensors_bad"), "tiny.safetensors", "abc");
    expect_error_naming(read_safetensors_file(path).status(), path, "too short");
  }
  SECTION("header not JSON, or not an object") {
    expect_file_error("{\"w\": oops}", "", "bad.safetensors header: line 1, column 7");
    expect_file_error("[1, 2]", "", "header is not a JSON object");
    expect_file_error(one_tensor("[1]"), "", "tensor \"w\": entry is not a JSON object");
    expect_file_error("{\"__metadata__\": {\"format\": 1}}", "", "\"__metadata__\" value of \"format\"");
  }
  SECTION("unknown and unmapped dtypes are named") {
    expect_file_error(one_tensor(R"({"dtype": "F33", "shape": [2, 3], "data_offsets": [0, 24]})"),
                      floats, "tensor \"w\": unknown dtype \"F33\"");
    expect_file_error(one_tensor(R"({"dtype": "C64", "shape": [3], "data_offsets": [0, 24]})"),
                      floats, "dtype C64 has no equivalent", StatusCode::kUnsupported);
    expect_file_error(one_tensor(R"({"shape": [3], "data_offsets": [0, 12]})"), floats,
                      "\"dtype\" is missing");
  }
  SECTION("truncated data") {
    expect_file_error(one_tensor(R"({"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]})"),
                      floats.substr(0, 12), "data_offsets end 24 is past the end of the file (12");
  }
  SECTION("dtype and size disagree") {
    expect_file_error(one_tensor(R"({"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 12]})"),
                      floats, "data_offsets span 12 bytes but F32 [2,3] needs 24");
    expect_file_error(one_tensor(R"({"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 24]})"),
                      floats, "span 24 bytes but BF16 [2,3] needs 12");
  }
  SECTION("offsets out of order or malformed") {
    expect_file_error(one_tensor(R"({"dtype": "U8", "shape": [0], "data_offsets": [8, 4]})"), floats,
                      "data_offsets [8, 4] are out of order");
    expect_file_error(one_tensor(R"({"dtype": "U8", "shape": [4], "data_offsets": [-4, 0]})"), floats,
                      "not non-negative integers");
    expect_file_error(one_tensor(R"({"dtype": "U8", "shape": [4], "data_offsets": [0]})"), floats,
                      "not [begin, end]");
    expect_file_error(one_tensor(R"({"dtype": "U8", "shape": [4], "data_offsets": [0, 1e2]})"),
                      floats, "not non-negative integers");
  }
  SECTION("negative or non-integer shapes") {
    expect_file_error(one_tensor(R"({"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 24]})"),
                      floats, "tensor \"w\": negative dimension -3 in shape");
    expect_file_error(one_tensor(R"({"dtype": "F32", "shape": [2.5], "data_offsets": [0, 24]})"),
                      floats, "shape entry is not an integer");
    expect_file_error(one_tensor(R"({"dtype": "F32", "shape": 6, "data_offsets": [0, 24]})"), floats,
                      "\"shape\" is missing or not an array");
  }
  SECTION("shapes whose size overflows") {
    expect_file_error(
        one_tensor(R"({"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 24]})"),
        floats, "more elements than int64 holds");
    expect_file_error(
        one_tensor(R"({"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 24]})"),
        floats, "needs more bytes than 64 bits count");
    expect_file_error(
        one_tensor(R"({"dtype": "F32", "shape": [99999999999999999999], "data_offsets": [0, 24]})"),
        floats, "shape entry is not an integer that fits int64");
    // A zero dimension makes an empty tensor even next to a huge one.
    const std::string path = write_file_in(
        scratch_dir("safetensors_bad"), "zero.safetensors",
        safetensors_bytes(one_tensor(R"({"dtype": "F32", "shape": [0, 4611686018427387904],
                                         "data_offsets": [0, 0]})"), ""));
    const auto r = read_safetensors_file(path);
    REQUIRE(r.is_ok());
    CHECK(r->find("w")->nbytes() == 0);
  }
}

TEST_CASE("safetensors sharded checkpoints refuse missing shards and duplicate tensors",
          "[safetensors]") {
  const std::string dir = scratch_dir("safetensors_shards");
  const Tensor a = Tensor::from_vector("a", DType::kF32, {1}, std::vector<float>{1});
  const Tensor b = Tensor::from_vector("b", DType::kF32, {1}, std::vector<float>{2});
  const std::string shard1 = write_file_in(dir, "s1.safetensors", make_safetensors({a}, {"F32"}));
  const std::string shard2 = write_file_in(dir, "s2.safetensors", make_safetensors({a, b}, {"F32", "F32"}));
  const auto open_with_index = [&](const std::string& weight_map) {
    write_file_in(dir, "model.safetensors.index.json", "{\"weight_map\": " + weight_map + "}");
    return open_safetensors_checkpoint(dir).status();
  };
  const std::string index = dir + "/model.safetensors.index.json";

  SECTION("a shard the index names is missing") {
    const Status s = open_with_index(R"({"a": "s1.safetensors", "b": "model-00002-of-00002.safetensors"})");
    expect_error_naming(s, index, "model-00002-of-00002.safetensors");
    CHECK(s.message().find("does not exist") != std::string::npos);
  }
  SECTION("a tensor in two shards") {
    const Status s = open_with_index(R"({"a": "s1.safetensors", "b": "s2.safetensors"})");
    expect_error_naming(s, index, "tensor \"a\" is in two shards: " + shard1 + " and " + shard2);
  }
  SECTION("the index places a tensor in a shard that lacks it") {
    write_file_in(dir, "s3.safetensors", make_safetensors({b}, {"F32"}));
    const Status s = open_with_index(R"({"a": "s3.safetensors", "b": "s1.safetensors"})");
    expect_error_naming(s, index, "places tensor \"a\" in s3.safetensors");
  }
  SECTION("a malformed index") {
    expect_error_naming(open_with_index("[]"), index, "no \"weight_map\" object");
    expect_error_naming(open_with_index(R"({"a": "../s1.safetensors"})"), index,
                        "not a shard file name relative to the index");
    expect_error_naming(open_with_index(R"({"a": 3})"), index, "not a shard file name");
    expect_error_naming(open_with_index("{}"), index, "names no shards");
    expect_error_naming(open_with_index(R"({"a": "s1.safetensors",)"), index, "line 1, column");
  }
  SECTION("a broken shard is named by its own path") {
    const std::string broken = write_file_in(dir, "broken.safetensors", "short");
    expect_error_naming(open_with_index(R"({"a": "broken.safetensors"})"), broken, "too short");
  }
  SECTION("a directory with no checkpoint") {
    const std::string empty = scratch_dir("safetensors_empty");
    expect_error_naming(open_safetensors_checkpoint(empty).status(), empty,
                        "holds neither model.safetensors.index.json nor model.safetensors");
    expect_error_naming(open_safetensors_checkpoint(empty + "/nope.safetensors").status(),
                        empty + "/nope.safetensors", "No such file");
  }
}

TEST_CASE("safetensors never crashes on corrupted files", "[safetensors]") {
  const std::string dir = scratch_dir("safetensors_fuzz");
  const Tensor w = Tensor::from_vector("w", DType::kF32, {2, 2}, std::vector<float>{1, 2, 3, 4});
  const Tensor h = Tensor::from_vector("h", DType::kF16, {3}, std::vector<uint16_t>{1, 2, 3});
  const std::string good = make_safetensors({w, h}, {"F32", "F16"});
  std::mt19937 rng(11);
  int ok = 0;
  for (int i = 0; i < 400; ++i) {
    std::string bytes = good;
    for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k) {
      const size_t at = rng() % bytes.size();
      if (rng() % 4 == 0) bytes.resize(at);
      else bytes[at] = "0123456789-,[]{}\":eE\xFF "[rng() % 23];
      if (bytes.empty()) break;
    }
    const std::string path = write_file_in(dir, std::to_string(i).append(".safetensors"), bytes);
    const auto r = read_safetensors_file(path);
    if (r.is_ok()) {
      ++ok;
      for (const Tensor& t : r->tensors()) CHECK(t.nbytes() == t.expected_nbytes());
    } else {
      CHECK(r.status().message().find(path) != std::string::npos);
    }
  }
  CHECK(ok < 400);
}

}  // namespace
}  // namespace llmc
