// ThreadPool::parallel_for: every index in [0, n) runs exactly once, in chunks of at least
// `grain` (except the last one, which ends at n), for pools of 1-3 threads and n below, at and
// far above the grain; the number of chunks stays bounded (guided chunks shrink towards the end
// but not below n / (16 * threads)). Background reads (prefetch) yield to parallel loops.
#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/thread_pool.h"

using namespace llmc::rt;

TEST_CASE("parallel_for runs every index once, in chunks of at least grain", "[runtime][thread_pool]") {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 12, 36, 64, 500, 4097, 100000})
      for (int64_t grain : {1, 3, 16, 4096}) {
        INFO("threads " << threads << " n " << n << " grain " << grain);
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::mutex mu;
        std::vector<std::pair<int64_t, int64_t>> chunks;
        for (int rep = 0; rep < 3; ++rep) {
          chunks.clear();
          pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
            std::lock_guard<std::mutex> lock(mu);
            chunks.emplace_back(b, e);
          });
        }
        for (int64_t i = 0; i < n; ++i) REQUIRE(hits[i].load() == 3);
        for (const auto& [b, e] : chunks) {
          REQUIRE(b < e);
          REQUIRE((e - b >= grain || e == n));
        }
        // Guided: about 2·threads·ln(16·threads) claims at most, whatever n is.
        REQUIRE(chunks.size() <= static_cast<size_t>(16 * threads * threads + 1));
      }
  }
}

// Background reads (ThreadPool::prefetch): idle workers read every requested byte, a
// parallel_for in the middle of them still runs every index once, a new request replaces the
// old one, an empty one stops them, and a pool of one thread ignores them.
TEST_CASE("prefetch reads ranges in the background and yields to parallel_for", "[runtime][thread_pool]") {
  using namespace std::chrono_literals;
  std::vector<unsigned char> a(size_t(6) << 20, 1), b(size_t(2) << 20, 2);
  auto wait_for = [](ThreadPool& pool, uint64_t bytes) {
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (pool.prefetched_bytes() < bytes && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(100us);
    return pool.prefetched_bytes();
  };
  {
    ThreadPool pool(2);
    const ThreadPool::Range both[] = {{a.data(), a.size()}, {b.data(), b.size()}};
    pool.prefetch(both, 2);
    // A parallel loop while the worker reads: it joins at once and every index runs once.
    std::vector<std::atomic<int>> hits(10000);
    pool.parallel_for(10000, 1, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) hits[i].fetch_add(1);
    });
    for (auto& h : hits) CHECK(h.load() == 1);
    // The worker comes back to the request and reads all of it, exactly once.
    CHECK(wait_for(pool, a.size() + b.size()) == a.size() + b.size());
    std::this_thread::sleep_for(5ms);
    CHECK(pool.prefetched_bytes() == a.size() + b.size());
    // A new request replaces what is left of the old one: all of the new one is read, and of
    // the old one at most what was read before (how much depends on scheduling).
    const uint64_t before = pool.prefetched_bytes();
    const ThreadPool::Range just_b{b.data(), b.size()};
    pool.prefetch(both, 1);
    pool.prefetch(&just_b, 1);
    wait_for(pool, before + b.size());
    std::this_thread::sleep_for(5ms);
    CHECK(pool.prefetched_bytes() - before >= b.size());
    CHECK(pool.prefetched_bytes() - before <= a.size() + b.size());
    // stop_prefetch returns only when no piece is being read: the counter no longer moves.
    pool.prefetch(both, 2);
    pool.stop_prefetch();
    const uint64_t stopped = pool.prefetched_bytes();
    std::this_thread::sleep_for(5ms);
    CHECK(pool.prefetched_bytes() == stopped);
  }
  {
    // A worker asleep (idle for longer than its spin) is woken by a request.
    ThreadPool pool(2);
    std::this_thread::sleep_for(50ms);
    const ThreadPool::Range r{b.data(), b.size()};
    pool.prefetch(&r, 1);
    CHECK(wait_for(pool, b.size()) == b.size());
  }
  ThreadPool one(1);
  const ThreadPool::Range r{a.data(), a.size()};
  one.prefetch(&r, 1);
  std::this_thread::sleep_for(5ms);
  CHECK(one.prefetched_bytes() == 0);
}

// The caller waits for the work, not for every worker: late workers (here made late by busy
// threads competing for the two cores) find a job finished and closed, or the next one open.
// Thousands of back-to-back small loops, each of whose items must run once, with a loop body
// that sometimes sleeps (a worker descheduled holding a chunk must still be waited for).
TEST_CASE("parallel_for under competing load: back-to-back loops each run every index once", "[runtime][thread_pool]") {
  std::atomic<bool> stop{false};
  std::vector<std::thread> hogs;
  for (int i = 0; i < 2; ++i)
    hogs.emplace_back([&] {
      volatile uint64_t x = 0;
      while (!stop.load(std::memory_order_relaxed)) x = x + 1;
    });
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    std::vector<int> hits(64);
    for (int rep = 0; rep < 4000; ++rep) {
      const int64_t n = 2 + rep % 63;
      std::fill(hits.begin(), hits.end(), 0);
      pool.parallel_for(n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) ++hits[i];  // plain ints: each index has one owner
        if (rep % 500 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      });
      for (int64_t i = 0; i < 64; ++i) REQUIRE(hits[i] == (i < n ? 1 : 0));
    }
  }
  stop = true;
  for (auto& t : hogs) t.join();
}
