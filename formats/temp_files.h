// The temporary files AtomicFile is writing, kept where a signal handler can remove them: an
// interrupted command (Ctrl-C, SIGTERM, SIGHUP) leaves no OUT.tmp.XXXXXX behind. SIGKILL cannot
// be caught, so a writer also holds an exclusive flock on its temporary, and the next write of
// the same output sweeps the temporaries no one holds (sweep_stale_temp_files).
#pragma once
#include <string>

namespace llmc {

// Remembers `path` until forget_temp_file(slot); returns the slot (-1 when all are taken, in
// which case the temporary is still removed by its owner, just not by a signal handler).
int remember_temp_file(const std::string& path);
void forget_temp_file(int slot);

// Unlinks every remembered temporary. Async-signal-safe: only unlink() on fixed buffers.
void remove_temp_files_now();

// Installs handlers for SIGINT, SIGTERM and SIGHUP (those not ignored) that remove the
// temporaries, then die of the same signal (the exit status a shell expects). For programs, not
// libraries: call from main.
void remove_temp_files_on_signals();

// The temporary name pattern of `target`: "<target>.tmp.XXXXXX" (mkstemp's six characters).
std::string temp_file_template(const std::string& target);

// Removes "<target>.tmp.XXXXXX" files beside `target` that no live writer holds (their writer
// was killed) and that are over a second old (a writer locks its file right after creating it).
void sweep_stale_temp_files(const std::string& target);

}  // namespace llmc
