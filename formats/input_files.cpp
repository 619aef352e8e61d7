#include "formats/input_files.h"

#include <atomic>
#include <map>
#include <mutex>
#include <utility>

namespace llmc {
namespace {

struct InputFiles {
  std::mutex mu;
  std::map<std::pair<dev_t, ino_t>, std::string> paths;  // the first name each was read under
};

std::atomic<bool> refused{false};

InputFiles& input_files() {
  static InputFiles files;
  return files;
}

}  // namespace

void note_input_file(dev_t device, ino_t inode, const std::string& path) {
  InputFiles& f = input_files();
  std::lock_guard<std::mutex> lock(f.mu);
  f.paths.emplace(std::make_pair(device, inode), path);
}

void refuse_outputs_over_inputs() { refused = true; }
bool outputs_over_inputs_refused() { return refused; }

std::string input_file_named(dev_t device, ino_t inode) {
  InputFiles& f = input_files();
  std::lock_guard<std::mutex> lock(f.mu);
  auto it = f.paths.find({device, inode});
  return it == f.paths.end() ? std::string() : it->second;
}

}  // namespace llmc
