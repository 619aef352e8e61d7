// AlignedBuffer and PackArena: alignment, no overlap between buffers, sizes above a chunk, and
// buffers that keep their bytes when moved.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/aligned_buffer.h"

using namespace llmc::rt;

TEST_CASE("PackArena hands out aligned, disjoint buffers of any size", "[runtime][memory]") {
  PackArena arena;
  std::vector<AlignedBuffer> bufs;
  const size_t sizes[] = {1, 63, 64, 4097, 590 * 1024, 3 << 20, 40 << 20, 5, 31 << 20};
  for (size_t n : sizes) bufs.emplace_back(n, &arena);
  for (size_t i = 0; i < bufs.size(); ++i) {
    INFO("buffer " << i << " of " << sizes[i] << " bytes");
    REQUIRE(bufs[i].size() == sizes[i]);
    CHECK(reinterpret_cast<uintptr_t>(bufs[i].data()) % 64 == 0);
    std::memset(bufs[i].data(), int(i + 1), sizes[i]);
  }
  // Every buffer still holds its own fill: no two overlap.
  for (size_t i = 0; i < bufs.size(); ++i)
    for (size_t k : {size_t{0}, sizes[i] / 2, sizes[i] - 1}) CHECK(bufs[i].data()[k] == (unsigned char)(i + 1));
  AlignedBuffer moved = std::move(bufs[4]);
  CHECK(moved.data()[0] == 5);
  CHECK(bufs[4].data() == nullptr);
}

TEST_CASE("AlignedBuffer without an arena: small on the heap, large mapped 2 MB aligned", "[runtime][memory]") {
  AlignedBuffer small(1000), large(5 << 20);
  CHECK(reinterpret_cast<uintptr_t>(small.data()) % 64 == 0);
  CHECK(reinterpret_cast<uintptr_t>(large.data()) % (2 << 20) == 0);
  std::memset(large.data(), 7, large.size());
  AlignedBuffer other;
  other = std::move(large);
  CHECK(other.data()[(5 << 20) - 1] == 7);
}
