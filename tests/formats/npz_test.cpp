// The .npz reader: hand-made zips (members, alignment, every refusal naming file and member) and
// archives written by numpy.savez / numpy.savez_compressed.
#include "formats/npz.h"

#include <catch2/catch.hpp>

#include "tests/support/npz_files.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

void expect_error(const Status& s, const std::string& a, const std::string& b = "") {
  INFO(s.message());
  REQUIRE(!s.is_ok());
  CHECK(s.message().find(a) != std::string::npos);
  CHECK(s.message().find(b) != std::string::npos);
}

}  // namespace

TEST_CASE("npz reader reads members in order and refuses bad archives naming them", "[formats][npz]") {
  const Tensor a = Tensor::from_vector("a", DType::kF32, {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  const Tensor b = Tensor::from_vector("b", DType::kI32, {4}, std::vector<int32_t>{7, 8, 9, 10});
  // An odd-length first name leaves b's data misaligned in the file: it is copied, not viewed.
  const std::string zip = write_scratch_file("ab.npz", make_zip({{"a.npy", npy_bytes(a)}, {"bb_odd.npy", npy_bytes(b)}}));
  auto arrays = read_npz(zip);
  REQUIRE(arrays.is_ok());
  REQUIRE(arrays->size() == 2);
  CHECK((*arrays)[0].name() == "a");
  CHECK((*arrays)[0].dims() == std::vector<int64_t>{2, 3});
  CHECK((*arrays)[0].data_as<float>()[5] == 6.f);
  CHECK((*arrays)[1].name() == "bb_odd");
  CHECK((*arrays)[1].data_as<int32_t>()[3] == 10);

  expect_error(read_npz(write_scratch_file("deflate.npz", make_zip({{"a.npy", npy_bytes(a)}}, 8))).status(),
               "deflate.npz", "numpy.savez_compressed");
  expect_error(read_npz(write_scratch_file("txt.npz", make_zip({{"a.txt", "hello"}}))).status(), "'a.txt'",
               "not a .npy");
  expect_error(
      read_npz(write_scratch_file("dup.npz", make_zip({{"a.npy", npy_bytes(a)}, {"a.npy", npy_bytes(a)}}))).status(),
      "dup.npz", "twice");
  expect_error(read_npz(write_scratch_file("plain.npz", "not a zip at all, just some text here")).status(), "plain.npz",
               "not a zip");
  std::string cut = make_zip({{"a.npy", npy_bytes(a)}});
  cut.erase(40, 30);  // drop part of the member's data
  expect_error(read_npz(write_scratch_file("cut.npz", cut)).status(), "cut.npz");
  expect_error(read_npz(write_scratch_file("bad.npz", make_zip({{"a.npy", "\x93NUMPY garbage"}}))).status(), "'a.npy'");
}

TEST_CASE("numpy.savez archives are read and savez_compressed ones are refused", "[formats][npz]") {
  const std::string py = venv_python();
  if (py.empty()) return;
  const std::string dir = scratch_dir("numpy");
  const std::string script =
      "import numpy as np\n"
      "ids = np.arange(24, dtype=np.int64).reshape(3, 1, 8)\n"
      "np.savez('" + dir + "/s.npz', input_ids=ids, extra=np.linspace(0, 1, 5, dtype=np.float32))\n"
      "np.savez_compressed('" + dir + "/c.npz', input_ids=ids)\n";
  auto r = run_shell(shell_quote(py) + " " + shell_quote(write_scratch_file("make.py", script)));
  REQUIRE(r.exit_code == 0);
  auto arrays = read_npz(dir + "/s.npz");
  REQUIRE(arrays.is_ok());
  REQUIRE(arrays->size() == 2);
  CHECK((*arrays)[0].name() == "input_ids");
  CHECK((*arrays)[0].dims() == std::vector<int64_t>{3, 1, 8});
  CHECK((*arrays)[0].data_as<int64_t>()[23] == 23);
  CHECK((*arrays)[1].data_as<float>()[4] == 1.f);
  expect_error(read_npz(dir + "/c.npz").status(), dir + "/c.npz", "numpy.savez_compressed");
}
