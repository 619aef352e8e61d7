#include "runtime/aligned_buffer.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

namespace llmc::rt {

namespace {
constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kPage = 4096;

// Maps `len` bytes (a multiple of 4 KB) at a 2 MB-aligned address, advised for huge pages.
unsigned char* map_huge(size_t len) {
  void* raw = mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  // Over-mapped by 2 MB: unmap the slack before the aligned start and after the last page.
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (base + kHuge - 1) / kHuge * kHuge;
  if (start > base) munmap(raw, start - base);
  if (base + len + kHuge > start + len) munmap(reinterpret_cast<void*>(start + len), base + len + kHuge - (start + len));
  madvise(reinterpret_cast<void*>(start), len, MADV_HUGEPAGE);
  return reinterpret_cast<unsigned char*>(start);
}

constexpr size_t kChunk = size_t{32} << 20;

}  // namespace

PackArena::~PackArena() {
  for (const Chunk& c : chunks_) munmap(c.data, c.size);
}

void* PackArena::allocate(size_t bytes) {
  const size_t need = (bytes + 63) / 64 * 64;
  std::lock_guard<std::mutex> lock(mu_);
  if (chunks_.empty() || used_ + need > chunks_.back().size) {
    // A new chunk (whole huge pages); a weight bigger than a chunk gets one of its own.
    const size_t size = need > kChunk ? (need + kHuge - 1) / kHuge * kHuge : kChunk;
    chunks_.push_back({map_huge(size), size});
    used_ = 0;
  }
  void* p = chunks_.back().data + used_;
  used_ += need;
  return p;
}

AlignedBuffer::AlignedBuffer(size_t bytes, PackArena* arena) : size_(bytes) {
  if (bytes == 0) return;
  if (arena) {
    data_ = static_cast<unsigned char*>(arena->allocate(bytes));
    borrowed_ = true;
    return;
  }
  if (bytes < kHuge) {
    data_ = static_cast<unsigned char*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!data_) throw std::bad_alloc();
    return;
  }
  const size_t len = (bytes + kPage - 1) / kPage * kPage;
  data_ = map_huge(len);
  mapped_ = len;
}

AlignedBuffer::~AlignedBuffer() {
  if (borrowed_) return;
  if (mapped_) munmap(data_, mapped_);
  else std::free(data_);
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      mapped_(std::exchange(o.mapped_, 0)),
      borrowed_(std::exchange(o.borrowed_, false)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  std::swap(data_, o.data_);
  std::swap(size_, o.size_);
  std::swap(mapped_, o.mapped_);
  std::swap(borrowed_, o.borrowed_);
  return *this;
}

}  // namespace llmc::rt
