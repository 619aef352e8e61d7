// A one-line progress display for long steps (calibration, statistics, evaluation): label,
// count, percentage and ETA, redrawn in place on stderr. Silent when stdout is not a terminal
// (CI logs, pipes) or when --quiet / --json asked for quiet, so machine-read output never
// carries it.
#pragma once
#include <chrono>
#include <string>

namespace llmc::cli {

class Progress {
 public:
  // `enabled` false: every call is a no-op. True: still silent unless stdout and stderr are TTYs.
  Progress(std::string label, bool enabled);
  ~Progress() { finish(); }
  void update(size_t done, size_t total);
  void finish();  // clears the line

 private:
  std::string label_;
  bool active_ = false, drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace llmc::cli
