#include "runtime/value.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "ir/status.h"

namespace llmc::rt {

std::shared_ptr<uint8_t> aligned_buffer(size_t nbytes) {
  auto* p = static_cast<uint8_t*>(::operator new[](nbytes ? nbytes : 1, std::align_val_t(64)));
  return std::shared_ptr<uint8_t>(p, [](uint8_t* q) { ::operator delete[](q, std::align_val_t(64)); });
}

struct BufferPool::State {
  std::mutex mu;
  // Bucket size -> parked buffers. Vectors, not a multimap: taking and parking a buffer (twice
  // per step of a run) then allocates nothing once the lists have grown.
  std::unordered_map<size_t, std::vector<uint8_t*>> free;
  size_t bytes = 0;
  size_t in_use = 0;
  ~State() {
    for (auto& [n, list] : free)
      for (uint8_t* p : list) ::operator delete[](p, std::align_val_t(64));
  }
};

BufferPool::BufferPool() : state_(std::make_shared<State>()) {}

size_t BufferPool::bytes_free() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->bytes;
}

size_t BufferPool::bytes_in_use() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->in_use;
}

namespace {
// Size classes: 4 per power of two (at most 25% slack), so the growing KV cache and the
// varying sequence lengths of prefill/decode reuse buffers instead of each size its own.
size_t size_class(size_t nbytes) {
  size_t n = std::max<size_t>(nbytes, 64);
  size_t p = 64;
  while (p < n) p <<= 1;
  const size_t quarter = p / 8;  // p/2 < n <= p: step by p/8 from p/2
  size_t c = p / 2;
  while (c < n) c += quarter;
  return c;
}
// Free buffers parked beyond this are returned to the allocator.
constexpr size_t kMaxParkedBytes = size_t(64) << 20;
}  // namespace

std::shared_ptr<uint8_t> BufferPool::get(size_t nbytes) {
  const size_t bucket = size_class(nbytes);
  uint8_t* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->free.find(bucket);
    if (it != state_->free.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      state_->bytes -= bucket;
      state_->in_use += bucket;
    }
  }
  if (!p) {
    p = static_cast<uint8_t*>(::operator new[](bucket, std::align_val_t(64)));
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->in_use += bucket;
  }
  std::weak_ptr<State> weak = state_;
  return std::shared_ptr<uint8_t>(p, [weak, bucket](uint8_t* q) {
    if (auto s = weak.lock()) {
      std::lock_guard<std::mutex> lock(s->mu);
      s->in_use -= bucket;
      if (s->bytes + bucket <= kMaxParkedBytes) {
        s->free[bucket].push_back(q);
        s->bytes += bucket;
        return;
      }
    }
    ::operator delete[](q, std::align_val_t(64));
  });
}

Value Value::allocate(DType dtype, std::vector<int64_t> shape, BufferPool* pool) {
  Value v;
  v.dtype_ = dtype;
  v.shape_ = std::move(shape);
  const size_t n = v.nbytes();
  v.data_ = pool ? pool->get(n) : aligned_buffer(n);
  return v;
}

Value Value::borrow(const Tensor& t) {
  Value v;
  v.dtype_ = t.dtype();
  v.shape_ = t.dims();
  // The Tensor's bytes are const; Values are never written after creation, so this is safe.
  // Copying the Tensor keeps its owner (mapping or heap block) alive as long as the Value.
  auto holder = std::make_shared<Tensor>(t);
  v.data_ = std::shared_ptr<uint8_t>(holder, const_cast<uint8_t*>(holder->data()));
  return v;
}

Value Value::copy_of(const Tensor& t) {
  Value v = allocate(t.dtype(), t.dims());
  if (t.nbytes()) std::memcpy(v.mutable_raw(), t.data(), t.nbytes());
  return v;
}

Value Value::reshaped(std::vector<int64_t> shape) const {
  LLMC_CHECK(shape_numel(shape) == numel(), "reshape changes element count");
  // A padded Value keeps its layout (only MatMul reshapes one, to swap B's last two axes).
  Value v = *this;
  v.shape_ = std::move(shape);
  return v;
}

Tensor Value::to_tensor(const std::string& name) const {
  if (!dense()) return densified().to_tensor(name);
  return Tensor::view(name, dtype_, shape_, data_, data_.get(), nbytes());
}

Value Value::allocate_padded(DType dtype, std::vector<int64_t> shape, int axis, int64_t extent, BufferPool* pool) {
  LLMC_CHECK(axis >= 0 && axis < static_cast<int>(shape.size()) && extent >= shape[axis], "bad padded layout");
  std::vector<int64_t> storage = shape;
  storage[axis] = extent;
  Value v;
  v.dtype_ = dtype;
  v.shape_ = std::move(shape);
  const size_t n = dtype_storage_bytes(dtype, shape_numel(storage));
  v.data_ = pool ? pool->get(n) : aligned_buffer(n);
  v.pad_axis_ = axis;
  v.pad_extent_ = extent;
  v.fill_ = std::make_shared<int64_t>(0);
  return v;
}

Value Value::grown_to(int64_t length) const {
  LLMC_CHECK(!dense() && length <= pad_extent_, "growing beyond the padded extent");
  Value v = *this;
  v.shape_[pad_axis_] = length;
  return v;
}

Value Value::densified(BufferPool* pool) const {
  if (dense()) return *this;
  Value d = allocate(dtype_, shape_, pool);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < pad_axis_; ++i) outer *= shape_[i];
  for (int i = pad_axis_ + 1; i < rank(); ++i) inner *= shape_[i];
  const size_t esz = dtype_storage_bytes(dtype_, 1);
  const size_t run = static_cast<size_t>(shape_[pad_axis_] * inner) * esz, stride = static_cast<size_t>(pad_extent_ * inner) * esz;
  for (int64_t o = 0; o < outer; ++o)
    if (run) std::memcpy(d.data_.get() + o * run, data_.get() + o * stride, run);
  return d;
}

}  // namespace llmc::rt
