// A heap buffer for data derived once from constant weights (pre-packed GEMM operands).
// Buffers of 2 MB and more are mapped 2 MB aligned and advised for transparent huge pages:
// decode streams them every token, and 4 KB pages would cost a TLB miss per page. The mapping
// ends at the next 4 KB page after the data, so the partial last huge page is never made
// resident as a whole (rounding every weight up to 2 MB cost ~80 MB on a 110M model).
#pragma once
#include <cstddef>

namespace llmc::rt {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes);
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
  size_t mapped_ = 0;  // bytes mapped with mmap (0: aligned_alloc)
};

}  // namespace llmc::rt
