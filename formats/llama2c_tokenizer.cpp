#include "formats/llama2c_tokenizer.h"

#include <algorithm>
#include <cstring>
#include <queue>

#include "formats/mapped_file.h"

namespace llmc {

namespace {

// run.c's merge loop starts from best_score = -1e10 and accepts only `score > best_score`,
// so merges scoring at or below this (and NaN scores) never happen.
constexpr float kMinMergeScore = -1e10f;

// Every byte 0..255 has a fallback id byte + 3, so a usable vocab has at least this many.
constexpr int kMinVocab = 256 + 3;

int32_t read_i32(const std::string& b, size_t off) {
  int32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

// "<0xXX>" → the byte; -1 for any other piece. run.c uses sscanf("<0x%02hhX>"), which accepts
// either hex case; we additionally require the closing '>' and exactly two digits.
int byte_piece_value(const std::string& p) {
  if (p.size() != 6 || p.compare(0, 3, "<0x") != 0 || p[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

Result<Llama2cTokenizer> Llama2cTokenizer::from_bytes(const std::string& bytes,
                                                      const std::string& source) {
  if (bytes.size() < 4)
    return invalid_input(source, ": truncated tokenizer: ", bytes.size(),
                         " bytes, need at least the 4-byte max_token_length header");
  Llama2cTokenizer t;
  t.max_token_length_ = read_i32(bytes, 0);
  if (t.max_token_length_ <= 0)
    return invalid_input(source, ": max_token_length is ", t.max_token_length_,
                         ", expected a positive number");
  // The vocab size is not stored in the file (run.c takes it from the checkpoint), so records
  // are read until the end of the file.
  size_t off = 4;
  while (off < bytes.size()) {
    const int id = static_cast<int>(t.pieces_.size());
    if (bytes.size() - off < 8)
      return invalid_input(source, ": truncated tokenizer: token ", id, " at byte offset ", off,
                           " needs 8 header bytes (score, length), only ", bytes.size() - off,
                           " remain");
    float score;
    std::memcpy(&score, bytes.data() + off, 4);
    const int32_t len = read_i32(bytes, off + 4);
    off += 8;
    if (len < 0)
      return invalid_input(source, ": token ", id, " has negative length ", len);
    if (static_cast<size_t>(len) > bytes.size() - off)
      return invalid_input(source, ": truncated tokenizer: token ", id, " has length ", len,
                           " but only ", bytes.size() - off, " bytes remain");
    t.pieces_.emplace_back(bytes.data() + off, static_cast<size_t>(len));
    t.scores_.push_back(score);
    off += static_cast<size_t>(len);
  }
  if (t.vocab_size() < kMinVocab)
    return invalid_input(source, ": tokenizer has ", t.vocab_size(), " tokens; a llama2.c vocab ",
                         "needs at least ", kMinVocab, " (<unk>, BOS, EOS and 256 byte tokens)",
                         " - is the file truncated?");
  for (int id = 0; id < t.vocab_size(); ++id) {
    // On duplicate pieces keep the lowest id (run.c's bsearch would pick an arbitrary one).
    t.index_.emplace(t.pieces_[id], id);
    t.max_piece_len_ = std::max(t.max_piece_len_, t.pieces_[id].size());
  }
  t.serialized_ = bytes;
  return t;
}

Result<Llama2cTokenizer> Llama2cTokenizer::from_file(const std::string& path) {
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  if (file->size() == 0) return invalid_input(path, ": file is empty, expected a llama2.c tokenizer");
  return from_bytes(std::string(reinterpret_cast<const char*>(file->data()), file->size()), path);
}

int Llama2cTokenizer::lookup(const std::string& s) const {
  auto it = index_.find(s);
  return it == index_.end() ? -1 : it->second;
}

std::vector<int32_t> Llama2cTokenizer::encode(const std::string& text, bool bos, bool eos) const {
  std::vector<int32_t> tok;
  tok.reserve(text.size() + 3);
  if (bos) tok.push_back(kBos);
  // sentencepiece's add_dummy_prefix: a leading " " token for non-empty text. (A vocab without
  // " " would make run.c emit id -1; we use the byte fallback instead.)
  if (!text.empty()) {
    int space = lookup(" ");
    tok.push_back(space >= 0 ? space : ' ' + 3);
  }
  // Chunks as run.c's str_buffer loop forms them: any byte starts a chunk, which then takes
  // following continuation bytes (10xxxxxx) up to 4 bytes in total. A chunk in the vocab is
  // one token; otherwise each byte becomes its fallback token. Unlike run.c (C strings), a NUL
  // byte does not end the text: it is encoded like any other byte.
  std::string chunk;
  for (size_t i = 0; i < text.size();) {
    size_t len = 1;
    while (len < 4 && i + len < text.size() &&
           (static_cast<unsigned char>(text[i + len]) & 0xC0) == 0x80)
      ++len;
    chunk.assign(text, i, len);
    const int id = lookup(chunk);
    if (id >= 0) {
      tok.push_back(id);
    } else {
      for (unsigned char c : chunk) tok.push_back(static_cast<int32_t>(c) + 3);
    }
    i += len;
  }

  // BPE merges. run.c rescans all adjacent pairs per merge (quadratic); here the symbols form a
  // doubly linked list and candidate merges sit in a max-heap keyed by (score, leftmost
  // position). A symbol's version changes whenever it merges or dies, so heap entries whose
  // versions no longer match are stale and skipped. Merging never reorders symbols, so a
  // symbol's original index gives its left-to-right position: ties go to the leftmost pair,
  // as run.c's strict `>` scan does.
  const int n = static_cast<int>(tok.size());
  std::vector<int> prev(n), next(n);
  std::vector<uint32_t> version(n, 0);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    float score;
    int left, right, id;
    uint32_t left_version, right_version;
  };
  auto lower = [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score < b.score;
    return a.left > b.left;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(lower)> heap(lower);
  std::string pair;
  auto consider = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const std::string& a = pieces_[tok[l]];
    const std::string& b = pieces_[tok[r]];
    if (a.size() + b.size() > max_piece_len_) return;  // cannot be in the vocab
    pair.assign(a).append(b);
    const int id = lookup(pair);
    if (id >= 0 && scores_[id] > kMinMergeScore)
      heap.push({scores_[id], l, r, id, version[l], version[r]});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i, i + 1);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    if (version[c.left] != c.left_version || version[c.right] != c.right_version) continue;
    tok[c.left] = c.id;
    ++version[c.left];
    ++version[c.right];
    next[c.left] = next[c.right];
    if (next[c.right] >= 0) prev[next[c.right]] = c.left;
    consider(prev[c.left], c.left);
    consider(c.left, next[c.left]);
  }

  std::vector<int32_t> out;
  out.reserve(n + 1);
  for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push_back(tok[i]);
  if (eos) out.push_back(kEos);
  return out;
}

std::string Llama2cTokenizer::decode_piece(int prev_token, int token) const {
  LLMC_CHECK(token >= 0 && token < vocab_size(), "token id ", token, " outside vocab of ",
             vocab_size());
  if (token == kBos || token == kEos) return "";  // control tokens carry no text
  const std::string& p = pieces_[token];
  // After BOS, sentencepiece's decoder strips the dummy-prefix space.
  if (prev_token == kBos && !p.empty() && p[0] == ' ') return p.substr(1);
  const int byte = byte_piece_value(p);
  if (byte >= 0) return std::string(1, static_cast<char>(byte));
  return p;
}

std::vector<int32_t> Llama2cTokenizer::encode_corpus(const std::string& text, int64_t max_tokens) const {
  std::vector<int32_t> out;
  size_t start = 0;
  while (start < text.size() && (max_tokens < 0 || static_cast<int64_t>(out.size()) < max_tokens)) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    size_t stop = end;
    if (stop > start && text[stop - 1] == '\r') --stop;  // CRLF files encode like LF files
    if (stop > start) {
      auto ids = encode(text.substr(start, stop - start), /*bos=*/true, /*eos=*/false);
      out.insert(out.end(), ids.begin(), ids.end());
    }
    start = end + 1;
  }
  return out;
}

}  // namespace llmc
