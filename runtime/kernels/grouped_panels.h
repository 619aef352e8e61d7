// One parallel loop over the panels of several products (grouped decode rows: Q, K and V of one
// activation): task t is a panel of product i when first[i] <= t < first[i + 1]. `run(i, p0,
// p1)` computes panels [p0, p1) of product i; a thread's chunk spanning products is split.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/thread_pool.h"

namespace llmc::rt {

template <typename Run>
void for_grouped_panels(const std::vector<int64_t>& first, bool parallel, ThreadPool* pool, const Run& run) {
  const size_t n = first.size() - 1;
  struct Loop {  // behind one pointer: the lambda stays in std::function's inline storage
    const int64_t* first;
    size_t n;
    const Run* run;
  } loop{first.data(), n, &run};
  auto chunk = [l = &loop](int64_t t0, int64_t t1) {
    size_t i = 0;
    for (int64_t t = t0; t < t1;) {
      while (t >= l->first[i + 1]) ++i;
      const int64_t p1 = std::min(t1, l->first[i + 1]) - l->first[i];
      (*l->run)(i, t - l->first[i], p1);
      t = l->first[i] + p1;
    }
  };
  if (pool && parallel && first[n] > 1) pool->parallel_for(first[n], 1, chunk);
  else chunk(0, first[n]);
}

}  // namespace llmc::rt
