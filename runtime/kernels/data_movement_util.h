// Helpers shared by the data movement kernel files (data_movement.cpp, gather_pad.cpp):
// element sizes, parallel grain, size-dispatched copies, strided copies, an index odometer.
#pragma once
#include <algorithm>
#include <cstring>
#include <limits>

#include "runtime/kernels/kernel_util.h"

namespace llmc::rt::data_movement {

inline constexpr int64_t kGrainElems = 16384;  // elements per parallel chunk, at least

inline Result<size_t> elem_bytes(DType t) {
  const int bits = dtype_bits(t);
  if (bits <= 0 || bits % 8 != 0)
    return unsupported("dtype ", dtype_name(t), " is not supported by this kernel");
  return static_cast<size_t>(bits / 8);
}

inline int64_t grain_for(int64_t elems_per_item) {
  return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, elems_per_item));
}

// Calls f(T{}) with an unsigned integer type of `esz` bytes, or f(Bytes16{}) for 16 bytes.
struct Bytes16 {
  uint64_t lo, hi;
};
template <typename F>
void dispatch_size(size_t esz, F&& f) {
  switch (esz) {
    case 1: f(uint8_t{}); break;
    case 2: f(uint16_t{}); break;
    case 4: f(uint32_t{}); break;
    case 8: f(uint64_t{}); break;
    default: f(Bytes16{}); break;
  }
}

// dst[i] = src[i * stride] for `count` elements (stride in elements, may be 0 or negative).
inline void strided_copy(uint8_t* dst, const uint8_t* src, int64_t stride, int64_t count, size_t esz) {
  if (stride == 1) {
    std::memcpy(dst, src, count * esz);
    return;
  }
  dispatch_size(esz, [&](auto tag) {
    using T = decltype(tag);
    T* d = reinterpret_cast<T*>(dst);
    for (int64_t i = 0; i < count; ++i) std::memcpy(d + i, src + i * stride * int64_t(sizeof(T)), sizeof(T));
  });
}

// Mixed-radix counter over `dims`, tracking an element offset with per-dim `strides`.
struct Odometer {
  const std::vector<int64_t>& dims;
  const std::vector<int64_t>& strides;
  std::vector<int64_t> idx;
  int64_t offset = 0;
  Odometer(const std::vector<int64_t>& d, const std::vector<int64_t>& s, int64_t linear)
      : dims(d), strides(s), idx(d.size(), 0) {
    for (int i = static_cast<int>(d.size()) - 1; i >= 0; --i) {
      if (dims[i] == 0) continue;
      idx[i] = linear % dims[i];
      linear /= dims[i];
      offset += idx[i] * strides[i];
    }
  }
  void next() {
    for (int i = static_cast<int>(dims.size()) - 1; i >= 0; --i) {
      offset += strides[i];
      if (++idx[i] < dims[i]) return;
      offset -= idx[i] * strides[i];
      idx[i] = 0;
    }
  }
};

}  // namespace llmc::rt::data_movement
