// WordPieceTokenizer::from_vocab_txt: BERT's original vocab.txt (one token per line, the line
// number its id) with the options transformers' BertTokenizer reads from tokenizer_config.json:
// do_lower_case (default true), strip_accents (null: as do_lower_case), tokenize_chinese_chars
// (default true), and the special tokens unk/cls/sep/pad/mask ([UNK] [CLS] [SEP] [PAD] [MASK]
// unless renamed), which are matched whole in the raw text as HF's converted tokenizer.json does.
// Sequences are wrapped [CLS] ... [SEP] when both exist.
#include <optional>
#include <utility>

#include "formats/json.h"
#include "formats/tokenizer_json.h"
#include "formats/wordpiece_tokenizer.h"

namespace llmc {
namespace {

// tokenizer_config.json's string member `key` (transformers may also write {"content": ...}).
std::string special_name(const JsonValue* config, const char* key, const char* fallback) {
  const JsonValue* v = config ? config->find(key) : nullptr;
  if (v && v->is_object()) v = v->find("content");
  return v && v->is_string() ? v->as_string() : fallback;
}

int find_token(const std::vector<std::string>& tokens, const std::string& text) {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] == text) return static_cast<int>(i);
  return -1;
}

}  // namespace

Result<std::shared_ptr<const WordPieceTokenizer>> WordPieceTokenizer::from_vocab_txt(const std::string& vocab_txt,
                                                                                     const std::string& config_json,
                                                                                     const std::string& source) {
  std::optional<JsonValue> config;
  if (!config_json.empty()) {
    LLMC_ASSIGN_OR_RETURN(JsonValue parsed, parse_json(config_json, source + " (tokenizer_config.json)"));
    config = std::move(parsed);
  }
  const JsonValue* c = config ? &*config : nullptr;
  WordPieceVocabulary v;
  // Lines end in \n (or \r\n); BERT's loader strips trailing whitespace only.
  for (size_t pos = 0; pos < vocab_txt.size();) {
    size_t end = vocab_txt.find('\n', pos);
    if (end == std::string::npos) end = vocab_txt.size();
    std::string line = vocab_txt.substr(pos, end - pos);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    v.tokens.push_back(std::move(line));
    pos = end + 1;
  }
  BertNormalizerOptions& n = v.normalizer;
  if (c) {
    n.lowercase = json_flag(*c, "do_lower_case", true);
    n.strip_accents = json_flag(*c, "strip_accents", n.lowercase);
    n.handle_chinese_chars = json_flag(*c, "tokenize_chinese_chars", true);
  }
  const std::string unk = special_name(c, "unk_token", "[UNK]");
  v.unk_id = find_token(v.tokens, unk);
  if (v.unk_id < 0) return invalid_input(source, ": vocab.txt has no unknown token '", unk, "'");
  const std::pair<const char*, const char*> specials[] = {
      {"pad_token", "[PAD]"}, {"unk_token", "[UNK]"}, {"cls_token", "[CLS]"}, {"sep_token", "[SEP]"}, {"mask_token", "[MASK]"}};
  for (auto [key, fallback] : specials) {
    const int id = find_token(v.tokens, special_name(c, key, fallback));
    if (id >= 0) v.added.push_back({id, true});
  }
  v.bos_id = find_token(v.tokens, special_name(c, "cls_token", "[CLS]"));
  v.eos_id = find_token(v.tokens, special_name(c, "sep_token", "[SEP]"));
  v.add_bos = v.bos_id >= 0 && v.eos_id >= 0;
  return create(std::move(v), source);
}

}  // namespace llmc
