// release_file_pages: a read-only file mapping's pages leave this process's resident set and
// read back unchanged; heap memory and writable mappings are never touched.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <vector>

#include "runtime/file_pages.h"
#include "tests/support/test_data.h"

using namespace llmc;
using namespace llmc::rt;

namespace {
long resident_pages() {
  long size = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  REQUIRE(f);
  REQUIRE(std::fscanf(f, "%ld %ld", &size, &resident) == 2);
  std::fclose(f);
  return resident;
}
}  // namespace

TEST_CASE("release_file_pages drops read-only file pages only, and they read back the same", "[runtime][memory]") {
  const size_t n = 16 << 20;
  std::vector<uint32_t> values(n / 4);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint32_t>(i * 2654435761u);
  const std::string path = testing::scratch_dir("file_pages") + "/w.bin";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(values.data()), n);
  const int fd = open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  void* ro = mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0);
  REQUIRE(ro != MAP_FAILED);
  auto sum = [&](const void* p) {
    uint64_t s = 0;
    for (size_t i = 0; i < values.size(); ++i) s += static_cast<const uint32_t*>(p)[i];
    return s;
  };
  const uint64_t want = sum(values.data());
  REQUIRE(sum(ro) == want);  // now resident
  const long before = resident_pages();
  // An unaligned interior range, as a weight inside a model file is.
  CHECK(release_file_pages(static_cast<const char*>(ro) + 100, n - 200));
  const long after = resident_pages();
  CHECK(before - after > long(n / 4096) * 9 / 10);  // other allocations may move a few pages
  CHECK(sum(ro) == want);  // re-read from the page cache

  // Heap memory and a writable mapping are left alone.
  CHECK_FALSE(release_file_pages(values.data(), n));
  CHECK(sum(values.data()) == want);
  void* rw = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  REQUIRE(rw != MAP_FAILED);
  static_cast<uint32_t*>(rw)[0] += 1;  // a private copy of the first page
  CHECK_FALSE(release_file_pages(rw, n));
  CHECK(static_cast<uint32_t*>(rw)[0] == values[0] + 1);
  // Written, then made read-only (as a RELRO segment is): "r--p" with an inode, but releasing
  // would revert the written page, so it must be refused too.
  REQUIRE(mprotect(rw, n, PROT_READ) == 0);
  CHECK_FALSE(release_file_pages(rw, n));
  CHECK(static_cast<uint32_t*>(rw)[0] == values[0] + 1);
  // A range running past the mapping's end is refused too.
  CHECK_FALSE(release_file_pages(ro, n + 4096 * 1024));
  munmap(rw, n);
  munmap(ro, n);
  close(fd);
}
