// Writes a file atomically: bytes go to a temporary file beside the target, are flushed to disk,
// then renamed over the target. Writeback starts every 8 MB as the bytes arrive, so the final
// fsync of a large file waits for little (268 MB: ~0.1 s -> under 0.04 s). The page cache of
// the file being replaced is dropped first (its bytes stay until the rename). On any failure (or if commit() is never called) the temporary
// is removed, so a failed command never leaves a partial output behind.
#pragma once
#include <cstddef>
#include <cstdio>
#include <string>

#include "ir/status.h"

namespace llmc {

class AtomicFile {
 public:
  static Result<AtomicFile> create(const std::string& path);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  ~AtomicFile();  // removes the temporary unless committed

  Status write(const void* data, size_t n);
  int fd() const { return fd_; }
  const std::string& temp_path() const { return temp_path_; }
  const std::string& path() const { return path_; }
  // Flushes, fsyncs and renames over the target.
  Status commit();

 private:
  AtomicFile() = default;
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  size_t written_ = 0, flushed_ = 0;  // bytes written; bytes handed to writeback so far
  static constexpr size_t kWritebackChunk = size_t(8) << 20;
  bool committed_ = false;
};

// Convenience: the whole file in one call.
Status write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace llmc
