#include "ir/tensor.h"

#include <limits>
#include <sstream>

namespace llmc {

int64_t shape_numel(const std::vector<int64_t>& dims) {
  // Saturates: a shape read from a file whose product overflows must never equal a real (small)
  // element count. Callers that size buffers from untrusted shapes use checked_numel instead.
  int64_t n = 1;
  for (int64_t d : dims)
    if (__builtin_mul_overflow(n, d, &n)) return std::numeric_limits<int64_t>::max();
  return n;
}

std::string shape_str(const std::vector<int64_t>& dims) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < dims.size(); ++i) os << (i ? "," : "") << dims[i];
  os << "]";
  return os.str();
}

namespace {
// 64-byte aligned so kernels may use aligned vector loads on owned weights.
std::shared_ptr<const uint8_t> own_uninitialized(size_t nbytes) {
  auto* p = static_cast<uint8_t*>(::operator new[](nbytes ? nbytes : 1, std::align_val_t(64)));
  return std::shared_ptr<const uint8_t>(p, [](const uint8_t* q) {
    ::operator delete[](const_cast<uint8_t*>(q), std::align_val_t(64));
  });
}

std::shared_ptr<const uint8_t> own_copy(const void* bytes, size_t nbytes) {
  auto p = own_uninitialized(nbytes);
  if (nbytes) std::memcpy(const_cast<uint8_t*>(p.get()), bytes, nbytes);
  return p;
}
}  // namespace

Tensor Tensor::from_bytes(std::string name, DType dtype, std::vector<int64_t> dims,
                          const void* bytes, size_t nbytes) {
  Tensor t;
  t.name_ = std::move(name);
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.data_ = own_copy(bytes, nbytes);
  t.nbytes_ = nbytes;
  return t;
}

Tensor Tensor::from_string_bytes(std::string name, DType dtype, std::vector<int64_t> dims,
                                 std::string&& bytes) {
  auto holder = std::make_shared<std::string>(std::move(bytes));
  Tensor t;
  t.name_ = std::move(name);
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.nbytes_ = holder->size();
  t.data_ = std::shared_ptr<const uint8_t>(holder,
                                           reinterpret_cast<const uint8_t*>(holder->data()));
  return t;
}

Tensor Tensor::view(std::string name, DType dtype, std::vector<int64_t> dims,
                    std::shared_ptr<const void> owner, const void* bytes, size_t nbytes) {
  Tensor t;
  t.name_ = std::move(name);
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.data_ = std::shared_ptr<const uint8_t>(std::move(owner),
                                           static_cast<const uint8_t*>(bytes));
  t.nbytes_ = nbytes;
  t.is_view_ = true;
  return t;
}

Tensor Tensor::zeros(std::string name, DType dtype, std::vector<int64_t> dims) {
  Tensor t = uninitialized(std::move(name), dtype, std::move(dims));
  if (t.nbytes_) std::memset(const_cast<uint8_t*>(t.data_.get()), 0, t.nbytes_);
  return t;
}

Tensor Tensor::uninitialized(std::string name, DType dtype, std::vector<int64_t> dims) {
  Tensor t;
  t.name_ = std::move(name);
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.nbytes_ = dtype_storage_bytes(dtype, shape_numel(t.dims_));
  t.data_ = own_uninitialized(t.nbytes_);
  return t;
}

Tensor Tensor::deferred(std::string name, DType dtype, std::vector<int64_t> dims, TensorProducer produce) {
  Tensor t;
  t.name_ = std::move(name);
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.nbytes_ = dtype_storage_bytes(dtype, shape_numel(t.dims_));
  t.deferred_ = std::make_shared<Deferred>();
  t.deferred_->produce = std::move(produce);
  return t;
}

const uint8_t* Tensor::materialize() const {
  Deferred& d = *deferred_;
  std::call_once(d.once, [&] {
    auto bytes = own_uninitialized(nbytes_);
    if (nbytes_) d.produce(const_cast<uint8_t*>(bytes.get()));
    d.bytes = std::move(bytes);
    d.ready.store(true, std::memory_order_release);
  });
  return d.bytes.get();
}

void Tensor::produce_into(uint8_t* dst) const {
  if (!nbytes_) return;
  if (!deferred_) {
    std::memcpy(dst, data_.get(), nbytes_);
    return;
  }
  // Bytes a data() call already produced are copied; otherwise they are produced straight into
  // dst and not kept. (A data() racing with this produces its own copy: the producer is pure.)
  if (deferred_->ready.load(std::memory_order_acquire)) {
    std::memcpy(dst, deferred_->bytes.get(), nbytes_);
    return;
  }
  deferred_->produce(dst);
}

Tensor Tensor::strings(std::string name, std::vector<int64_t> dims,
                       std::vector<std::string> values) {
  Tensor t;
  t.name_ = std::move(name);
  t.dtype_ = DType::kString;
  t.dims_ = std::move(dims);
  t.strings_ = std::move(values);
  return t;
}

uint8_t* Tensor::mutable_data() {
  if (deferred_) {  // produced, then owned like any other bytes (shared with copies until written)
    materialize();
    data_ = deferred_->bytes;
    deferred_.reset();
  }
  if (is_view_ || data_.use_count() > 1) {
    data_ = own_copy(data_.get(), nbytes_);
    is_view_ = false;
  }
  return const_cast<uint8_t*>(data_.get());
}

bool Tensor::identical_to(const Tensor& o) const {
  if (name_ != o.name_ || dtype_ != o.dtype_ || dims_ != o.dims_ || nbytes_ != o.nbytes_ ||
      strings_ != o.strings_)
    return false;
  return nbytes_ == 0 || std::memcmp(data(), o.data(), nbytes_) == 0;
}

}  // namespace llmc
