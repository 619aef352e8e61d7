// The merge table of byte-level BPE and the loop that applies it to one pre-tokenized piece:
// the adjacent pair with the lowest rank merges first, the leftmost on ties, until no adjacent
// pair has a merge (Hugging Face tokenizers' Word::merge_all, O(n log n) with a heap).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace llmc {

class BpeMerges {
 public:
  // Adds the merge left + right -> merged with the next rank. A pair added again takes the later
  // rank, as in HF, whose merge map is built by inserting in file order.
  void add(int32_t left, int32_t right, int32_t merged);
  // Merges the symbols `ids` (a piece's byte tokens) in place.
  void apply(std::vector<int32_t>* ids) const;
  size_t size() const { return count_; }

 private:
  struct Entry {
    uint64_t key = kEmpty;
    uint32_t rank = 0;
    int32_t merged = -1;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are >= 0, so no real key is all ones
  static uint64_t key_of(int32_t left, int32_t right) {
    return (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
  }
  const Entry* find(int32_t left, int32_t right) const;
  size_t slot_of(uint64_t key) const;
  void grow();

  // Open addressing, linear probing: the lookup is the hot loop of encoding.
  std::vector<Entry> slots_;
  size_t count_ = 0;
  uint32_t next_rank_ = 0;
};

}  // namespace llmc
