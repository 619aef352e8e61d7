// BpeTokenizer::from_tokenizer_json: a Hugging Face tokenizer.json with a byte-level BPE model,
// mapped onto BpeVocabulary. Only what the encoder reproduces exactly is accepted; any other
// normalizer, pre-tokenizer or model option is an error that names it.
#include <algorithm>
#include <limits>

#include "formats/bpe_tokenizer.h"
#include "formats/byte_alphabet.h"
#include "formats/json.h"
#include "formats/tokenizer_json.h"

namespace llmc {
namespace {

constexpr const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

bool is_byte_level(const JsonValue& v, bool use_regex) {
  return component_type(&v) == "ByteLevel" && json_flag(v, "use_regex", true) == use_regex &&
         !json_flag(v, "add_prefix_space", false);
}

// The GGUF pre-tokenizer name equal to the tokenizer.json pre_tokenizer, or "" when none is.
std::string pre_name(const JsonValue* pre, bool ignore_merges) {
  if (!pre || !pre->is_object()) return "";
  if (is_byte_level(*pre, true)) return ignore_merges ? "" : "gpt2";
  const JsonValue* list = pre->find("pretokenizers");
  if (component_type(pre) != "Sequence" || !list || !list->is_array() || list->as_array().size() != 2) return "";
  const JsonValue& first = list->as_array()[0];
  const JsonValue& second = list->as_array()[1];
  if (component_type(&first) == "Digits" && json_flag(first, "individual_digits", false) && is_byte_level(second, true))
    return ignore_merges ? "" : "smollm";
  if (component_type(&first) != "Split" || !is_byte_level(second, false) || json_flag(first, "invert", false)) return "";
  const JsonValue* behavior = first.find("behavior");
  const JsonValue* pattern = first.find("pattern");
  const JsonValue* regex = pattern && pattern->is_object() ? pattern->find("Regex") : nullptr;
  if (!behavior || behavior->as_string() != "Isolated" || !regex || !regex->is_string()) return "";
  if (regex->as_string() == kLlama3Regex) return ignore_merges ? "llama-bpe" : "";
  if (regex->as_string() == kQwen2Regex) return ignore_merges ? "" : "qwen2";
  return "";
}

Status check_model_options(const JsonValue& model, const std::string& source) {
  const JsonValue* dropout = model.find("dropout");
  if (dropout && !dropout->is_null() && dropout->as_double() != 0.0)
    return unsupported(source, ": BPE dropout is not supported (encoding must be deterministic)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const JsonValue* v = model.find(key);
    if (v && v->is_string() && !v->as_string().empty())
      return unsupported(source, ": BPE ", key, " '", v->as_string(), "' is not supported");
  }
  if (json_flag(model, "byte_fallback", false))
    return unsupported(source, ": BPE byte_fallback is not supported (byte-level BPE needs none)");
  return Status::ok();
}

Status read_merges(const JsonValue& merges, const std::string& source, std::vector<std::string>* out) {
  if (!merges.is_array()) return invalid_input(source, ": model.merges is not an array");
  out->reserve(merges.as_array().size());
  for (const JsonValue& m : merges.as_array()) {
    if (m.is_string()) {
      out->push_back(m.as_string());  // "left right": create() checks the form
      continue;
    }
    const auto& pair = m.as_array();
    if (!m.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string())
      return invalid_input(source, ": model.merges[", out->size(), "] is neither \"a b\" nor [a, b]");
    for (const JsonValue& half : pair) {
      if (half.as_string().find(' ') != std::string::npos)
        return unsupported(source, ": model.merges[", out->size(), "] has a token with a space ('",
                           half.as_string(), "'), which merges written \"a b\" cannot hold");
    }
    out->push_back(pair[0].as_string() + " " + pair[1].as_string());
  }
  return Status::ok();
}

// Special added tokens become control tokens (type 3), the others user-defined (type 4).
Status read_added_tokens(const JsonValue* added, const std::string& source, BpeVocabulary* v) {
  if (!added || added->is_null()) return Status::ok();
  if (!added->is_array()) return invalid_input(source, ": added_tokens is not an array");
  for (const JsonValue& t : added->as_array()) {
    LLMC_ASSIGN_OR_RETURN(size_t i, place_added_token(t, added->as_array().size(), source, &v->tokens));
    v->token_types.resize(v->tokens.size(), 1);
    v->token_types[i] = json_flag(t, "special", false) ? 3 : 4;
  }
  return Status::ok();
}

// BOS/EOS as a TemplateProcessing post-processor wraps a single sequence ([BOS] $A [EOS]).
void read_template(const JsonValue* post, BpeVocabulary* v) {
  const JsonValue* single = post && component_type(post) == "TemplateProcessing" ? post->find("single") : nullptr;
  if (!single || !single->is_array() || single->as_array().empty()) return;
  auto special_id = [&](const JsonValue& piece) -> int {
    const JsonValue* s = piece.find("SpecialToken");
    const JsonValue* name = s ? s->find("id") : nullptr;
    if (!name || !name->is_string()) return -1;
    for (size_t i = 0; i < v->tokens.size(); ++i) {
      if (v->tokens[i] == name->as_string()) return static_cast<int>(i);
    }
    return -1;
  };
  const auto& items = single->as_array();
  if (int bos = special_id(items.front()); bos >= 0) v->bos_id = bos, v->add_bos = true;
  if (int eos = items.size() > 1 ? special_id(items.back()) : -1; eos >= 0) v->eos_id = eos;
}

}  // namespace

Result<std::shared_ptr<const BpeTokenizer>> BpeTokenizer::from_tokenizer_json(const std::string& json,
                                                                              const std::string& source) {
  LLMC_ASSIGN_OR_RETURN(JsonValue root, parse_json(json, source));
  const JsonValue* model = root.find("model");
  if (!model || component_type(model) != "BPE")
    return unsupported(source, ": tokenizer.json model type '", component_type(model), "' is not BPE");
  LLMC_RETURN_IF_ERROR(check_model_options(*model, source));
  const JsonValue* normalizer = root.find("normalizer");
  if (normalizer && !normalizer->is_null())
    return unsupported(source, ": tokenizer.json normalizer ", describe_component(normalizer), " is not supported");
  const JsonValue* decoder = root.find("decoder");
  if (decoder && !decoder->is_null() && component_type(decoder) != "ByteLevel")
    return unsupported(source, ": tokenizer.json decoder ", describe_component(decoder), " is not ByteLevel");

  const bool ignore_merges = json_flag(*model, "ignore_merges", false);
  BpeVocabulary v;
  v.pre = pre_name(root.find("pre_tokenizer"), ignore_merges);
  if (v.pre.empty()) {
    return unsupported(source, ": tokenizer.json pre_tokenizer ", describe_component(root.find("pre_tokenizer")),
                       ignore_merges ? " (with ignore_merges)" : "",
                       " is not supported (ByteLevel; Sequence[Digits, ByteLevel]; Sequence[Split(Llama 3 "
                       "or Qwen2 regex), ByteLevel])");
  }
  const JsonValue* vocab = model->find("vocab");
  const JsonValue* merges = model->find("merges");
  if (!vocab || !merges) return invalid_input(source, ": tokenizer.json model has no vocab or merges");
  LLMC_RETURN_IF_ERROR(read_tokenizer_json_vocab(*vocab, source, &v.tokens));
  LLMC_RETURN_IF_ERROR(read_merges(*merges, source, &v.merges));
  LLMC_RETURN_IF_ERROR(read_added_tokens(root.find("added_tokens"), source, &v));
  if (!v.token_types.empty()) v.token_types.resize(v.tokens.size(), 1);
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.tokens[i].empty()) return invalid_input(source, ": tokenizer.json has no token with id ", i);
  }
  // With an unk_token HF turns a byte missing from the vocabulary into it; we drop such bytes,
  // so that combination is refused rather than encoded differently.
  const JsonValue* unk = model->find("unk_token");
  if (unk && unk->is_string()) {
    for (int b = 0; b < 256; ++b) {
      std::string symbol = bytes_to_alphabet(std::string(1, static_cast<char>(b)));
      if (std::find(v.tokens.begin(), v.tokens.end(), symbol) == v.tokens.end())
        return unsupported(source, ": BPE unk_token with byte symbol '", symbol, "' missing is not supported");
    }
  }
  read_template(root.find("post_processor"), &v);
  return create(std::move(v), source);
}

}  // namespace llmc
