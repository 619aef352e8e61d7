// A strict JSON (RFC 8259) parser for the files models arrive with: Hugging Face config.json,
// tokenizer.json, safetensors headers and shard indexes. Hostile input gets an error naming the
// source, line and column: nesting deeper than 256, duplicate object keys, invalid UTF-8 or
// escapes, lone surrogates, trailing bytes. Numbers keep their text so integers stay exact.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ir/status.h"

namespace llmc {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Each accessor returns the empty/zero value when the type differs; check type() first.
  bool as_bool() const { return bool_; }
  double as_double() const;                 // numbers
  std::optional<int64_t> as_int() const;    // numbers written as integers that fit int64
  const std::string& as_string() const { return text_; }  // strings (decoded UTF-8)
  const std::vector<JsonValue>& as_array() const { return items_; }
  // Members in file order.
  const std::vector<std::pair<std::string, JsonValue>>& as_object() const { return members_; }
  // The member named `key` of an object, nullptr when absent or not an object.
  const JsonValue* find(std::string_view key) const;

 private:
  friend class JsonParser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  std::string text_;  // string contents, or a number's literal text
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

// `source` names the file in errors: "<source>: line 3, column 14: expected ':' after key".
Result<JsonValue> parse_json(std::string_view text, const std::string& source);

// Writes `s` as a JSON string literal (quotes, escapes; invalid UTF-8 bytes as \u00XX).
std::string json_quote(std::string_view s);

}  // namespace llmc
