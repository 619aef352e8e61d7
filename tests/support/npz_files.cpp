#include "tests/support/npz_files.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>

#include "formats/npy.h"
#include "tests/support/test_data.h"

namespace llmc::testing {

namespace {
std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}
}  // namespace

std::string npy_bytes(const Tensor& t) {
  const std::string path = scratch_dir("npy") + "/t.npy";
  REQUIRE(write_npy(path, t).is_ok());
  return read_text(path);
}

std::string make_zip(const std::vector<std::pair<std::string, std::string>>& members, int method) {
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

std::string write_scratch_file(const std::string& name, const std::string& bytes) {
  const std::string path = scratch_dir("files") + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  return path;
}

}  // namespace llmc::testing
