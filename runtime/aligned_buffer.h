// Memory for data derived once from constant weights (pre-packed GEMM operands).
// Decode streams these buffers every token, so they live in transparent huge pages: with 4 KB
// pages the per-page TLB misses cost 5-15% of a decode step (measured on the 110M model).
//  - PackArena: a session's bump allocator over 2 MB-aligned chunks advised for huge pages, so
//    even sub-2 MB weights (a 768x768 int8 matrix is 590 KB) share huge pages; it frees
//    everything at once when the session goes.
//  - AlignedBuffer: one buffer, from an arena, or on its own (2 MB aligned and advised when it
//    is at least 2 MB; the mapping ends at the next 4 KB page, so a partial last huge page is
//    never made resident as a whole).
#pragma once
#include <cstddef>
#include <mutex>
#include <vector>

namespace llmc::rt {

class PackArena {
 public:
  PackArena() = default;
  ~PackArena();
  PackArena(const PackArena&) = delete;
  PackArena& operator=(const PackArena&) = delete;
  // 64-byte aligned, valid until the arena is destroyed.
  void* allocate(size_t bytes);

 private:
  struct Chunk {
    unsigned char* data;
    size_t size;
  };
  std::mutex mu_;
  std::vector<Chunk> chunks_;
  size_t used_ = 0;  // bytes used in the last chunk
};

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes, PackArena* arena = nullptr);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& o) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  unsigned char* data() { return data_; }
  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;    // bytes mapped with mmap (0: aligned_alloc or arena)
  bool borrowed_ = false;  // from an arena: freed with it
};

}  // namespace llmc::rt
