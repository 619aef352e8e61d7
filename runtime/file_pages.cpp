#include "runtime/file_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>

namespace llmc::rt {

bool in_read_only_file_mapping(const void* p, size_t n) {
  const auto begin = reinterpret_cast<uintptr_t>(p), end = begin + n;
  if (n == 0) return false;
  FILE* maps = std::fopen("/proc/self/maps", "r");
  if (!maps) return false;
  bool file_backed_read_only = false;
  char line[4096];
  while (std::fgets(line, sizeof line, maps)) {
    uintptr_t lo = 0, hi = 0;
    char perms[5] = {0};
    unsigned long long offset = 0, inode = 0;
    char dev[32] = {0};
    if (std::sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s %llx %31s %llu", &lo, &hi, perms, &offset, dev, &inode) != 6)
      continue;
    if (begin < lo || begin >= hi) continue;
    // Readable, never writable, backed by a file (inode != 0), covering the whole range.
    file_backed_read_only = perms[0] == 'r' && perms[1] == '-' && inode != 0 && end <= hi;
    break;
  }
  std::fclose(maps);
  return file_backed_read_only;
}

void drop_file_pages(const void* p, size_t n) {
  const auto begin = reinterpret_cast<uintptr_t>(p), end = begin + n;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;  // whole pages only
  if (first < last) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

bool release_file_pages(const void* p, size_t n) {
  if (!in_read_only_file_mapping(p, n)) return false;
  drop_file_pages(p, n);
  return true;
}

}  // namespace llmc::rt
