#include "tests/support/tokenizer_parity.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
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

std::vector<ParityText> write_parity_texts(const std::string& dir, const std::vector<std::string>& edge_cases,
                                           const std::string& corpora_dir,
                                           std::string (*file_text)(const std::string&)) {
  std::vector<ParityText> out;
  auto add = [&](std::string name, std::string text, bool from_corpus) {
    std::string path = dir + "/input" + std::to_string(out.size()) + ".txt";
    std::ofstream(path, std::ios::binary) << (file_text ? file_text(text) : text);
    out.push_back({std::move(name), std::move(text), std::move(path), from_corpus});
  };
  for (const std::string& text : edge_cases) {
    std::string name = "edge case '";  // appended piecewise: GCC 12 warns falsely on a + chain
    name.append(text, 0, 40).append("'");
    add(std::move(name), text, false);
  }
  for (auto& [name, text] : corpus_slices(corpora_dir)) add(name, text, true);
  return out;
}

}  // namespace llmc::testing
