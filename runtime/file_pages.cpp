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
  // smaps, not maps: a private mapping that was written and later made read-only (a RELRO
  // segment) also shows "r--p" with an inode, but its written pages are anonymous copies
  // that MADV_DONTNEED would silently revert. Only a mapping with no anonymous pages is safe.
  FILE* smaps = std::fopen("/proc/self/smaps", "r");
  if (!smaps) return false;
  bool found = false, candidate = false, safe = false;
  char line[8192];
  while (std::fgets(line, sizeof line, smaps)) {
    uintptr_t lo = 0, hi = 0;
    char perms[5] = {0};
    unsigned long long offset = 0, inode = 0;
    char dev[32] = {0};
    if (std::sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s %llx %31s %llu", &lo, &hi, perms, &offset, dev, &inode) == 6) {
      if (found) break;  // the next mapping's header: ours had no Anonymous line
      if (begin < lo || begin >= hi) continue;
      found = true;
      // Readable, never writable, backed by a file (inode != 0), covering the whole range.
      candidate = perms[0] == 'r' && perms[1] == '-' && inode != 0 && end <= hi;
      if (!candidate) break;
      continue;
    }
    unsigned long long anon_kb = 0;
    if (found && std::sscanf(line, "Anonymous: %llu kB", &anon_kb) == 1) {
      safe = anon_kb == 0;
      break;
    }
  }
  std::fclose(smaps);
  return found && candidate && safe;
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
