#include "formats/bpe_merges.h"

#include <algorithm>
#include <functional>

namespace llmc {

size_t BpeMerges::slot_of(uint64_t key) const {
  // Fibonacci hashing spreads the (left, right) id pairs over the power-of-two table.
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> 20) & (slots_.size() - 1);
}

const BpeMerges::Entry* BpeMerges::find(int32_t left, int32_t right) const {
  if (slots_.empty()) return nullptr;
  uint64_t key = key_of(left, right);
  for (size_t i = slot_of(key);; i = (i + 1) & (slots_.size() - 1)) {
    const Entry& e = slots_[i];
    if (e.key == key) return &e;
    if (e.key == kEmpty) return nullptr;
  }
}

void BpeMerges::grow() {
  std::vector<Entry> old = std::move(slots_);
  slots_.assign(std::max<size_t>(64, old.size() * 2), Entry{});
  for (const Entry& e : old) {
    if (e.key == kEmpty) continue;
    size_t i = slot_of(e.key);
    while (slots_[i].key != kEmpty) i = (i + 1) & (slots_.size() - 1);
    slots_[i] = e;
  }
}

void BpeMerges::add(int32_t left, int32_t right, int32_t merged) {
  if ((count_ + 1) * 2 > slots_.size()) grow();  // load factor stays at most 1/2
  uint64_t key = key_of(left, right);
  size_t i = slot_of(key);
  while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & (slots_.size() - 1);
  if (slots_[i].key == kEmpty) ++count_;
  slots_[i] = Entry{key, next_rank_++, merged};
}

void BpeMerges::apply(std::vector<int32_t>* ids) const {
  std::vector<int32_t>& sym = *ids;
  const size_t n = sym.size();
  if (n < 2) return;
  if (n == 2) {  // most pieces are short: skip the heap
    if (const Entry* e = find(sym[0], sym[1])) sym = {e->merged};
    return;
  }
  struct Candidate {
    uint32_t rank;
    uint32_t pos;     // left symbol's original index
    int32_t merged;   // identifies the pair: a stale candidate's pair now merges to another id
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  // Doubly linked list over the original indices; merged-away symbols get id -1.
  thread_local std::vector<int32_t> prev, next;
  thread_local std::vector<Candidate> heap;  // a min-heap by (rank, pos)
  prev.resize(n);
  next.resize(n);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  heap.clear();
  const std::greater<Candidate> later;
  auto push = [&](int32_t pos) {
    int32_t right = next[pos];
    if (right < 0) return;
    if (const Entry* e = find(sym[pos], sym[right]))
    {
      heap.push_back({e->rank, static_cast<uint32_t>(pos), e->merged});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    Candidate top = heap.back();
    heap.pop_back();
    int32_t pos = static_cast<int32_t>(top.pos);
    int32_t right = next[pos];
    if (sym[pos] < 0 || right < 0) continue;
    const Entry* e = find(sym[pos], sym[right]);
    if (!e || e->merged != top.merged) continue;  // the pair changed since it was queued
    sym[pos] = top.merged;
    sym[right] = -1;
    next[pos] = next[right];
    if (next[pos] >= 0) prev[next[pos]] = pos;
    if (prev[pos] >= 0) push(prev[pos]);
    push(pos);
  }
  sym.erase(std::remove(sym.begin(), sym.end(), -1), sym.end());
}

}  // namespace llmc
