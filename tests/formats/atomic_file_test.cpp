// AtomicFile's interrupted writes (issue 12, item 6): SIGINT/SIGTERM during a write remove the
// temporary (the process then dies of the signal, as a shell expects); a SIGKILLed writer's
// temporary is swept by the next write of the same output, and a live writer's never is.
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "formats/atomic_file.h"
#include "formats/temp_files.h"
#include "tests/support/test_data.h"

using namespace llmc;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> temporaries(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) found.push_back(e.path().string());
  return found;
}

// Forks a writer that starts writing `target` and then receives `sig` mid-write. Returns its
// wait status.
int interrupted_writer(const std::string& target, int sig, bool handlers) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (handlers) remove_temp_files_on_signals();
    auto f = AtomicFile::create(target);
    if (!f.is_ok()) ::_exit(10);
    const std::string chunk(1 << 20, 'x');
    if (!f->write(chunk.data(), chunk.size()).is_ok()) ::_exit(11);
    ::raise(sig);
    ::_exit(12);  // not reached: every signal used here kills
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

void age(const std::string& path, int seconds) {
  const struct timespec t[2] = {{std::time(nullptr) - seconds, 0}, {std::time(nullptr) - seconds, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), t, 0) == 0);
}

}  // namespace

TEST_CASE("SIGINT and SIGTERM during a write remove the temporary and keep the old output", "[formats][hostile]") {
  const std::string dir = testing::scratch_dir("atomic_signal");
  const std::string target = dir + "/out.onnx";
  REQUIRE(write_file_atomically(target, "old bytes").is_ok());
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    const int status = interrupted_writer(target, sig, true);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == sig);
    CHECK(temporaries(dir).empty());
    CHECK(testing::read_text(target) == "old bytes");
  }
}

TEST_CASE("a SIGKILLed writer's temporary is swept by the next write, a live writer's is not", "[formats][hostile]") {
  const std::string dir = testing::scratch_dir("atomic_sweep");
  const std::string target = dir + "/out.onnx";
  const int status = interrupted_writer(target, SIGKILL, true);
  CHECK(WIFSIGNALED(status));
  auto left = temporaries(dir);
  REQUIRE(left.size() == 1);  // SIGKILL cannot be caught: the temporary stays ...
  age(left[0], 5);
  // ... until another command writes the same output. A live writer's temporary (locked), even
  // an old one, and files that only look similar stay.
  auto live = AtomicFile::create(target);
  REQUIRE(live.is_ok());
  age(live->temp_path(), 5);
  testing::run_shell("echo keep > " + testing::shell_quote(target + ".tmp.notours"));
  testing::run_shell("echo keep > " + testing::shell_quote(dir + "/other.onnx.tmp.ABC123"));
  age(target + ".tmp.notours", 5);
  age(dir + "/other.onnx.tmp.ABC123", 5);
  REQUIRE(write_file_atomically(target, "new bytes").is_ok());
  CHECK(testing::read_text(target) == "new bytes");
  CHECK_FALSE(fs::exists(left[0]));
  CHECK(fs::exists(live->temp_path()));
  CHECK(fs::exists(target + ".tmp.notours"));
  CHECK(fs::exists(dir + "/other.onnx.tmp.ABC123"));
  // A fresh unlocked temporary (its writer between mkstemp and flock) is left too.
  const int fresh = interrupted_writer(target, SIGKILL, false);
  CHECK(WIFSIGNALED(fresh));
  REQUIRE(write_file_atomically(target, "newer bytes").is_ok());
  CHECK(temporaries(dir).size() == 4);  // live, notours, other, fresh
}
