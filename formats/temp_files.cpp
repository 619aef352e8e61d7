#include "formats/temp_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace llmc {
namespace {

// Fixed slots, no allocation: the signal handler may run while a slot is being filled. A slot
// is kFree, kFilling (owned by a writer, not yet readable) or kLive (path readable).
constexpr int kSlots = 256;  // 1 MB of paths, in bss: untouched pages cost nothing
enum : int { kFree, kFilling, kLive };
std::atomic<int> slot_state[kSlots];
char slot_path[kSlots][PATH_MAX];

bool is_mkstemp_suffix(const char* s) {
  if (std::strlen(s) != 6) return false;
  for (const char* c = s; *c; ++c)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) return false;
  return true;
}

void on_signal(int sig) {
  remove_temp_files_now();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

int remember_temp_file(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (!slot_state[i].compare_exchange_strong(expected, kFilling)) continue;
    std::memcpy(slot_path[i], path.c_str(), path.size() + 1);
    slot_state[i].store(kLive);
    return i;
  }
  return -1;
}

void forget_temp_file(int slot) {
  if (slot >= 0 && slot < kSlots) slot_state[slot].store(kFree);
}

void remove_temp_files_now() {
  for (int i = 0; i < kSlots; ++i)
    if (slot_state[i].load() == kLive) ::unlink(slot_path[i]);
}

void remove_temp_files_on_signals() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    // An ignored signal stays ignored (nohup's SIGHUP, SIGINT of a shell's background job).
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
}

std::string temp_file_template(const std::string& target) { return target + ".tmp.XXXXXX"; }

void sweep_stale_temp_files(const std::string& target) {
  namespace fs = std::filesystem;
  const fs::path t(target);
  const std::string dir = t.parent_path().empty() ? "." : t.parent_path().string();
  const std::string prefix = t.filename().string() + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  const int dfd = ::dirfd(d);
  while (const dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) != 0) continue;
    if (!is_mkstemp_suffix(e->d_name + prefix.size())) continue;
    const int fd = ::openat(dfd, e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) continue;
    struct stat st {};
    // A live writer holds LOCK_EX: taking it means the writer is gone. The age check covers the
    // instant between a writer's mkstemp and its flock.
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime + 1 < std::time(nullptr) &&
        ::flock(fd, LOCK_EX | LOCK_NB) == 0)
      ::unlinkat(dfd, e->d_name, 0);
    ::close(fd);
  }
  ::closedir(d);
}

}  // namespace llmc
