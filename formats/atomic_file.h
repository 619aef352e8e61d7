// Writes a file atomically: bytes go to a temporary file beside the target, are flushed to disk,
// then renamed over the target. On any failure (or if commit() is never called) the temporary
// is removed, so a failed command never leaves a partial output behind; on SIGINT/SIGTERM too
// (temp_files.h). Refuses a target that is not a regular file, and in commands one that is an
// input of this process (same inode: symlinks and hard links included, see input_files.h).
// Writeback starts every 8 MB as the bytes arrive, so the final fsync of a large file waits for
// little (268 MB: ~0.1 s -> under 0.04 s). The page cache of the file being replaced is dropped
// first (its bytes stay until the rename).
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
  // Flushes the temporary to disk; no write may follow. A command writing several files
  // finishes them all before committing any (all or nothing).
  Status finish();
  // finish(), then renames over the target.
  Status commit();

 private:
  AtomicFile() = default;
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  int temp_slot_ = -1;  // in temp_files' list, for removal by a signal handler
  size_t written_ = 0, flushed_ = 0;  // bytes written; bytes handed to writeback so far
  static constexpr size_t kWritebackChunk = size_t(8) << 20;
  bool finished_ = false, committed_ = false;
};

// Convenience: the whole file in one call.
Status write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace llmc
