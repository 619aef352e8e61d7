#include "formats/wordpiece_tokenizer.h"

#include <limits>
#include <unordered_map>

#include "formats/added_token_matcher.h"
#include "formats/byte_alphabet.h"

namespace llmc {

struct WordPieceTokenizer::State {
  WordPieceVocabulary vocab;
  std::unordered_map<std::string, int32_t> id_of;
  AddedTokenMatcher added;        // views into vocab.tokens
  std::vector<uint8_t> special;   // per id: 1 when a special added token (decodes to "")

  void encode_span(std::string_view text, std::vector<int32_t>* out) const;
  void encode_word(std::u32string_view word, std::vector<int32_t>* out) const;
};

WordPieceTokenizer::WordPieceTokenizer(std::unique_ptr<const State> state) : state_(std::move(state)) {}
WordPieceTokenizer::~WordPieceTokenizer() = default;

Result<std::shared_ptr<const WordPieceTokenizer>> WordPieceTokenizer::create(WordPieceVocabulary vocab,
                                                                             const std::string& source) {
  auto state = std::make_unique<State>();
  state->vocab = std::move(vocab);
  const WordPieceVocabulary& v = state->vocab;
  const size_t n = v.tokens.size();
  if (n == 0) return invalid_input(source, ": WordPiece vocabulary has no tokens");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return invalid_input(source, ": WordPiece vocabulary has ", n, " tokens, more than int32 ids hold");
  state->id_of.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (v.tokens[i].empty()) return invalid_input(source, ": WordPiece token ", i, " is empty");
    if (!state->id_of.emplace(v.tokens[i], static_cast<int32_t>(i)).second)
      return invalid_input(source, ": WordPiece token '", v.tokens[i], "' appears twice");
  }
  const int last = static_cast<int>(n) - 1;
  if (v.unk_id < 0 || v.unk_id > last) return invalid_input(source, ": WordPiece unk id ", v.unk_id, " is out of range");
  if (v.bos_id < -1 || v.bos_id > last || v.eos_id < -1 || v.eos_id > last)
    return invalid_input(source, ": WordPiece bos/eos id ", v.bos_id, "/", v.eos_id, " is out of range");
  if (v.add_bos && v.bos_id < 0) return invalid_input(source, ": WordPiece adds bos but has no bos token");
  if (v.continuing_prefix.empty()) return invalid_input(source, ": WordPiece continuing_subword_prefix is empty");
  if (v.max_input_chars_per_word < 1)
    return invalid_input(source, ": WordPiece max_input_chars_per_word ", v.max_input_chars_per_word, " is not positive");
  state->special.assign(n, 0);
  for (const auto& a : v.added) {
    if (a.id < 0 || a.id > last) return invalid_input(source, ": WordPiece added token id ", a.id, " is out of range");
    state->added.add(v.tokens[static_cast<size_t>(a.id)], a.id);
    state->special[static_cast<size_t>(a.id)] = a.special ? 1 : 0;
  }
  return std::shared_ptr<const WordPieceTokenizer>(new WordPieceTokenizer(std::move(state)));
}

int WordPieceTokenizer::vocab_size() const { return static_cast<int>(state_->vocab.tokens.size()); }
int WordPieceTokenizer::bos_id() const { return state_->vocab.bos_id; }
int WordPieceTokenizer::eos_id() const { return state_->vocab.eos_id; }
bool WordPieceTokenizer::adds_bos() const { return state_->vocab.add_bos; }
bool WordPieceTokenizer::adds_eos() const { return state_->vocab.add_bos && state_->vocab.eos_id >= 0; }
const WordPieceVocabulary& WordPieceTokenizer::vocabulary() const { return state_->vocab; }

// Greedy longest-match-first from each position (WordPiece::tokenize in `tokenizers`): the
// longest prefix of the rest that is a token (with "##" after the first piece); none means the
// whole word is [UNK].
void WordPieceTokenizer::State::encode_word(std::u32string_view word, std::vector<int32_t>* out) const {
  if (word.size() > static_cast<size_t>(vocab.max_input_chars_per_word)) {
    out->push_back(vocab.unk_id);
    return;
  }
  std::string utf8;
  std::vector<size_t> ends;  // byte offset in utf8 after each character
  for (char32_t c : word) {
    append_utf8(c, &utf8);
    ends.push_back(utf8.size());
  }
  const size_t first = out->size();
  std::string key;
  size_t start = 0;  // in characters
  while (start < word.size()) {
    const size_t start_byte = start == 0 ? 0 : ends[start - 1];
    int32_t found = -1;
    size_t end = word.size();
    for (; end > start; --end) {
      key.assign(start == 0 ? "" : vocab.continuing_prefix);
      key.append(utf8, start_byte, ends[end - 1] - start_byte);
      if (auto it = id_of.find(key); it != id_of.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {
      out->resize(first);
      out->push_back(vocab.unk_id);
      return;
    }
    out->push_back(found);
    start = end;
  }
}

void WordPieceTokenizer::State::encode_span(std::string_view text, std::vector<int32_t>* out) const {
  const std::u32string normalized = bert_normalize(text, vocab.normalizer);
  for (std::u32string_view word : bert_pre_tokenize(normalized)) encode_word(word, out);
}

std::vector<int32_t> WordPieceTokenizer::encode(const std::string& text, bool bos, bool eos) const {
  const State& s = *state_;
  std::vector<int32_t> ids;
  if (bos && s.vocab.bos_id >= 0) ids.push_back(s.vocab.bos_id);
  // Added tokens are found in the raw text; the spans between them are tokenized on their own.
  size_t span = 0;
  for (size_t pos = 0; pos < text.size();) {
    const AddedTokenMatcher::Entry* added = s.added.match(text, pos);
    if (!added) {
      ++pos;
      continue;
    }
    s.encode_span(std::string_view(text).substr(span, pos - span), &ids);
    ids.push_back(added->id);
    pos += added->text.size();
    span = pos;
  }
  s.encode_span(std::string_view(text).substr(span), &ids);
  if (eos && s.vocab.eos_id >= 0) ids.push_back(s.vocab.eos_id);
  return ids;
}

std::string WordPieceTokenizer::decode_piece(int prev_token, int token) const {
  const State& s = *state_;
  const auto& tokens = s.vocab.tokens;
  if (token < 0 || static_cast<size_t>(token) >= tokens.size() || s.special[static_cast<size_t>(token)]) return "";
  const std::string& t = tokens[static_cast<size_t>(token)];
  // As the WordPiece decoder (cleanup per token, as `tokenizers` does): the first token as is,
  // later ones without their "##" or after a space. HF drops special tokens before decoding, so
  // "x [MASK] y" reads "x y": only the start of the sequence ([CLS] or nothing) makes a first.
  const bool first = prev_token < 0 || static_cast<size_t>(prev_token) >= tokens.size() ||
                     prev_token == s.vocab.bos_id;
  if (first) return t;
  const std::string& prefix = s.vocab.continuing_prefix;
  if (t.compare(0, prefix.size(), prefix) == 0) return t.substr(prefix.size());
  const bool clings = s.vocab.decoder_cleanup && (t == "." || t == "," || t == "!" || t == "?");
  return clings ? t : " " + t;
}

}  // namespace llmc
