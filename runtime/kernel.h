// The kernel interface: one plain function per op, looked up by (domain, op type).
// A kernel reads ctx.input(i), node attributes (with the model's opset version, for ops whose
// attributes became inputs), and creates each output with ctx.output(i, dtype, shape).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "runtime/aligned_buffer.h"
#include "runtime/thread_pool.h"
#include "runtime/value.h"

namespace llmc::rt {

// What a session's kernels may allocate. Output sizes computed from data (Expand's shape input,
// Range's limits) beyond these are an error naming the node, not an attempt to allocate them.
// The defaults are far above any activation of the models we run and far below what a 100-byte
// hostile file may ask for.
struct MemoryLimits {
  uint64_t max_tensor_bytes = uint64_t{16} << 30;  // one kernel output
  uint64_t max_total_bytes = uint64_t{64} << 30;   // activations alive at once (the buffer pool)
};

class KernelContext {
 public:
  KernelContext(const Node& node, int64_t opset, std::vector<const Value*> inputs,
                ThreadPool& pool, BufferPool* buffers)
      : node_(node), opset_(opset), own_inputs_(std::move(inputs)), inputs_(own_inputs_), outputs_(own_outputs_),
        pool_(pool), buffers_(buffers) {
    outputs_.resize(node.outputs.size());
  }
  // With the caller's vectors (a session reuses them for every step: no allocation per step).
  // `outputs` is reset to one empty Value per node output.
  KernelContext(const Node& node, int64_t opset, const std::vector<const Value*>& inputs, std::vector<Value>& outputs,
                ThreadPool& pool, BufferPool* buffers)
      : node_(node), opset_(opset), inputs_(inputs), outputs_(outputs), pool_(pool), buffers_(buffers) {
    outputs_.clear();
    outputs_.resize(node.outputs.size());
  }
  KernelContext(const Node&, int64_t, std::vector<const Value*>&&, std::vector<Value>&, ThreadPool&, BufferPool*) =
      delete;  // the borrowed inputs must outlive the context
  KernelContext(const KernelContext&) = delete;
  KernelContext& operator=(const KernelContext&) = delete;

  const Node& node() const { return node_; }
  // Version of the node's domain in the model's opset imports.
  int64_t opset() const { return opset_; }
  size_t num_inputs() const { return inputs_.size(); }
  // nullptr when the input is omitted ("" in the model) or beyond the node's inputs.
  const Value* input(size_t i) const { return i < inputs_.size() ? inputs_[i] : nullptr; }
  // Input i, which the op requires: an error Status when missing is produced by require().
  const Value& in(size_t i) const { return *inputs_[i]; }
  Status require_inputs(size_t n) const;
  size_t num_outputs() const { return outputs_.size(); }
  bool wants_output(size_t i) const { return i < node_.outputs.size() && !node_.outputs[i].empty(); }
  // Allocates output i (from the session's buffer pool). A shape computed from input data must
  // pass check_output first.
  Value& output(size_t i, DType dtype, std::vector<int64_t> shape);
  // An error unless a tensor of `shape` and `dtype` has a representable size within the
  // session's MemoryLimits: kernels whose output shape comes from data call it before
  // output(), so a hostile shape is an error, never an overflowed (tiny) or absurd buffer.
  Status check_output(DType dtype, const std::vector<int64_t>& shape) const;
  void set_limits(const MemoryLimits& limits) { limits_ = limits; }
  // Sets output i to an existing value (aliasing, e.g. Reshape).
  void set_output(size_t i, Value v) {  // past the declared outputs: kept and dropped (see output())
    if (i >= outputs_.size()) outputs_.resize(i + 1);
    outputs_[i] = std::move(v);
  }
  std::vector<Value>& outputs() { return outputs_; }
  ThreadPool& pool() { return pool_; }

