// Returning the pages of a memory-mapped weight once the session has its own packed copy, so
// resident memory holds the weights once, not twice.
#pragma once
#include <cstddef>

namespace llmc::rt {

// Drops this process's resident pages inside [p, p + n) when the range lies in one read-only
// file mapping without privately modified pages (/proc/self/smaps): touching them again
// re-reads the same bytes from the page cache. Anything else (heap, writable, anonymous or
// copy-on-written memory) is left alone. Returns whether pages were released.
bool release_file_pages(const void* p, size_t n);

// The two halves of release_file_pages, for releasing a range piece by piece after one check:
// whether [p, p + n) lies in one read-only file mapping, and dropping the whole pages inside
// [p, p + n) (only ever call it on such a mapping).
bool in_read_only_file_mapping(const void* p, size_t n);
void drop_file_pages(const void* p, size_t n);

}  // namespace llmc::rt
