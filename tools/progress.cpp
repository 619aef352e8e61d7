#include "tools/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace llmc::cli {

Progress::Progress(std::string label, bool enabled)
    : label_(std::move(label)),
      active_(enabled && isatty(STDOUT_FILENO) && isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void Progress::update(size_t done, size_t total) {
  if (!active_ || total == 0) return;
  const auto now = std::chrono::steady_clock::now();
  // At most ten redraws a second: a terminal write per sample would slow short steps.
  if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  done = std::min(done, total);
  const double eta = done > 0 ? elapsed * double(total - done) / double(done) : 0;
  std::fprintf(stderr, "\r%s %zu/%zu (%3.0f%%) %.0fs elapsed, ETA %.0fs   ", label_.c_str(), done, total,
               100.0 * double(done) / double(total), elapsed, eta);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  start_ = last_ = std::chrono::steady_clock::now();  // the next run of updates times itself
  if (!drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace llmc::cli
