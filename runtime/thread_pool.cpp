#include "runtime/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace llmc::rt {

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
// How long an idle worker spins before sleeping: long enough to bridge the gap between two
// kernels of one decode step, short enough not to burn a core between requests.
constexpr auto kSpin = std::chrono::microseconds(200);
}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Guided chunks: each claim takes 1/(2·threads) of what is left (at least chunk_), so the first
// chunks are long sequential runs and the last ones short. With equal chunks of n/(4·threads)
// the thread that finished first waited 3-8 us per decode matmul for the other's last chunk;
// guided, 1-3 us (measured in the caller, int8 110M model, docs/performance.md).
void ThreadPool::run_chunks() {
  const int64_t parts = 2 * static_cast<int64_t>(size());
  int64_t begin = next_.load(std::memory_order_relaxed);
  while (begin < n_) {
    const int64_t end = std::min(n_, begin + std::max(chunk_, (n_ - begin) / parts));
    if (!next_.compare_exchange_weak(begin, end, std::memory_order_relaxed)) continue;  // begin reloaded
    (*job_)(begin, end);
    done_.fetch_add(end - begin, std::memory_order_release);
    begin = next_.load(std::memory_order_relaxed);
  }
}

void ThreadPool::prefetch(const Range* ranges, size_t n) {
  if (workers_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(bg_mu_);
    bg_.assign(ranges, ranges + n);
    // seq_cst, as the worker's sleeping_ increment and its wait-predicate load: of this store
    // and the sleeping_ load below, and the worker's pair, one side sees the other's write.
    bg_pending_.store(n > 0);
  }

  if (n > 0 && sleeping_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }  // a worker checking its wake condition has seen the flag, or waits
    wake_.notify_all();
  }
}

void ThreadPool::stop_prefetch() {
  prefetch(nullptr, 0);
  // Pieces are claimed under the lock, so none starts on the old ranges now; wait for the one
  // (16 KB, about a microsecond) a worker may still be reading.
  // Spin, then yield: a worker descheduled mid-piece needs the core back (as in parallel_for).
  for (int spins = 0; bg_reading_.load(std::memory_order_acquire) > 0; ++spins) {
    if (spins < 4096) cpu_relax();
    else std::this_thread::yield();
  }
}

// 16 KB: a worker leaves the background reads for a parallel_for within about a microsecond.
bool ThreadPool::prefetch_piece() {
  constexpr size_t kPiece = 16 << 10;
  const unsigned char* p;
  size_t n;
  if (!bg_pending_.load(std::memory_order_acquire)) return false;  // the usual case: no lock taken
  {
    std::unique_lock<std::mutex> lock(bg_mu_, std::try_to_lock);
    if (!lock.owns_lock() || bg_.empty()) return false;
    Range& r = bg_.front();
    p = static_cast<const unsigned char*>(r.data);
    n = std::min(kPiece, r.bytes);
    r.data = p + n;
    r.bytes -= n;
    if (r.bytes == 0) bg_.erase(bg_.begin());
    if (bg_.empty()) bg_pending_.store(false, std::memory_order_release);
    bg_reading_.fetch_add(1, std::memory_order_relaxed);  // under the lock: a cancel sees it
  }
  // One load per cache line (plain loads: the hardware prefetcher follows them, and unlike
  // prefetch hints they are never dropped).
  uint64_t acc = 0;
  for (size_t off = 0; off + 8 <= n; off += 64) {
    uint64_t v;
    std::memcpy(&v, p + off, sizeof v);
    acc += v;
  }
  bg_sink_.fetch_add(acc, std::memory_order_relaxed);
  bg_read_.fetch_add(n, std::memory_order_relaxed);
  bg_reading_.fetch_sub(1, std::memory_order_release);
  return true;
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    // Spin first (doing background reads when asked), then sleep until the generation changes.
    auto spin_until = std::chrono::steady_clock::now() + kSpin;
    int polls = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      if (prefetch_piece()) {
        polls = 0;
        spin_until = std::chrono::steady_clock::now() + kSpin;
        continue;
      }
      if (++polls < 4096) cpu_relax();
      else std::this_thread::yield();
      if (polls % 64 == 0 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(mu_);
        sleeping_.fetch_add(1);
        wake_.wait(lock, [&] { return generation_.load() != seen || bg_pending_.load(); });
        sleeping_.fetch_sub(1);
        polls = 0;  // a new job (the loop ends) or background reads (the loop goes on)
        spin_until = std::chrono::steady_clock::now() + kSpin;
      }
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    // Enter, then look whether the job is still open (both seq_cst, against the caller's close
    // then look): either this worker sees it closed and leaves without touching the job, or
    // the caller sees it inside and waits for it.
    inside_.fetch_add(1);
    if (open_.load()) run_chunks();
    inside_.fetch_sub(1, std::memory_order_release);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int threads = size();
  if (threads == 1 || n <= grain) {
    fn(0, n);
    return;
  }
  // The smallest chunk: grain, and no less than 1/16 of a thread's share (bounds the claims).
  const int64_t chunk = std::max(grain, n / (threads * 16));
  job_ = &fn;
  n_ = n;
  chunk_ = chunk;
  next_.store(0);
  done_.store(0);
  open_.store(true);  // publishes the job to workers that find it open
  {
    // Under the lock so a worker deciding to sleep cannot miss this generation.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleeping_.load() > 0) wake_.notify_all();
  run_chunks();
  // Wait for the chunks other threads claimed, not for the workers: one that another process
  // keeps off its core, or that is still waking, claims nothing once the caller has taken every
  // chunk, and is not waited for (under load, waiting for every worker to pass through cost
  // up to 3x in decode). Spin, but yield the core once it takes long: a descheduled worker
  // holding a chunk needs it back.
  for (int spins = 0; done_.load(std::memory_order_acquire) < n; ++spins) {
    if (spins < 4096) cpu_relax();
    else std::this_thread::yield();
  }
  // Close the job, then wait only for workers inside it (they find no chunk left and leave):
  // a late worker that enters after this sees it closed and never reads the next job's state
  // while it is being written.
  open_.store(false);
  for (int spins = 0; inside_.load() > 0; ++spins) {
    if (spins < 4096) cpu_relax();
    else std::this_thread::yield();
  }
  job_ = nullptr;
}

}  // namespace llmc::rt
