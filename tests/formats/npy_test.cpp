#include "formats/npy.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>

#include "tests/support/test_data.h"

namespace llmc {
namespace {

using testing::read_text;
using testing::scratch_dir;

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Seeded random bytes; bool tensors get 0/1 so they stay valid numpy bools.
Tensor random_tensor(DType dtype, std::vector<int64_t> dims, uint32_t seed) {
  Tensor t = Tensor::zeros("t", dtype, std::move(dims));
  std::mt19937 rng(seed);
  uint8_t* p = t.mutable_data();
  for (size_t i = 0; i < t.nbytes(); ++i)
    p[i] = dtype == DType::kBool ? rng() % 2 : static_cast<uint8_t>(rng());
  return t;
}

void expect_error_naming(const Status& s, const std::string& path, const std::string& what) {
  REQUIRE_FALSE(s.is_ok());
  INFO(s.message());
  CHECK(s.message().find(path) != std::string::npos);
  CHECK(s.message().find(what) != std::string::npos);
}

TEST_CASE("npy write/read round trip is bit-exact for every dtype and odd shapes") {
  const std::string dir = scratch_dir("npy");
  const std::vector<DType> dtypes = {DType::kF32, DType::kF64, DType::kF16, DType::kI8,
                                     DType::kI16, DType::kI32, DType::kI64, DType::kU8,
                                     DType::kU16, DType::kU32, DType::kU64, DType::kBool};
  const std::vector<std::vector<int64_t>> shapes = {{}, {0}, {3, 0, 2}, {1}, {7}, {2, 3},
                                                    {2, 1, 5, 3}, {1000}};
  uint32_t seed = 1;
  for (DType dtype : dtypes) {
    for (const auto& dims : shapes) {
      INFO(dtype_name(dtype) << " " << shape_str(dims));
      Tensor t = random_tensor(dtype, dims, seed++);
      const std::string path = dir + "/" + dtype_name(dtype) + std::to_string(seed) + ".npy";
      REQUIRE(write_npy(path, t).is_ok());
      const std::string file = read_text(path);
      REQUIRE(file.size() >= t.nbytes() + 64);
      const size_t header = file.size() - t.nbytes();
      CHECK(header % 64 == 0);  // data 64-byte aligned, as numpy writes it
      CHECK(file.compare(0, 8, std::string("\x93NUMPY\x01\x00", 8)) == 0);
      CHECK(file[header - 1] == '\n');
      auto back = read_npy(path, "t");
      REQUIRE(back.is_ok());
      CHECK(back->identical_to(t));
      if (t.nbytes() > 0) CHECK(back->is_view());  // aligned data is mapped, not copied
    }
  }
}

TEST_CASE("npy header text matches numpy's layout - huge headers switch to version 2.0") {
  const std::string dir = scratch_dir("npy_hdr");
  Tensor t = Tensor::from_vector<float>("x", DType::kF32, {3}, std::vector<float>{1, 2, 3});
  REQUIRE(write_npy(dir + "/a.npy", t).is_ok());
  const std::string file = read_text(dir + "/a.npy");
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  CHECK(file.compare(10, dict.size(), dict) == 0);

  // 22000 unit dimensions push the dict past 65535 bytes.
  std::vector<int64_t> dims(22000, 1);
  Tensor big = Tensor::from_vector<int32_t>("b", DType::kI32, dims, std::vector<int32_t>{42});
  REQUIRE(write_npy(dir + "/big.npy", big).is_ok());
  const std::string big_file = read_text(dir + "/big.npy");
  CHECK(big_file[6] == 2);
  CHECK((big_file.size() - 4) % 64 == 0);
  auto back = read_npy(dir + "/big.npy", "b");
  REQUIRE(back.is_ok());
  CHECK(back->identical_to(big));

  Tensor bf = Tensor::zeros("w", DType::kBF16, {2});
  expect_error_naming(write_npy(dir + "/bf.npy", bf), dir + "/bf.npy", "bf16");
  CHECK_FALSE(testing::file_exists(dir + "/bf.npy"));
}

TEST_CASE("npy files written by numpy read back with the right values") {
  const std::string py = testing::venv_python();
  if (py.empty()) return;
  const std::string dir = scratch_dir("npy_numpy");
  write_raw(dir + "/gen.py", R"(import sys, numpy as np
d = sys.argv[1]
np.save(d + '/f32.npy', (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5) * 0.5)
np.save(d + '/i64.npy', np.array([-5, 0, 2**40, -2**62], dtype=np.int64))
np.save(d + '/i32.npy', np.array([[1, -2], [3, -2147483648]], dtype=np.int32))
np.save(d + '/bool.npy', np.array([True, False, True]))
np.save(d + '/scalar.npy', np.float32(3.25))
np.save(d + '/empty.npy', np.zeros((0, 4), dtype=np.float64))
np.save(d + '/fortran.npy', np.asfortranarray(np.ones((2, 3), dtype=np.float32)))
np.save(d + '/big_endian.npy', np.ones(3, dtype='>f4'))
with open(d + '/v2.npy', 'wb') as f:
    np.lib.format.write_array(f, np.array([7, 8], dtype=np.uint16), version=(2, 0))
with open(d + '/v3.npy', 'wb') as f:
    np.lib.format.write_array(f, np.array([1.5], dtype=np.float16), version=(3, 0))
)");
  auto gen = testing::run_shell(testing::shell_quote(py) + " " + dir + "/gen.py " + dir);
  REQUIRE(gen.exit_code == 0);

  auto f32 = read_npy(dir + "/f32.npy", "f32");
  REQUIRE(f32.is_ok());
  CHECK(f32->dtype() == DType::kF32);
  CHECK(f32->dims() == std::vector<int64_t>{2, 3});
  for (int i = 0; i < 6; ++i) CHECK(f32->data_as<float>()[i] == (i - 2.5f) * 0.5f);

  auto i64 = read_npy(dir + "/i64.npy", "i64");
  REQUIRE(i64.is_ok());
  CHECK(i64->dtype() == DType::kI64);
  const std::vector<int64_t> want64 = {-5, 0, int64_t{1} << 40, -(int64_t{1} << 62)};
  CHECK(std::vector<int64_t>(i64->data_as<int64_t>(), i64->data_as<int64_t>() + 4) == want64);

  auto i32 = read_npy(dir + "/i32.npy", "i32");
  REQUIRE(i32.is_ok());
  CHECK(i32->dims() == std::vector<int64_t>{2, 2});
  CHECK(i32->data_as<int32_t>()[3] == INT32_MIN);
  CHECK(i32->data_as<int32_t>()[1] == -2);

  auto b = read_npy(dir + "/bool.npy", "b");
  REQUIRE(b.is_ok());
  CHECK(b->dtype() == DType::kBool);
  CHECK(std::vector<uint8_t>(b->data(), b->data() + 3) == std::vector<uint8_t>{1, 0, 1});

  auto scalar = read_npy(dir + "/scalar.npy", "s");
  REQUIRE(scalar.is_ok());
  CHECK(scalar->dims().empty());
  CHECK(scalar->data_as<float>()[0] == 3.25f);

  auto empty = read_npy(dir + "/empty.npy", "e");
  REQUIRE(empty.is_ok());
  CHECK(empty->dims() == std::vector<int64_t>{0, 4});
  CHECK(empty->nbytes() == 0);

  auto v2 = read_npy(dir + "/v2.npy", "v2");
  REQUIRE(v2.is_ok());
  CHECK(v2->data_as<uint16_t>()[1] == 8);
  auto v3 = read_npy(dir + "/v3.npy", "v3");
  REQUIRE(v3.is_ok());
  CHECK(v3->data_as<uint16_t>()[0] == 0x3E00);  // 1.5 in IEEE half

  expect_error_naming(read_npy(dir + "/fortran.npy", "x").status(), dir + "/fortran.npy",
                      "Fortran");
  expect_error_naming(read_npy(dir + "/big_endian.npy", "x").status(), dir + "/big_endian.npy",
                      "big-endian");

  // And numpy reads what we write.
  Tensor ours = Tensor::from_vector<int64_t>("o", DType::kI64, {2, 2},
                                             std::vector<int64_t>{1, -2, 3, 1LL << 50});
  REQUIRE(write_npy(dir + "/ours.npy", ours).is_ok());
  Tensor flag = Tensor::from_vector<uint8_t>("f", DType::kBool, {}, std::vector<uint8_t>{1});
  REQUIRE(write_npy(dir + "/flag.npy", flag).is_ok());
  write_raw(dir + "/check.py", R"(import sys, numpy as np
d = sys.argv[1]
a = np.load(d + '/ours.npy')
assert a.dtype == np.int64 and a.shape == (2, 2), (a.dtype, a.shape)
assert a.tolist() == [[1, -2], [3, 2**50]], a
f = np.load(d + '/flag.npy')
assert f.dtype == np.bool_ and f.shape == () and bool(f), (f.dtype, f.shape)
)");
  auto check = testing::run_shell(testing::shell_quote(py) + " " + dir + "/check.py " + dir);
  INFO(check.errors);
  CHECK(check.exit_code == 0);
}

TEST_CASE("malformed npy files give errors naming the file") {
  const std::string dir = scratch_dir("npy_bad");
  const std::string good = dir + "/good.npy";
  Tensor t = Tensor::from_vector<float>("x", DType::kF32, {4}, std::vector<float>{1, 2, 3, 4});
  REQUIRE(write_npy(good, t).is_ok());
  const std::string bytes = read_text(good);

  const std::string magic = dir + "/magic.npy";
  write_raw(magic, "PK\x03\x04 this is a zip, not an npy file");
  expect_error_naming(read_npy(magic, "x").status(), magic, "magic");

  const std::string truncated = dir + "/truncated.npy";
  write_raw(truncated, bytes.substr(0, bytes.size() - 3));
  expect_error_naming(read_npy(truncated, "x").status(), truncated, "truncated");

  const std::string trailing = dir + "/trailing.npy";
  write_raw(trailing, bytes + "junk");
  expect_error_naming(read_npy(trailing, "x").status(), trailing, "size mismatch");

  const std::string short_header = dir + "/short_header.npy";
  write_raw(short_header, bytes.substr(0, 30));
  expect_error_naming(read_npy(short_header, "x").status(), short_header, "header");

  std::string bad_dict = bytes;
  bad_dict.replace(bad_dict.find("'shape'"), 7, "'shap' ");
  const std::string no_shape = dir + "/no_shape.npy";
  write_raw(no_shape, bad_dict);
  expect_error_naming(read_npy(no_shape, "x").status(), no_shape, "'shape'");

  std::string garbled = bytes;
  garbled[garbled.find("False")] = '?';
  const std::string syntax = dir + "/syntax.npy";
  write_raw(syntax, garbled);
  expect_error_naming(read_npy(syntax, "x").status(), syntax, "malformed header");

  std::string wrong_type = bytes;
  wrong_type.replace(wrong_type.find("<f4"), 3, "<c8");
  const std::string complex = dir + "/complex.npy";
  write_raw(complex, wrong_type);
  expect_error_naming(read_npy(complex, "x").status(), complex, "<c8");

  const std::string empty = dir + "/empty.npy";
  write_raw(empty, "");
  expect_error_naming(read_npy(empty, "x").status(), empty, "magic");
  expect_error_naming(read_npy(dir, "x").status(), dir, "directory");
  expect_error_naming(read_npy(dir + "/absent.npy", "x").status(), dir + "/absent.npy", "");
}

}  // namespace
}  // namespace llmc
