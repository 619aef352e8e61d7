#include "formats/tokenizer_json.h"

#include <limits>

namespace llmc {

std::string component_type(const JsonValue* v) {
  const JsonValue* t = v && v->is_object() ? v->find("type") : nullptr;
  return t && t->is_string() ? t->as_string() : "";
}

bool json_flag(const JsonValue& v, const char* key, bool fallback) {
  const JsonValue* f = v.find(key);
  return f && f->is_bool() ? f->as_bool() : fallback;
}

std::string describe_component(const JsonValue* v) {
  if (!v || v->is_null()) return "null";
  std::string type = component_type(v);
  if (type == "Sequence" && v->find("pretokenizers") && v->find("pretokenizers")->is_array()) {
    std::string s = "Sequence[";
    for (const JsonValue& item : v->find("pretokenizers")->as_array()) {
      if (s.back() != '[') s += ",";
      s += describe_component(&item);
    }
    return s + "]";
  }
  return type.empty() ? "(no type)" : type;
}

Status read_tokenizer_json_vocab(const JsonValue& vocab, const std::string& source, std::vector<std::string>* tokens) {
  if (!vocab.is_object()) return invalid_input(source, ": model.vocab is not an object");
  for (const auto& [token, id_value] : vocab.as_object()) {
    std::optional<int64_t> id = id_value.as_int();
    if (!id_value.is_number() || !id || *id < 0 || *id > std::numeric_limits<int32_t>::max() / 2)
      return invalid_input(source, ": model.vocab['", token, "'] is not a token id");
    // Ids are bounded by the entries seen so far (x2 for slack) so a huge id cannot allocate.
    if (static_cast<size_t>(*id) >= 2 * vocab.as_object().size() + 1024)
      return invalid_input(source, ": model.vocab['", token, "'] has id ", *id, ", far past the vocabulary size");
    if (static_cast<size_t>(*id) >= tokens->size()) tokens->resize(static_cast<size_t>(*id) + 1);
    std::string& slot = (*tokens)[static_cast<size_t>(*id)];
    if (!slot.empty()) return invalid_input(source, ": model.vocab gives id ", *id, " to '", slot, "' and '", token, "'");
    if (token.empty()) return invalid_input(source, ": model.vocab has an empty token (id ", *id, ")");
    slot = token;
  }
  return Status::ok();
}

Result<size_t> place_added_token(const JsonValue& t, size_t count, const std::string& source,
                                 std::vector<std::string>* tokens) {
  const JsonValue* id_value = t.find("id");
  const JsonValue* content = t.find("content");
  std::optional<int64_t> id = id_value ? id_value->as_int() : std::nullopt;
  if (!id || *id < 0 || !content || !content->is_string() || content->as_string().empty())
    return invalid_input(source, ": added_tokens has an entry without an id and content");
  const std::string& text = content->as_string();
  if (static_cast<size_t>(*id) >= tokens->size() + count)
    return invalid_input(source, ": added token '", text, "' has id ", *id, " past the vocabulary");
  for (const char* key : {"lstrip", "rstrip", "single_word"}) {
    if (json_flag(t, key, false))
      return unsupported(source, ": added token '", text, "' sets ", key, ", which is not supported");
  }
  const size_t i = static_cast<size_t>(*id);
  if (i >= tokens->size()) tokens->resize(i + 1);
  std::string& slot = (*tokens)[i];
  if (!slot.empty() && slot != text)
    return invalid_input(source, ": added token '", text, "' has id ", i, ", which model.vocab gives to '", slot, "'");
  slot = text;
  return i;
}

}  // namespace llmc
