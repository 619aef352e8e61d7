// WordPieceTokenizer::from_tokenizer_json: a Hugging Face tokenizer.json with a WordPiece model,
// mapped onto WordPieceVocabulary. Only what the encoder reproduces exactly is accepted: the
// BertNormalizer (or none), the BertPreTokenizer, added tokens matched in the raw text; any other
// component or option is an error that names it. Truncation and padding are ignored: encode()
// gives the whole sequence.
#include "formats/json.h"
#include "formats/tokenizer_json.h"
#include "formats/wordpiece_tokenizer.h"

namespace llmc {
namespace {

Status read_normalizer(const JsonValue* n, const std::string& source, BertNormalizerOptions* o) {
  if (!n || n->is_null()) {
    o->enabled = false;
    return Status::ok();
  }
  if (component_type(n) != "BertNormalizer")
    return unsupported(source, ": tokenizer.json normalizer ", describe_component(n),
                       " is not supported with WordPiece (BertNormalizer is)");
  o->clean_text = json_flag(*n, "clean_text", true);
  o->handle_chinese_chars = json_flag(*n, "handle_chinese_chars", true);
  o->lowercase = json_flag(*n, "lowercase", true);
  // null: strip accents exactly when lowercasing (BERT's uncased models).
  o->strip_accents = json_flag(*n, "strip_accents", o->lowercase);
  return Status::ok();
}

int token_id(const std::vector<std::string>& tokens, const std::string& text) {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] == text) return static_cast<int>(i);
  return -1;
}

// Non-special added tokens that HF matches in the normalized text (normalized: true) would need
// that second pass; they are refused rather than matched differently.
Status read_added_tokens(const JsonValue* added, const std::string& source, WordPieceVocabulary* v) {
  if (!added || added->is_null()) return Status::ok();
  if (!added->is_array()) return invalid_input(source, ": added_tokens is not an array");
  for (const JsonValue& t : added->as_array()) {
    LLMC_ASSIGN_OR_RETURN(size_t i, place_added_token(t, added->as_array().size(), source, &v->tokens));
    const bool special = json_flag(t, "special", false);
    if (json_flag(t, "normalized", !special))
      return unsupported(source, ": added token '", v->tokens[i], "' is matched after normalization, which is not supported");
    v->added.push_back({static_cast<int32_t>(i), special});
  }
  return Status::ok();
}

// [CLS] $A [SEP]: TemplateProcessing's single template, or the older BertProcessing's cls/sep.
void read_post_processor(const JsonValue* post, WordPieceVocabulary* v) {
  const std::string type = component_type(post);
  std::string cls, sep;
  if (type == "TemplateProcessing") {
    const JsonValue* single = post->find("single");
    if (!single || !single->is_array() || single->as_array().empty()) return;
    auto special_name = [](const JsonValue& piece) -> std::string {
      const JsonValue* s = piece.find("SpecialToken");
      const JsonValue* name = s ? s->find("id") : nullptr;
      return name && name->is_string() ? name->as_string() : "";
    };
    const auto& items = single->as_array();
    cls = special_name(items.front());
    if (items.size() > 1) sep = special_name(items.back());
  } else if (type == "BertProcessing") {
    for (auto [key, out] : {std::pair{"cls", &cls}, std::pair{"sep", &sep}}) {
      const JsonValue* pair = post->find(key);
      if (pair && pair->is_array() && !pair->as_array().empty() && pair->as_array()[0].is_string())
        *out = pair->as_array()[0].as_string();
    }
  }
  if (!cls.empty()) v->bos_id = token_id(v->tokens, cls), v->add_bos = v->bos_id >= 0;
  if (!sep.empty()) v->eos_id = token_id(v->tokens, sep);
}

}  // namespace

Result<std::shared_ptr<const WordPieceTokenizer>> WordPieceTokenizer::from_tokenizer_json(const std::string& json,
                                                                                          const std::string& source) {
  LLMC_ASSIGN_OR_RETURN(JsonValue root, parse_json(json, source));
  const JsonValue* model = root.find("model");
  if (!model || component_type(model) != "WordPiece")
    return unsupported(source, ": tokenizer.json model type '", component_type(model), "' is not WordPiece");
  WordPieceVocabulary v;
  LLMC_RETURN_IF_ERROR(read_normalizer(root.find("normalizer"), source, &v.normalizer));
  const JsonValue* pre = root.find("pre_tokenizer");
  if (component_type(pre) != "BertPreTokenizer")
    return unsupported(source, ": tokenizer.json pre_tokenizer ", describe_component(pre),
                       " is not supported with WordPiece (BertPreTokenizer is)");
  const JsonValue* decoder = root.find("decoder");
  if (decoder && !decoder->is_null()) {
    if (component_type(decoder) != "WordPiece")
      return unsupported(source, ": tokenizer.json decoder ", describe_component(decoder), " is not WordPiece");
    v.decoder_cleanup = json_flag(*decoder, "cleanup", true);
  }
  const JsonValue* vocab = model->find("vocab");
  if (!vocab) return invalid_input(source, ": tokenizer.json model has no vocab");
  LLMC_RETURN_IF_ERROR(read_tokenizer_json_vocab(*vocab, source, &v.tokens));
  LLMC_RETURN_IF_ERROR(read_added_tokens(root.find("added_tokens"), source, &v));
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.tokens[i].empty()) return invalid_input(source, ": tokenizer.json has no token with id ", i);
  }
  const JsonValue* unk = model->find("unk_token");
  const std::string unk_text = unk && unk->is_string() ? unk->as_string() : "[UNK]";
  v.unk_id = token_id(v.tokens, unk_text);
  if (v.unk_id < 0) return invalid_input(source, ": WordPiece unk_token '", unk_text, "' is not in the vocabulary");
  if (const JsonValue* p = model->find("continuing_subword_prefix"); p && p->is_string())
    v.continuing_prefix = p->as_string();
  if (const JsonValue* m = model->find("max_input_chars_per_word"); m && !m->is_null()) {
    std::optional<int64_t> chars = m->as_int();
    if (!chars || *chars < 1 || *chars > (1 << 20))
      return invalid_input(source, ": WordPiece max_input_chars_per_word is not a count from 1 to 2^20");
    v.max_input_chars_per_word = static_cast<int>(*chars);
  }
  read_post_processor(root.find("post_processor"), &v);
  return create(std::move(v), source);
}

}  // namespace llmc
