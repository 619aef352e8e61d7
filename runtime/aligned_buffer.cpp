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
}  // namespace

AlignedBuffer::AlignedBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  if (bytes < kHuge) {
    data_ = static_cast<unsigned char*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!data_) throw std::bad_alloc();
    return;
  }
  // Over-map by 2 MB, then unmap the slack before the aligned start and after the last page.
  const size_t len = (bytes + kPage - 1) / kPage * kPage;
  void* raw = mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (base + kHuge - 1) / kHuge * kHuge;
  if (start > base) munmap(raw, start - base);
  if (base + len + kHuge > start + len) munmap(reinterpret_cast<void*>(start + len), base + len + kHuge - (start + len));
  data_ = reinterpret_cast<unsigned char*>(start);
  mapped_ = len;
  madvise(data_, len, MADV_HUGEPAGE);
}

AlignedBuffer::~AlignedBuffer() {
  if (mapped_) munmap(data_, mapped_);
  else std::free(data_);
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), mapped_(std::exchange(o.mapped_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  std::swap(data_, o.data_);
  std::swap(size_, o.size_);
  std::swap(mapped_, o.mapped_);
  return *this;
}

}  // namespace llmc::rt
