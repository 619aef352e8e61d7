// A fixed pool of worker threads for data-parallel loops. parallel_for splits [0, n) into
// chunks of at least `grain` items (the last one may be shorter), long ones first and shorter
// ones towards the end; the calling thread takes part, so a pool of size 1 runs everything
// inline. Calls must not nest (kernels parallelise one loop level).
//
// Decoding runs ~100 small parallel loops per token, so waking workers must cost microseconds:
// idle workers spin briefly on an atomic generation counter before sleeping on a condition
// variable, and the caller spins for completion.
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

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t n_ = 0, chunk_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> active_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace llmc::rt
