// What every tokenizer a model can carry offers: the llama2.c one (formats/llama2c_tokenizer.h),
// byte-level BPE (GPT-2, SmolLM2, Qwen: formats/bpe_tokenizer.h), WordPiece (BERT). A model
// stores its tokenizer in metadata under the key its kind() names (tokenizer_metadata_key) and
// gets it back with formats/model_loader.h's model_tokenizer.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace llmc {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // "llama2c", "bpe", "wordpiece": part of the metadata key, so the reader knows the parser.
  virtual std::string kind() const = 0;
  virtual int vocab_size() const = 0;
  // Ids of the beginning/end-of-sequence tokens, -1 when the vocabulary has none.
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  // Whether the model expects BOS before a prompt (llama2.c yes, SmolLM2 no, per GGUF/HF config).
  virtual bool adds_bos() const = 0;
  // Whether a whole input ends with EOS (BERT's [CLS] text [SEP]); decoders' prompts do not.
  virtual bool adds_eos() const { return false; }
  // `text` as bytes (invalid UTF-8 is encoded, never rejected); bos/eos add those tokens when the
  // vocabulary has them.
  virtual std::vector<int32_t> encode(const std::string& text, bool bos, bool eos) const = 0;
  // The text `token` adds after `prev_token` (-1: none), for streaming generation. Control
  // tokens (BOS, EOS, chat markers) give "". `token` must be a valid id.
  virtual std::string decode_piece(int prev_token, int token) const = 0;
  // decode_piece over `ids`, each after its predecessor.
  std::string decode(const std::vector<int32_t>& ids) const;
  // A text corpus as the model was trained to read it (evaluation and calibration windows): the
  // llama2.c tokenizer encodes each non-empty line with BOS (its training data's layout); the
  // others encode the whole text, with BOS first when adds_bos(). Stops once `max_tokens` exist
  // (-1: all), so a window or two of a large file costs no more than they need: the text is
  // encoded in pieces cut where a line starts with a non-space, where no pre-tokenizer joins
  // across (a run of whitespace stays in one piece).
  virtual std::vector<int32_t> encode_corpus(const std::string& text, int64_t max_tokens = -1) const;
  // Bytes that the kind's parser turns back into an equal tokenizer (stored in model metadata).
  virtual std::string serialize() const = 0;
};

// "llmcompress.tokenizer." + kind.
std::string tokenizer_metadata_key(const std::string& kind);

}  // namespace llmc
