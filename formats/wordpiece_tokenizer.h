// WordPiece, as BERT and sentence-transformers tokenize: added tokens ([CLS], [SEP], ...) split
// out of the text first, each other span normalized and split into words (formats/bert_normalizer.h),
// then each word greedily into the longest vocabulary entries from its start, later pieces spelled
// with the continuing-subword prefix ("##"); a word with a part no entry matches, or longer than
// max_input_chars_per_word characters, is one [UNK]. Ids equal Hugging Face `tokenizers`' for
// the same tokenizer.json (without its truncation and padding, which are the caller's business).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "formats/bert_normalizer.h"
#include "formats/tokenizer.h"
#include "ir/status.h"

namespace llmc {

struct WordPieceVocabulary {
  std::vector<std::string> tokens;  // index = id
  int unk_id = -1;
  std::string continuing_prefix = "##";
  int max_input_chars_per_word = 100;
  BertNormalizerOptions normalizer;
  // Added tokens, matched whole in the raw text; special ones decode to "".
  struct Added {
    int32_t id;
    bool special;
  };
  std::vector<Added> added;
  int bos_id = -1;  // [CLS] when the post-processor wraps sequences as [CLS] $A [SEP]
  int eos_id = -1;  // [SEP]
  bool add_bos = false;  // wrap: [CLS] first, and [SEP] last when there is one (adds_eos)
  bool decoder_cleanup = true;  // the WordPiece decoder's cleanup: no space before . , ! ?
};

class WordPieceTokenizer final : public Tokenizer {
 public:
  // Checks: tokens non-empty and unique, unk/bos/eos/added ids in range, limits sensible.
  static Result<std::shared_ptr<const WordPieceTokenizer>> create(WordPieceVocabulary vocab,
                                                                  const std::string& source);
  // A Hugging Face tokenizer.json whose model is WordPiece (wordpiece_tokenizer_json.cpp).
  static Result<std::shared_ptr<const WordPieceTokenizer>> from_tokenizer_json(const std::string& json,
                                                                               const std::string& source);
  // BERT's vocab.txt, with tokenizer_config.json's text ("" when there is none) for the casing
  // and special tokens (wordpiece_vocab_txt.cpp).
  static Result<std::shared_ptr<const WordPieceTokenizer>> from_vocab_txt(const std::string& vocab_txt,
                                                                          const std::string& config_json,
                                                                          const std::string& source);
  // The inverse of serialize() (wordpiece_tokenizer_io.cpp).
  static Result<std::shared_ptr<const WordPieceTokenizer>> deserialize(const std::string& bytes,
                                                                       const std::string& source);

  ~WordPieceTokenizer() override;
  std::string kind() const override { return "wordpiece"; }
  int vocab_size() const override;
  int bos_id() const override;
  int eos_id() const override;
  bool adds_bos() const override;
  bool adds_eos() const override;
  std::vector<int32_t> encode(const std::string& text, bool bos, bool eos) const override;
  // As Hugging Face's WordPiece decoder with special tokens skipped: "##ing" gives "ing", other
  // tokens " " + token (no space before . , ! ? when it cleans up), the first token (no
  // predecessor, or after BOS) itself, special tokens "".
  std::string decode_piece(int prev_token, int token) const override;
  std::string serialize() const override;
  const WordPieceVocabulary& vocabulary() const;

 private:
  struct State;  // lookup tables built by create(), in wordpiece_tokenizer.cpp
  explicit WordPieceTokenizer(std::unique_ptr<const State> state);
  std::unique_ptr<const State> state_;
};

}  // namespace llmc
