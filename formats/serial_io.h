// The compact binary form tokenizers serialize to for model metadata: integers as LEB128 varints,
// strings as a varint length then the bytes. The reader checks every value against a limit and
// every length against the bytes left, so hostile bytes give an error (naming the source, what
// was being read and the byte offset), never a crash or a huge allocation.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "ir/status.h"

namespace llmc {

void put_varint(uint64_t v, std::string* out);
void put_string(std::string_view s, std::string* out);

class SerialReader {
 public:
  // `what` describes the bytes in errors ("serialized BPE tokenizer").
  SerialReader(std::string_view bytes, const std::string& source, std::string what)
      : bytes_(bytes), source_(source), what_(std::move(what)) {}

  // A varint no larger than `limit`; `field` names it in errors.
  Status varint(uint64_t limit, const char* field, uint64_t* v);
  Status string(const char* field, std::string* s);
  // A count of items that take at least one byte each, so it cannot exceed what remains.
  Status count(const char* field, uint64_t* n) { return varint(remaining(), field, n); }
  size_t remaining() const { return bytes_.size() - pos_; }
  bool at_end() const { return pos_ == bytes_.size(); }

  template <typename... Args>
  Status error(const Args&... args) const {
    return invalid_input(source_, ": ", what_, ", byte ", pos_, ": ", args...);
  }

 private:
  std::string_view bytes_;
  const std::string& source_;
  std::string what_;
  size_t pos_ = 0;
};

}  // namespace llmc
