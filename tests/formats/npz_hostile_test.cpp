// The .npz reader against hostile archives: zip64 offsets near 2^64, extra fields that run past
// their record, members whose element count overflows, names with control bytes. Each is an
// error naming the file (and member), never a read out of bounds.
#include <catch2/catch.hpp>
#include <cstdint>

#include "formats/npz.h"
#include "tests/support/npz_files.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::testing;

namespace {

std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

void expect_error(const std::string& path, const std::vector<std::string>& mentions) {
  auto r = read_npz(path);
  REQUIRE_FALSE(r.is_ok());
  INFO(r.status().message());
  CHECK(r.status().message().find(path) != std::string::npos);
  for (const auto& m : mentions) CHECK(r.status().message().find(m) != std::string::npos);
  CHECK(r.status().message().find('\n') == std::string::npos);
}

// A .npy image with a hand-written header dict and `data`.
std::string npy_with_header(const std::string& dict, const std::string& data) {
  std::string h = dict;
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  return std::string("\x93NUMPY\x01\x00", 8) + le(h.size(), 2) + h + data;
}

}  // namespace

TEST_CASE("npz: a zip64 end record offset near 2^64 is refused", "[formats][npz][hostile]") {
  // zip64 locator pointing at 2^64 - 16, then an end record that asks for zip64.
  const std::string locator = le(0x07064b50, 4) + le(0, 4) + le(~uint64_t{0} - 15, 8) + le(1, 4);
  const std::string eocd = le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(0xFFFF, 2) + le(0xFFFF, 2) +
                           le(0xFFFFFFFF, 4) + le(0xFFFFFFFF, 4) + le(0, 2);
  expect_error(write_scratch_file("z64.npz", locator + eocd), {"zip64"});
}

TEST_CASE("npz: an extra field longer than its record is refused", "[formats][npz][hostile]") {
  const Tensor a = Tensor::from_vector("a", DType::kU8, {2}, std::vector<uint8_t>{1, 2});
  std::string zip = make_zip({{"a.npy", npy_bytes(a)}});
  // Central directory entry: sizes 0xFFFFFFFF (in the zip64 extra field), extra length 4 at
  // the very end of the directory, whose header claims 24 bytes of values that are not there.
  const size_t cd = zip.find(std::string("PK\x01\x02", 4));
  REQUIRE(cd != std::string::npos);
  zip.replace(cd + 20, 8, le(0xFFFFFFFF, 4) + le(0xFFFFFFFF, 4));
  zip.replace(cd + 30, 2, le(4, 2));
  const size_t name_end = cd + 46 + 5;
  zip.insert(name_end, le(1, 2) + le(24, 2));
  const size_t eocd = zip.find(std::string("PK\x05\x06", 4));
  zip.replace(eocd + 12, 4, le(46 + 5 + 4, 4));  // central directory size
  expect_error(write_scratch_file("extra.npz", zip), {"'a.npy'", "extra field"});
}

TEST_CASE("npz: a member whose element count overflows is refused", "[formats][npz][hostile]") {
  // 274177 * 67280421310721 = 2^64 + 1: one byte of data in wrapped arithmetic.
  const std::string npy = npy_with_header("{'descr': '|u1', 'fortran_order': False, 'shape': (274177, 67280421310721), }", "x");
  expect_error(write_scratch_file("wrap.npz", make_zip({{"big.npy", npy}})), {"'big.npy'", "size mismatch"});
  const std::string npy2 = npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", "");
  expect_error(write_scratch_file("wrap2.npz", make_zip({{"big2.npy", npy2}})), {"'big2.npy'", "size mismatch"});
}

TEST_CASE("npz: control bytes in a member name are escaped in the error", "[formats][npz][hostile]") {
  expect_error(write_scratch_file("ctl.npz", make_zip({{std::string("a\nb\x01\xff.txt"), "hello"}})),
               {"a\\x0ab\\x01\\xff.txt"});
}
