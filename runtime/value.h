// A runtime tensor: dtype, shape and bytes. Bytes are shared (shared_ptr), so ops that only
// change the shape (Reshape, Squeeze, Identity...) alias their input instead of copying, and
// constants are borrowed from the model's initializers (often mmapped) without a copy.
// A Value is immutable once its producing kernel returns.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/dtype.h"
#include "ir/tensor.h"

namespace llmc::rt {

class BufferPool;

class Value {
 public:
  Value() = default;
  // Uninitialised storage for `shape`, from `pool` when given (recycled buffers).
  static Value allocate(DType dtype, std::vector<int64_t> shape, BufferPool* pool = nullptr);
  // Read-only view of a model constant; keeps the constant's bytes alive.
  static Value borrow(const Tensor& t);
  // Same bytes, another shape (numel must match).
  Value reshaped(std::vector<int64_t> shape) const;
  // Owned copy of a Tensor (used for user inputs from .npy).
  static Value copy_of(const Tensor& t);

  bool empty() const { return dtype_ == DType::kUndefined; }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i < 0 ? i + rank() : i]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return dtype_storage_bytes(dtype_, numel()); }
  const void* raw() const { return data_.get(); }
  void* mutable_raw() { return data_.get(); }
  template <typename T> const T* data() const { return static_cast<const T*>(raw()); }
  template <typename T> T* mutable_data() { return static_cast<T*>(mutable_raw()); }
  // As a Tensor (a view sharing the bytes; a dense copy first when padded), e.g. to write .npy.
  Tensor to_tensor(const std::string& name) const;

  // Padded storage, for a KV cache grown in place (Concat with kKvAppend): the bytes hold
  // padded_extent() slots along padded_axis(), of which the first dim(axis) are this Value's.
  // Kernels only see padded Values when they say they handle them (Session::run densifies the
  // rest); raw() then points at slot 0 and the stride of the axis above is extent * inner.
  bool dense() const { return pad_axis_ < 0; }
  int padded_axis() const { return pad_axis_; }
  int64_t padded_extent() const { return pad_extent_; }
  static Value allocate_padded(DType dtype, std::vector<int64_t> shape, int axis, int64_t extent,
                               BufferPool* pool = nullptr);
  // Slots of the padded axis written so far by anyone sharing these bytes: an append in place
  // is only safe when it equals dim(axis) (nobody appended past this Value already).
  int64_t filled() const { return fill_ ? *fill_ : 0; }
  // The same bytes with `length` slots (after writing slots [dim(axis), length)).
  Value grown_to(int64_t length) const;
  // Records that slots [0, n) of the shared bytes are written (by the append that made this).
  void mark_filled(int64_t n) const {
    if (fill_) *fill_ = n;
  }
  // A dense copy when padded; *this otherwise.
  Value densified(BufferPool* pool = nullptr) const;

 private:
  DType dtype_ = DType::kUndefined;
  std::vector<int64_t> shape_;
  std::shared_ptr<uint8_t> data_;
  int pad_axis_ = -1;
  int64_t pad_extent_ = 0;
  std::shared_ptr<int64_t> fill_;
};

// Recycles freed buffers by size so steady-state decoding allocates nothing. Buffers handed
// out keep the pool's state alive; one returned after the pool is gone is simply freed.
class BufferPool {
 public:
  BufferPool();
  std::shared_ptr<uint8_t> get(size_t nbytes);
  // Bytes currently parked in the free lists.
  size_t bytes_free() const;
  // Bytes handed out and not yet returned (the activations alive now), for the session's
  // total-bytes limit.
  size_t bytes_in_use() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// 64-byte aligned heap buffer (vector loads, no false sharing between threads' outputs).
std::shared_ptr<uint8_t> aligned_buffer(size_t nbytes);

}  // namespace llmc::rt
