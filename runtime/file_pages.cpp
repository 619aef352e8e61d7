#include "runtime/file_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <tuple>

namespace llmc::rt {

namespace {

struct Mapping {
  uintptr_t lo = 0, hi = 0;
  unsigned long long offset = 0, inode = 0;
  char perms[5] = {0};
  bool operator<(const Mapping& o) const {
    return std::tie(lo, hi, offset, inode) < std::tie(o.lo, o.hi, o.offset, o.inode);
  }
};

bool parse_header(const char* line, Mapping& m) {
  char dev[32] = {0};
  return std::sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s %llx %31s %llu", &m.lo, &m.hi, m.perms, &m.offset, dev,
                     &m.inode) == 6;
}

// The mapping holding `addr`, from /proc/self/maps (cheap: no page-table walk).
bool find_mapping(uintptr_t addr, Mapping& out) {
  FILE* maps = std::fopen("/proc/self/maps", "r");
  if (!maps) return false;
  bool found = false;
  char line[8192];
  while (!found && std::fgets(line, sizeof line, maps)) {
    Mapping m;
    if (parse_header(line, m) && addr >= m.lo && addr < m.hi) out = m, found = true;
  }
  std::fclose(maps);
  return found;
}

// Whether the mapping has no anonymous (privately written) pages, from /proc/self/smaps. Reading
// smaps walks every mapping's page tables, so the answer is kept per mapping: a mapping that is
// read-only now and had no written pages cannot get any without an mprotect, which we never do.
bool no_anonymous_pages(const Mapping& m) {
  static std::mutex mu;
  static std::map<Mapping, bool> known;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = known.find(m); it != known.end()) return it->second;
  FILE* smaps = std::fopen("/proc/self/smaps", "r");
  if (!smaps) return false;
  bool in_it = false, safe = false;
  char line[8192];
  while (std::fgets(line, sizeof line, smaps)) {
    Mapping h;
    if (parse_header(line, h)) {
      if (in_it) break;  // the next mapping: ours had no Anonymous line
      in_it = h.lo == m.lo && h.hi == m.hi;
      continue;
    }
    unsigned long long anon_kb = 0;
    if (in_it && std::sscanf(line, "Anonymous: %llu kB", &anon_kb) == 1) {
      safe = anon_kb == 0;
      break;
    }
  }
  std::fclose(smaps);
  known[m] = safe;
  return safe;
}

}  // namespace

bool in_read_only_file_mapping(const void* p, size_t n) {
  const auto begin = reinterpret_cast<uintptr_t>(p), end = begin + n;
  if (n == 0) return false;
  Mapping m;
  if (!find_mapping(begin, m)) return false;
  // Readable, never writable, backed by a file (inode != 0), covering the whole range, and
  // without privately written pages: a private mapping written and then made read-only (a
  // RELRO segment) also shows "r--p" with an inode, but MADV_DONTNEED would revert its pages.
  if (m.perms[0] != 'r' || m.perms[1] != '-' || m.inode == 0 || end > m.hi) return false;
  return no_anonymous_pages(m);
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
