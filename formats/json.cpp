// Strict RFC 8259 parsing in one recursive-descent pass. The recursion depth is capped at
// kMaxDepth so a hostile "[[[[..." fails with an error instead of overflowing the stack, and
// the line/column of an error is computed only when one happens (a rescan up to its offset),
// so valid multi-megabyte tokenizer.json files pay nothing for it.
#include "formats/json.h"

#include <charconv>
#include <clocale>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <unordered_set>

namespace llmc {

namespace {

constexpr int kMaxDepth = 256;
// Objects up to this many members are checked for duplicate keys by a linear scan; larger
// ones (a tokenizer vocab has ~30k) through a hash set, keeping the whole check linear.
constexpr size_t kLinearKeyCheckLimit = 8;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Length of the well-formed UTF-8 sequence starting at s[i] (Unicode table 3-7: no overlong
// forms, no UTF-16 surrogates, nothing above U+10FFFF), or 0 when it is not one.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return len;
}

// How an unexpected byte appears in a message: 'x' when printable, else its hex value.
std::string describe_byte(char c) {
  const auto u = static_cast<uint8_t>(c);
  if (u >= 0x21 && u < 0x7F) return str_cat("'", c, "'");
  static const char* kHex = "0123456789abcdef";
  return str_cat("byte 0x", kHex[u >> 4], kHex[u & 15]);
}

}  // namespace

class JsonParser {
 public:
  JsonParser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  Result<JsonValue> parse_document() {
    JsonValue root;
    skip_whitespace();
    if (!parse_value(root, 0)) return error_;
    skip_whitespace();
    if (pos_ != text_.size()) {
      fail(pos_, str_cat("trailing bytes after the JSON value (", describe_byte(text_[pos_]), ")"));
      return error_;
    }
    return root;
  }

 private:
  // Records the first error with its line and column; returns false so callers can
  // `return fail(...)`.
  bool fail(size_t at, const std::string& what) {
    size_t line = 1, line_start = 0;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    error_ = invalid_input(source_, ": line ", line, ", column ", at - line_start + 1, ": ", what);
    return false;
  }
  bool fail_end(const char* while_reading) {
    return fail(text_.size(), str_cat("unexpected end of input ", while_reading));
  }

