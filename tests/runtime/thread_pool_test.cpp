// ThreadPool::parallel_for: every index in [0, n) runs exactly once, in chunks of at least
// `grain` (except the last one, which ends at n), for pools of 1-3 threads and n below, at and
// far above the grain; the number of chunks stays bounded (guided chunks shrink towards the end
// but not below n / (16 * threads)).
#include <catch2/catch.hpp>
#include <atomic>
#include <mutex>
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
