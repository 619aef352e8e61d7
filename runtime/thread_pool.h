// A fixed pool of worker threads for data-parallel loops. parallel_for splits [0, n) into
// chunks of at least `grain` items (the last one may be shorter), long ones first and shorter
// ones towards the end; the calling thread takes part, so a pool of size 1 runs everything
// inline. Calls must not nest (kernels parallelise one loop level).
//
// Decoding runs ~100 small parallel loops per token, so waking workers must cost microseconds:
// idle workers spin briefly on an atomic generation counter before sleeping on a condition
// variable, and the caller spins for completion of the work, not for every worker: a worker
// another process keeps off its core is never waited for unless it holds a chunk.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace llmc::rt {

class ThreadPool {
 public:
  // threads <= 0: one per hardware core.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Background reads: idle workers read these byte ranges into the caches while the caller
  // works alone (decode's small ops between two weight-streaming loops: the memory bus is
  // otherwise idle then). The caller never waits; a parallel_for takes the workers at once
  // (they leave the ranges at the next piece and come back afterwards). Replaces an earlier
  // request; n == 0 cancels (a piece under way may still be read: see stop_prefetch). A pool
  // of one thread ignores it.
  struct Range {
    const void* data;
    size_t bytes;
  };
  void prefetch(const Range* ranges, size_t n);
  // Cancels, and returns once no worker is reading a piece: the memory may then be freed.
  void stop_prefetch();
  // Bytes read in the background so far (diagnostics and tests).
  uint64_t prefetched_bytes() const { return bg_read_.load(std::memory_order_relaxed); }

 private:
  void worker_loop();
  void run_chunks();
  bool prefetch_piece();  // reads one piece of the request; false when none is left

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t n_ = 0, chunk_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int64_t> done_{0};   // items of the job finished, by any thread
  std::atomic<bool> open_{false};  // a job is posted and its state may be read
  std::atomic<int> inside_{0};     // workers between entering a job and leaving it
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  std::mutex bg_mu_;
  std::vector<Range> bg_;                // background ranges left, in order
  std::atomic<bool> bg_pending_{false};  // bg_ is not empty
  std::atomic<int> bg_reading_{0};       // pieces being read outside the lock
  std::atomic<uint64_t> bg_sink_{0};     // keeps the reads
  std::atomic<uint64_t> bg_read_{0};
};

}  // namespace llmc::rt