  void skip_whitespace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
      ++pos_;
    }
  }

  bool parse_value(JsonValue& out, int depth) {
    if (pos_ >= text_.size()) return fail_end("where a value was expected");
    const char c = text_[pos_];
    switch (c) {
      case '{': return parse_object(out, depth + 1);
      case '[': return parse_array(out, depth + 1);
      case '"':
        out.type_ = JsonValue::Type::kString;
        return parse_string(out.text_);
      case 't': return parse_literal(out, "true", JsonValue::Type::kBool, true);
      case 'f': return parse_literal(out, "false", JsonValue::Type::kBool, false);
      case 'n': return parse_literal(out, "null", JsonValue::Type::kNull, false);
      default:
        if (c == '-' || is_digit(c)) return parse_number(out);
        return fail(pos_, str_cat("unexpected ", describe_byte(c), " where a value was expected"));
    }
  }

  bool parse_literal(JsonValue& out, std::string_view word, JsonValue::Type type, bool value) {
    if (text_.compare(pos_, word.size(), word) != 0)
      return fail(pos_, str_cat("invalid literal (expected '", word, "')"));
    pos_ += word.size();
    out.type_ = type;
    out.bool_ = value;
    return true;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, kept as text so integers stay exact.
  bool parse_number(JsonValue& out) {
    const size_t start = pos_;
    const auto at_digit = [&] { return pos_ < text_.size() && is_digit(text_[pos_]); };
    const auto digits = [&](const char* where) {
      if (!at_digit()) {
        if (pos_ >= text_.size()) return fail_end(where);
        return fail(pos_, str_cat("invalid number: expected a digit ", where, ", got ",
                                  describe_byte(text_[pos_])));
      }
      while (at_digit()) ++pos_;
      return true;
    };
    if (text_[pos_] == '-') ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '0') {
      ++pos_;
      if (at_digit()) return fail(start, "invalid number: leading zero");
    } else if (!digits("in the integer part")) {
      return false;
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (!digits("after the decimal point")) return false;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (!digits("in the exponent")) return false;
    }
    out.type_ = JsonValue::Type::kNumber;
    out.text_.assign(text_.substr(start, pos_ - start));
    return true;
  }

  // Four hex digits after "\u" at pos_ (already past the 'u').
  bool parse_hex4(uint32_t& cp, size_t escape_start) {
    if (text_.size() - pos_ < 4) return fail_end("inside a \\u escape");
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      const int h = hex_value(text_[pos_ + k]);
      if (h < 0) return fail(escape_start, "invalid \\u escape: expected four hex digits");
      cp = cp * 16 + static_cast<uint32_t>(h);
    }
    pos_ += 4;
    return true;
  }

  bool parse_escape(std::string& out) {
    const size_t escape_start = pos_;  // at the backslash
    ++pos_;
    if (pos_ >= text_.size()) return fail_end("inside a string escape");
    const char e = text_[pos_++];
    switch (e) {
      case '"': out += '"'; return true;
      case '\\': out += '\\'; return true;
      case '/': out += '/'; return true;
      case 'b': out += '\b'; return true;
      case 'f': out += '\f'; return true;
      case 'n': out += '\n'; return true;
      case 'r': out += '\r'; return true;
      case 't': out += '\t'; return true;
      case 'u': break;
      default:
        return fail(escape_start, str_cat("invalid escape '\\", e, "' in string"));
    }
    uint32_t cp = 0;
    if (!parse_hex4(cp, escape_start)) return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
      return fail(escape_start, "lone low surrogate \\u escape in string");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      // A high surrogate must be followed at once by an escaped low surrogate.
      if (text_.compare(pos_, 2, "\\u") != 0)
        return fail(escape_start, "lone high surrogate \\u escape in string");
      const size_t low_start = pos_;
      pos_ += 2;
      uint32_t low = 0;
      if (!parse_hex4(low, low_start)) return false;
      if (low < 0xDC00 || low > 0xDFFF)
        return fail(escape_start, "lone high surrogate \\u escape in string");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, cp);
    return true;
  }

  // At the opening quote; decodes into `out` and leaves pos_ after the closing quote.
  bool parse_string(std::string& out) {
    ++pos_;
    while (true) {
      // Copy the run of plain bytes in one append (the common case: no escapes).
      size_t run = pos_;
      while (run < text_.size()) {
        const auto u = static_cast<uint8_t>(text_[run]);
        if (u == '"' || u == '\\' || u < 0x20 || u >= 0x80) break;
        ++run;
      }
      out.append(text_.data() + pos_, run - pos_);
      pos_ = run;
      if (pos_ >= text_.size()) return fail_end("inside a string");
      const auto u = static_cast<uint8_t>(text_[pos_]);
      if (u == '"') {
        ++pos_;
        return true;
      }
      if (u == '\\') {
        if (!parse_escape(out)) return false;
      } else if (u < 0x20) {
        return fail(pos_, str_cat("control character ", describe_byte(text_[pos_]),
                                  " in string (must be escaped)"));
      } else {
        const size_t len = utf8_sequence_length(text_, pos_);
        if (len == 0)
          return fail(pos_, str_cat("invalid UTF-8 (", describe_byte(text_[pos_]), ") in string"));
        out.append(text_.data() + pos_, len);
        pos_ += len;
      }
    }
  }

  bool check_depth(int depth) {
    if (depth > kMaxDepth)
      return fail(pos_, str_cat("nesting deeper than ", kMaxDepth, " arrays/objects"));
    return true;
  }

  bool parse_array(JsonValue& out, int depth) {
    if (!check_depth(depth)) return false;
    out.type_ = JsonValue::Type::kArray;
    ++pos_;
    skip_whitespace();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return true;
    }
    while (true) {
      skip_whitespace();
      out.items_.emplace_back();
      if (!parse_value(out.items_.back(), depth)) return false;
      skip_whitespace();
      if (pos_ >= text_.size()) return fail_end("inside an array");
      const char c = text_[pos_++];
      if (c == ']') return true;
      if (c != ',')
        return fail(pos_ - 1, str_cat("expected ',' or ']' in array, got ", describe_byte(c)));
    }
  }

  bool parse_object(JsonValue& out, int depth) {
    if (!check_depth(depth)) return false;
    out.type_ = JsonValue::Type::kObject;
    auto& members = out.members_;
    // Indices into `members`, hashed by key; filled only once the object grows past the
    // linear-scan limit.
    const auto key_hash = [&members](size_t i) { return std::hash<std::string>()(members[i].first); };
    const auto key_eq = [&members](size_t a, size_t b) { return members[a].first == members[b].first; };
    std::unordered_set<size_t, decltype(key_hash), decltype(key_eq)> index(0, key_hash, key_eq);
    ++pos_;
    skip_whitespace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return true;
    }
    while (true) {
      skip_whitespace();
      if (pos_ >= text_.size()) return fail_end("inside an object");
      if (text_[pos_] != '"')
        return fail(pos_, str_cat("expected a string key in object, got ", describe_byte(text_[pos_])));
      const size_t key_start = pos_;
      std::string key;
      if (!parse_string(key)) return false;
      members.emplace_back(std::move(key), JsonValue());
      if (!check_unique_key(members, index, key_start)) return false;
      skip_whitespace();
      if (pos_ >= text_.size()) return fail_end("inside an object");
      if (text_[pos_] != ':')
        return fail(pos_, str_cat("expected ':' after key, got ", describe_byte(text_[pos_])));
      ++pos_;
      skip_whitespace();
      if (!parse_value(members.back().second, depth)) return false;
      skip_whitespace();
      if (pos_ >= text_.size()) return fail_end("inside an object");
      const char c = text_[pos_++];
      if (c == '}') return true;
      if (c != ',')
        return fail(pos_ - 1, str_cat("expected ',' or '}' in object, got ", describe_byte(c)));
    }
  }

  // The key just appended as members.back() must not repeat an earlier one.
  template <typename Members, typename Index>
  bool check_unique_key(const Members& members, Index& index, size_t key_start) {
    const size_t last = members.size() - 1;
    bool duplicate = false;
    if (members.size() <= kLinearKeyCheckLimit) {
      for (size_t i = 0; i < last && !duplicate; ++i) duplicate = members[i].first == members[last].first;
    } else {
      if (index.empty())
        for (size_t i = 0; i < last; ++i) index.insert(i);
      duplicate = !index.insert(last).second;
    }
    if (duplicate) return fail(key_start, str_cat("duplicate key ", json_quote(members[last].first), " in object"));
    return true;
  }

  std::string_view text_;
  const std::string& source_;
  size_t pos_ = 0;
  Status error_;
};

