#include "tools/file_hash.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif

namespace llmc::cli {

namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Hashes the file through a read-only mapping, a chunk at a time: the digest reads the page
// cache directly (read() would first copy every byte: as long as the SHA-256 itself with SHA-NI,
// measured on a 537 MB model), and each chunk's pages leave this process once hashed, so the
// resident set grows by a few chunks at most. Mapping the pages is a fifth of the work; a
// second thread does it (MADV_POPULATE_READ, one call per chunk) up to kAhead chunks ahead of
// the digest, so the SHA-256 thread, which the pipeline often ends up waiting for, only hashes
// and drops. Each chunk is claimed once (compare-and-swap): by the mapper, which the digest then
// waits for, or by the digest itself, which faults the pages in as it reads.
bool digest_mapped(int fd, size_t size, EVP_MD_CTX* ctx) {
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) return false;
  ::madvise(map, size, MADV_SEQUENTIAL);
  constexpr size_t kChunk = size_t(4) << 20, kAhead = 2;  // a multiple of the page size
  const auto* p = static_cast<const unsigned char*>(map);
  const size_t chunks = (size + kChunk - 1) / kChunk;
  auto chunk = [&](size_t c) { return const_cast<unsigned char*>(p + c * kChunk); };
  auto length = [&](size_t c) { return std::min(kChunk, size - c * kChunk); };
  enum : uint8_t { kFree, kMapping, kMapped, kHashing };
  std::unique_ptr<std::atomic<uint8_t>[]> state(new std::atomic<uint8_t>[chunks]);
  for (size_t c = 0; c < chunks; ++c) state[c].store(kFree, std::memory_order_relaxed);
  std::atomic<size_t> digested{0};  // chunks hashed (chunks at the end: done)
  std::thread mapper([&] {
    for (size_t c = 0; c < chunks; ++c) {
      size_t d = digested.load(std::memory_order_acquire);
      while (c >= d + kAhead) {  // far enough ahead: sleep until the digest moves
        digested.wait(d, std::memory_order_acquire);
        d = digested.load(std::memory_order_acquire);
      }
      uint8_t expect = kFree;
      if (c < d || !state[c].compare_exchange_strong(expect, kMapping, std::memory_order_acq_rel)) continue;
      ::madvise(chunk(c), length(c), MADV_POPULATE_READ);
      state[c].store(kMapped, std::memory_order_release);
      state[c].notify_one();
    }
  });
  for (size_t c = 0; c < chunks; ++c) {
    uint8_t expect = kFree;
    if (!state[c].compare_exchange_strong(expect, kHashing, std::memory_order_acq_rel))
      while (expect == kMapping) {  // the mapper has it: wait until it is mapped
        state[c].wait(kMapping, std::memory_order_acquire);
        expect = state[c].load(std::memory_order_acquire);
      }
    EVP_DigestUpdate(ctx, chunk(c), length(c));
    ::madvise(chunk(c), length(c), MADV_DONTNEED);
    digested.store(c + 1, std::memory_order_release);
    digested.notify_one();
  }
  mapper.join();
  ::munmap(map, size);
  return true;
}

bool digest_read(int fd, EVP_MD_CTX* ctx) {
  std::vector<unsigned char> buf(size_t(1) << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
  }
}

}  // namespace

Result<std::string> sha256_file(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return io_error(path, ": cannot open for hashing");
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return io_error(path, ": cannot stat for hashing: ", std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return internal_error("SHA-256 unavailable");
  // Regular files through a mapping; anything else (or a failed map) read as a stream.
  const bool mapped = S_ISREG(st.st_mode) && st.st_size > 0 && digest_mapped(f.fd, static_cast<size_t>(st.st_size), ctx.get());
  if (!mapped && !digest_read(f.fd, ctx.get())) return io_error(path, ": read failed while hashing");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace llmc::cli
