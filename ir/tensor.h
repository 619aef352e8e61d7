// A named constant tensor. Its bytes are either owned or a view into a memory-mapped file;
// both are held through one shared_ptr (the aliasing constructor keeps the owner alive), so
// copying a Tensor never copies weights.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ir/dtype.h"

namespace llmc {

int64_t shape_numel(const std::vector<int64_t>& dims);
std::string shape_str(const std::vector<int64_t>& dims);

// Fills all nbytes() of a deferred tensor (see Tensor::deferred).
using TensorProducer = std::function<void(uint8_t* dst)>;

class Tensor {
 public:
  Tensor() = default;

  // Owned copy of `nbytes` bytes.
  static Tensor from_bytes(std::string name, DType dtype, std::vector<int64_t> dims,
                           const void* bytes, size_t nbytes);
  // Takes ownership of a byte string without copying it.
  static Tensor from_string_bytes(std::string name, DType dtype, std::vector<int64_t> dims,
                                  std::string&& bytes);
  // A view: `owner` keeps `bytes` alive (e.g. a mapped file).
  static Tensor view(std::string name, DType dtype, std::vector<int64_t> dims,
                     std::shared_ptr<const void> owner, const void* bytes, size_t nbytes);
  // Zero-filled owned tensor.
  static Tensor zeros(std::string name, DType dtype, std::vector<int64_t> dims);
  // Owned bytes left unwritten, for a producer that fills every byte through mutable_data()
  // (a quantised or converted weight): no zero fill to pay for first.
  static Tensor uninitialized(std::string name, DType dtype, std::vector<int64_t> dims);
  // Bytes produced when first needed: a weight decoded from a mapped file (a GGUF block format)
  // that a streaming writer can produce into a scratch buffer with produce_into() and never hold
  // whole, so converting a model does not keep a second copy of it in memory. data() produces
  // them once, thread-safely, and keeps them (copies of the tensor share them).
  static Tensor deferred(std::string name, DType dtype, std::vector<int64_t> dims, TensorProducer produce);
  static Tensor strings(std::string name, std::vector<int64_t> dims,
                        std::vector<std::string> values);
  template <typename T>
  static Tensor from_vector(std::string name, DType dtype, std::vector<int64_t> dims,
                            const std::vector<T>& values) {
    return from_bytes(std::move(name), dtype, std::move(dims), values.data(),
                      values.size() * sizeof(T));
  }

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  int64_t numel() const { return shape_numel(dims_); }
  size_t nbytes() const { return nbytes_; }
  // Bytes the shape and dtype call for (strings: 0).
  size_t expected_nbytes() const { return dtype_storage_bytes(dtype_, numel()); }
  const uint8_t* data() const { return deferred_ ? materialize() : data_.get(); }
  template <typename T>
  const T* data_as() const { return reinterpret_cast<const T*>(data()); }
  // True while the bytes may not exist yet (Tensor::deferred).
  bool is_deferred() const { return deferred_ != nullptr; }
  // Writes the nbytes() bytes into `dst` without keeping them (copies them if already produced).
  void produce_into(uint8_t* dst) const;
  // Copy-on-write: returns writable bytes, copying first if the bytes are shared or mapped.
  uint8_t* mutable_data();
  bool is_view() const { return is_view_; }
  const std::vector<std::string>& string_values() const { return strings_; }
  const std::string& doc_string() const { return doc_string_; }
  void set_doc_string(std::string s) { doc_string_ = std::move(s); }

  // Same name, dtype, dims and bit-identical bytes.
  bool identical_to(const Tensor& other) const;

 private:
  std::string name_;
  DType dtype_ = DType::kUndefined;
  std::vector<int64_t> dims_;
  std::shared_ptr<const uint8_t> data_;
  size_t nbytes_ = 0;
  bool is_view_ = false;
  std::vector<std::string> strings_;  // only for DType::kString
  struct Deferred {
    TensorProducer produce;
    std::once_flag once;
    std::shared_ptr<const uint8_t> bytes;
    std::atomic<bool> ready{false};  // bytes set (release) by the call_once
  };
  std::shared_ptr<Deferred> deferred_;
  const uint8_t* materialize() const;
  std::string doc_string_;
};

}  // namespace llmc