Result<JsonValue> parse_json(std::string_view text, const std::string& source) {
  return JsonParser(text, source).parse_document();
}

double JsonValue::as_double() const {
  if (type_ != Type::kNumber) return 0.0;
  // from_chars ignores the locale. It refuses literals beyond double's range (1e999), which
  // strtod in the C locale turns into ±inf or 0 as callers expect.
  double value = 0.0;
  const auto [ptr, ec] = std::from_chars(text_.data(), text_.data() + text_.size(), value);
  if (ec == std::errc::result_out_of_range) {
    static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", locale_t{});
    return strtod_l(text_.c_str(), nullptr, c_locale);
  }
  return value;
}

std::optional<int64_t> JsonValue::as_int() const {
  if (type_ != Type::kNumber || text_.find_first_of(".eE") != std::string::npos) return std::nullopt;
  int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text_.data(), text_.data() + text_.size(), value);
  if (ec != std::errc() || ptr != text_.data() + text_.size()) return std::nullopt;
  return value;
}

const JsonValue* JsonValue::find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  for (const auto& [k, v] : members_)
    if (k == key) return &v;
  return nullptr;
}

std::string json_quote(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  const auto hex_escape = [&](uint8_t b) {
    out += "\\u00";
    out += kHex[b >> 4];
    out += kHex[b & 15];
  };
  for (size_t i = 0; i < s.size();) {
    const auto u = static_cast<uint8_t>(s[i]);
    switch (u) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      default: break;
    }
    if (u < 0x20) {
      hex_escape(u);
      ++i;
    } else if (u < 0x80) {
      out += static_cast<char>(u);
      ++i;
    } else if (const size_t len = utf8_sequence_length(s, i); len > 0) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      hex_escape(u);  // not UTF-8: keep the byte visible as U+00XX
      ++i;
    }
  }
  out += '"';
  return out;
}

}  // namespace llmc
