#include "formats/bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <limits>
#include <string_view>

#include "formats/added_token_matcher.h"
#include "formats/bpe_merges.h"
#include "formats/bpe_pretokenizer.h"
#include "formats/byte_alphabet.h"

namespace llmc {
namespace {

constexpr int32_t kControl = 3;      // GGUF token types that are matched whole in the text
constexpr int32_t kUserDefined = 4;

}  // namespace

struct BpeTokenizer::State {
  BpeVocabulary vocab;
  BpePreTokenizer pre = BpePreTokenizer::kGpt2;
  std::array<int32_t, 256> byte_token{};  // the token of each single byte
  BpeMerges merges;
  AddedTokenMatcher specials;  // views into vocab.tokens
  std::vector<std::string> pieces;  // decode_piece's text per id
  // Llama 3 (ignore_merges in its tokenizer.json, and llama.cpp's "llama-bpe"): a piece that is
  // itself a token becomes that token without merging. Keys are the tokens' bytes.
  bool ignore_merges = false;
  std::unordered_map<std::string, int32_t> token_of_bytes;

  void encode_span(std::string_view text, std::vector<int32_t>* out) const;
};

BpeTokenizer::BpeTokenizer(std::unique_ptr<const State> state) : state_(std::move(state)) {}
BpeTokenizer::~BpeTokenizer() = default;

Result<std::shared_ptr<const BpeTokenizer>> BpeTokenizer::create(BpeVocabulary vocab,
                                                                 const std::string& source) {
  auto state = std::make_unique<State>();
  state->vocab = std::move(vocab);
  const BpeVocabulary& v = state->vocab;
  std::optional<BpePreTokenizer> pre = bpe_pre_tokenizer_named(v.pre);
  if (!pre) {
    return unsupported(source, ": BPE pre-tokenizer '", v.pre,
                       "' is not supported (gpt2, smollm, qwen2, llama-bpe)");
  }
  state->pre = *pre;
  state->ignore_merges = v.pre == "llama-bpe";
  const size_t n = v.tokens.size();
  if (n == 0) return invalid_input(source, ": BPE vocabulary has no tokens");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return invalid_input(source, ": BPE vocabulary has ", n, " tokens, more than int32 ids hold");
  if (!v.token_types.empty() && v.token_types.size() != n) {
    return invalid_input(source, ": BPE vocabulary has ", n, " tokens but ", v.token_types.size(),
                         " token types");
  }
  for (auto [name, id] : {std::pair{"bos", v.bos_id}, std::pair{"eos", v.eos_id}}) {
    if (id < -1 || id >= static_cast<int64_t>(n))
      return invalid_input(source, ": ", name, " id ", id, " is outside the vocabulary of ", n);
  }

  // string_views into state->vocab.tokens, which stays put from here on.
  std::unordered_map<std::string_view, int32_t> id_of;
  id_of.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto [it, inserted] = id_of.emplace(v.tokens[i], static_cast<int32_t>(i));
    if (!inserted) {
      return invalid_input(source, ": BPE token '", v.tokens[i], "' appears twice (ids ", it->second,
                           " and ", i, ")");
    }
  }
  // A byte whose symbol is not a token is dropped from the text, as HF's BPE does when the model
  // has no unk_token: SmolLM2 lacks 21 (0xC0, 0xC1, 0xF5-0xFF, which UTF-8 never holds, and six
  // control characters). Its neighbours then meet and may merge.
  for (int b = 0; b < 256; ++b) {
    std::string symbol;
    append_utf8(byte_to_alphabet(static_cast<unsigned char>(b)), &symbol);
    auto it = id_of.find(symbol);
    state->byte_token[b] = it == id_of.end() ? -1 : it->second;
  }
  for (size_t rank = 0; rank < v.merges.size(); ++rank) {
    const std::string& merge = v.merges[rank];
    size_t space = merge.find(' ');
    if (space == std::string::npos || merge.find(' ', space + 1) != std::string::npos) {
      return invalid_input(source, ": BPE merge ", rank, " '", merge,
                           "' is not two tokens separated by one space");
    }
    std::string_view left(merge.data(), space), right(merge.data() + space + 1, merge.size() - space - 1);
    std::string joined = std::string(left) + std::string(right);
    auto l = id_of.find(left), r = id_of.find(right), m = id_of.find(joined);
    if (l == id_of.end() || r == id_of.end() || m == id_of.end()) {
      std::string_view missing = l == id_of.end() ? left : r == id_of.end() ? right : joined;
      return invalid_input(source, ": BPE merge ", rank, " '", merge, "' names '", missing,
                           "', which is not in the vocabulary");
    }
    state->merges.add(l->second, r->second, m->second);
  }

