// Session: runs an ir::Model. Plans once (kernel per node, value slots, last use of each value
// so buffers are released and recycled as soon as nothing reads them), then runs any number
// of times with shapes resolved at run time. Unsupported ops fail at creation, naming the node.
#pragma once
#include <deque>
#include <array>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "runtime/kernel.h"
#include "runtime/thread_pool.h"
#include "runtime/value.h"

namespace llmc::rt {

// More threads than this is a usage error, not an attempt to start them (the OS refuses
// long before, with an exception).
inline constexpr int kMaxThreads = 1024;

struct SessionOptions {
  SessionOptions() = default;
  SessionOptions(int threads_) : threads(threads_) {}  // NOLINT: {n} reads as "n threads"
  int threads = 0;  // 0: one per core; at most kMaxThreads
  // Optional: a pool shared with other sessions (then `threads` is ignored). Sessions that run
  // in turn in one process (bench comparing models token by token) share one, so no idle
  // worker of one spins on a core while the other runs. Such sessions must not run at the
  // same time (a pool runs one parallel loop at a time).
  std::shared_ptr<ThreadPool> pool;
  MemoryLimits limits;
};

class Session {
 public:
  static Result<std::unique_ptr<Session>> create(std::shared_ptr<const Model> model,
                                                 const SessionOptions& options = {});

  // Feeds by graph input name. Returns `outputs` (default: every graph output, in order).
  // Names in `outputs` may also be intermediate values (taps for calibration and debugging).
  // One call at a time: a run uses the session's buffers, profile and per-node caches (the
  // first run packs constant weights); use one Session per thread for concurrent inference.
  // Returned Values are dense unless keep_padded: the Decoder takes the KV cache padded (see
  // kKvAppend) and feeds it back, so the next step appends in place.
  Result<std::vector<Value>> run(const std::map<std::string, Value>& feeds,
                                 const std::vector<std::string>& outputs = {}, bool keep_padded = false);

  const Model& model() const { return *model_; }
  // Graph inputs the caller must feed (those without an initializer of the same name).
  const std::vector<ValueInfo>& inputs() const { return inputs_; }
  // Whether `v` may feed graph input `info` (dtype, rank, fixed dims): run() checks it too, but a
  // caller holding the feed's file checks first so the error can name that file.
  Status check_feed(const ValueInfo& info, const Value& v) const;
  const std::vector<ValueInfo>& outputs() const { return model_->graph.outputs; }
  int threads() const { return pool_->size(); }
  // Bytes of packed weights the steps stream every run (declared as the first run packs them);
  // idle workers read the next ones ahead while small steps run (ThreadPool::prefetch).
  size_t streaming_bytes() const;

  // Per-op-type time, collected while profiling is on (bench --profile).
  struct OpTime {
    double ms = 0;
    int64_t calls = 0;
  };
  void set_profiling(bool on) { profiling_ = on; }
  const std::map<std::string, OpTime>& profile() const { return profile_; }

 private:
  struct Step {
    const Node* node;
    const KernelFn* kernel;
    int64_t opset;
    std::vector<int> inputs;   // slot ids, -1 for omitted
    std::vector<int> outputs;  // slot ids, -1 for omitted
    std::vector<int> release;  // slots whose last reader is this step
    std::vector<bool> constant_inputs;  // per input: an initializer
    bool takes_padded = false;          // the kernel handles padded Values (else dense copies)
    std::shared_ptr<void> cache;        // the kernel's data derived from constants (KernelContext::cached)
    std::vector<ThreadPool::Range> streams;  // what it streams every run (KernelContext::add_stream)
  };

  // Who produces and who reads each slot: what the plan-time folds match patterns on (each fold
  // takes a fresh one, as the folds before it rewired steps).
  struct Links {
    std::vector<int> readers;        // per slot: steps reading it
    std::map<int, size_t> producer;  // slot -> the step producing it
    std::set<int> graph_outputs;
  };

