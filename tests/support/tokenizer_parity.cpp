#include "tests/support/tokenizer_parity.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "tests/support/test_data.h"

namespace llmc::testing {

std::string utf8_prefix(const std::string& text, size_t max_bytes) {
  size_t cut = std::min(text.size(), max_bytes);
  while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

std::vector<int32_t> ids_of(const std::string& text) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

std::vector<std::pair<std::string, std::string>> corpus_slices(const std::string& corpora_dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(corpora_dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : files) out.emplace_back("corpus " + f.filename().string(), utf8_prefix(read_text(f), 100000));
  return out;
}

}  // namespace llmc::testing