  state->pieces.resize(n);
  for (size_t i = 0; i < n; ++i) {
    int32_t type = v.token_types.empty() ? 1 : v.token_types[i];
    const std::string& token = v.tokens[i];
    if (type == kControl || type == kUserDefined) state->specials.add(token, static_cast<int32_t>(i));
    if (type == kControl) continue;  // decodes to ""
    if (type == kUserDefined) {
      state->pieces[i] = token;
      continue;
    }
    // HF's ByteLevel decoder keeps a token's own text when it is not all byte-alphabet.
    std::optional<std::string> bytes = alphabet_to_bytes(token);
    state->pieces[i] = bytes ? *bytes : token;
    if (state->ignore_merges && bytes) state->token_of_bytes.emplace(*bytes, static_cast<int32_t>(i));
  }
  return std::shared_ptr<const BpeTokenizer>(new BpeTokenizer(std::move(state)));
}

void BpeTokenizer::State::encode_span(std::string_view text, std::vector<int32_t>* out) const {
  thread_local std::vector<BytePiece> split;
  thread_local std::vector<int32_t> symbols;
  split.clear();
  pre_tokenize(pre, text, &split);
  for (const BytePiece& p : split) {
    std::string_view piece = text.substr(p.begin, p.end - p.begin);
    if (ignore_merges) {
      auto it = token_of_bytes.find(std::string(piece));
      if (it != token_of_bytes.end()) {
        out->push_back(it->second);
        continue;
      }
    }
    symbols.clear();
    for (unsigned char b : piece) {
      if (byte_token[b] >= 0) symbols.push_back(byte_token[b]);
    }
    merges.apply(&symbols);
    out->insert(out->end(), symbols.begin(), symbols.end());
  }
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& text, bool bos, bool eos) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (bos && state_->vocab.bos_id >= 0) ids.push_back(state_->vocab.bos_id);
  std::string_view all(text);
  size_t span_start = 0;
  for (size_t pos = 0; pos < all.size();) {
    const AddedTokenMatcher::Entry* special = state_->specials.match(all, pos);
    if (!special) {
      ++pos;
      continue;
    }
    state_->encode_span(all.substr(span_start, pos - span_start), &ids);
    ids.push_back(special->id);
    pos += special->text.size();
    span_start = pos;
  }
  state_->encode_span(all.substr(span_start), &ids);
  if (eos && state_->vocab.eos_id >= 0) ids.push_back(state_->vocab.eos_id);
  return ids;
}

std::string BpeTokenizer::decode_piece(int prev_token, int token) const {
  if (token < 0 || static_cast<size_t>(token) >= state_->pieces.size()) return "";
  return state_->pieces[static_cast<size_t>(token)];
}

int BpeTokenizer::vocab_size() const { return static_cast<int>(state_->vocab.tokens.size()); }
int BpeTokenizer::bos_id() const { return state_->vocab.bos_id; }
int BpeTokenizer::eos_id() const { return state_->vocab.eos_id; }
bool BpeTokenizer::adds_bos() const { return state_->vocab.add_bos; }
const BpeVocabulary& BpeTokenizer::vocabulary() const { return state_->vocab; }

}  // namespace llmc