  Session(std::shared_ptr<const Model> model, std::shared_ptr<ThreadPool> pool);
  Status plan();
  Links links() const;
  // The one step reading `slot` (not a graph output), if it is the default-domain `op`; else -1.
  long sole_reader(const Links& links, int slot, const char* op) const;
  // An initializer that is not also a graph input (a feed may override those).
  bool fixed_constant(int slot) const { return slot >= 0 && fixed_constant_[slot]; }
  void fold_constant_steps();  // session_fold_constants.cpp
  void fold_transposes_into_matmul();  // session_fold_transpose.cpp
  void fold_grouped_kv();  // session_fold_grouped_kv.cpp
  void fold_dynamic_quant_matmul();    // session_fold_dqmm.cpp
  void fold_qdq_matmul();  // session_fold_qdq.cpp
  void fold_rmsnorm();     // session_fold_rmsnorm.cpp
  void fold_rotary();      // session_fold_rotary.cpp
  void fold_silu();        // session_fold_silu.cpp
  void fold_dynamic_quant_matmul_groups();  // session_fold_dqmm_group.cpp
  void fold_lowrank_pairs();                // session_fold_lowrank.cpp
  void fold_matmul_groups();                // session_fold_matmul_group.cpp
  void fold_nm_sparse_groups();             // session_fold_nm_group.cpp
  void fold_nbits_groups();                 // session_fold_nbits_group.cpp
  void mark_kv_appends();
  // Makes step `at` run `kernel` on `inputs` as the node `fused` (kept in rewritten_; its names
  // serve messages and the profile), at opset 1. The step's outputs stay as they are.
  void rewrite_step(size_t at, Node fused, const KernelFn* kernel, std::vector<int> inputs);
  // Makes steps `group` (in plan order) one step where the first ran, producing every member's
  // output (`outputs`); the others are marked in `drop` (their outputs are not folded away).
  void merge_steps(const std::vector<size_t>& group, Node fused, const KernelFn* kernel, std::vector<int> inputs,
                   std::vector<int> outputs, std::vector<bool>& drop);
  // Makes `group` (products of one activation, in plan order) one step running `kernel` on the
  // activation, then inputs 1 .. per_member of each member (omitted ones -1 / ""), producing each
  // member's output; the node, named after the first member, is profiled as `op` of `domain`.
  void merge_product_group(const std::vector<size_t>& group, const std::string& op, const std::string& domain,
                           size_t per_member, std::vector<Attribute> attributes, const KernelFn* kernel,
                           std::vector<bool>& drop);
  // Drops the steps marked in `drop`; their outputs become folded_ (never materialised).
  void remove_folded_steps(const std::vector<bool>& drop);

  std::shared_ptr<const Model> model_;
  PackArena arena_;  // packed weights; declared before steps_ so it outlives their caches
  std::shared_ptr<ThreadPool> pool_;
  MemoryLimits limits_;
  BufferPool buffers_;
  std::map<std::string, int> slot_of_;
  std::vector<Value> constants_;  // per slot; empty unless an initializer or a folded constant step's output
  std::vector<bool> fixed_constant_;  // per slot: see fixed_constant()
  std::vector<ValueInfo> inputs_;
  std::vector<Step> steps_;
  std::deque<Node> rewritten_;  // node copies with runtime-only attributes (kept stable)
  std::set<int> folded_;        // slots of Transposes folded into MatMul (never produced)
  // Slots of folded grouped-query repeats -> {X, expand shape, reshape shape}: computed only
  // when a run asks for them as taps.
  std::map<int, std::array<int, 3>> repeated_kv_;
  std::vector<int> output_slots_;
  // Per step: the next step (after it) that streams weights, or -1; recomputed when a run
  // declared new streams (the first run packs weights).
  std::vector<long> next_streaming_;
  long first_streaming_ = -1;
  // One step's input pointers and outputs, reused across steps and runs.
  std::vector<const Value*> step_inputs_;
  std::vector<Value> step_outputs_;
  bool profiling_ = false;
  std::map<std::string, OpTime> profile_;
};

}  // namespace llmc::rt