  // What a session keeps for this node across runs: which inputs are constants (initializers),
  // and one slot for data derived from them once (pre-packed weights). Without a session (a
  // kernel run on its own), nothing is constant and nothing is cached.
  void set_session_state(const std::vector<bool>* constant_inputs, std::shared_ptr<void>* cache,
                         PackArena* arena, std::vector<ThreadPool::Range>* streams = nullptr) {
    constant_inputs_ = constant_inputs;
    cache_ = cache;
    arena_ = arena;
    streams_ = streams;
  }
  // Declares, while building the cached object, memory this node streams every run (packed
  // weights): the session has idle workers read it ahead while the steps before it run.
  void add_stream(const void* data, size_t bytes) {
    if (streams_ && data && bytes) streams_->push_back({data, bytes});
  }
  // Where to put data cached for the session (packed weights); nullptr: the heap.
  PackArena* arena() const { return arena_; }
  bool input_is_constant(size_t i) const {
    return constant_inputs_ && i < constant_inputs_->size() && (*constant_inputs_)[i];
  }
  // The object built from constant inputs on this node's first run, or nullptr when there is
  // no session. `build` returns std::shared_ptr<T> (or nullptr: nothing is cached, and it is
  // asked again next run).
  template <typename T, typename Build>
  const T* cached(Build&& build) {
    if (!cache_) return nullptr;
    if (!*cache_) *cache_ = build();
    return static_cast<const T*>(cache_->get());
  }

  int64_t attr_int(const std::string& name, int64_t fallback) const { return node_.attr_int(name, fallback); }
  float attr_float(const std::string& name, float fallback) const { return node_.attr_float(name, fallback); }
  std::string attr_string(const std::string& name, const std::string& fallback) const;
  const std::vector<int64_t>* attr_ints(const std::string& name) const;
  const std::vector<float>* attr_floats(const std::string& name) const;
  const Tensor* attr_tensor(const std::string& name) const;
  bool has_attr(const std::string& name) const { return node_.find_attr(name) != nullptr; }

  // An invalid-input error for this node; the Session prefixes "node 'name' (Op): ".
  template <typename... Args>
  Status fail(const Args&... args) const {
    return invalid_input(args...);
  }

 private:
  const Node& node_;
  int64_t opset_;
  std::vector<const Value*> own_inputs_;
  std::vector<Value> own_outputs_;
  const std::vector<const Value*>& inputs_;  // own_inputs_ or the caller's
  std::vector<Value>& outputs_;              // own_outputs_ or the caller's
  ThreadPool& pool_;
  BufferPool* buffers_;
  const std::vector<bool>* constant_inputs_ = nullptr;
  std::shared_ptr<void>* cache_ = nullptr;
  PackArena* arena_ = nullptr;
  std::vector<ThreadPool::Range>* streams_ = nullptr;
  MemoryLimits limits_;
};

using KernelFn = std::function<Status(KernelContext&)>;

// Internal attribute the Session sets on a MatMul whose B input it took from a Transpose of
// the last two axes (the Transpose is skipped; B arrives as stored, [.., N, K]).
inline constexpr const char* kMatMulTransB = "llmc.trans_b";

// Domain of steps that exist only in the runtime's plan (never in a model file).
inline constexpr const char* kRuntimeDomain = "llmc.runtime";

// Internal attribute the Session sets on a MatMul whose B it took from before a grouped-query
// repeat (B = Reshape(Expand(Unsqueeze(X, 2), [b, g, r, s, d]), [b, g*r, s, d])): B arrives as
// X, followed by the Expand and Reshape shapes as inputs 2 and 3 (grouped_kv_matmul.cpp).
inline constexpr const char* kMatMulKvGroups = "llmc.kv_groups";

// Internal attribute the Session sets on Concat(past KV cache graph input, new rows) producing
// the present KV cache graph output when every reader of it handles padded Values (MatMul,
// Shape): the output is then padded along the concat axis with spare slots, and the next
// step's Concat appends in place instead of copying the whole cache (see Value::dense).
inline constexpr const char* kKvAppend = "llmc.kv_append";

// Constant weights narrower than this are not packed: panels are up to 64 columns wide, so a
// narrow B (a 1-column head) would be padded to many times its size.
inline constexpr int64_t kMinPackedColumns = 64;

// (domain, op type) -> kernel. "" is the default ONNX domain.
class KernelRegistry {
 public:
  void add(const std::string& domain, const std::string& op_type, KernelFn fn);
  void add(const std::string& op_type, KernelFn fn) { add("", op_type, std::move(fn)); }
  const KernelFn* find(const std::string& domain, const std::string& op_type) const;
  // Every (domain, op) with a kernel, sorted: the ops the runtime claims.
  std::vector<std::pair<std::string, std::string>> ops() const;

 private:
  std::map<std::pair<std::string, std::string>, KernelFn> kernels_;
};

// All built-in kernels (runtime/kernel_registry.cpp lists every kernel file once).
const KernelRegistry& builtin_kernels();

}  // namespace llmc::rt
