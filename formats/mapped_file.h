// A read-only memory map of a whole file. Shared so tensors viewing its bytes keep it alive.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ir/status.h"

namespace llmc {

class MappedFile {
 public:
  // Fails (naming the path) on a missing file, a directory, or an unreadable file.
  // An empty file maps to size() == 0.
  static Result<std::shared_ptr<const MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace llmc
