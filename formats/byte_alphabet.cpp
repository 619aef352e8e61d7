#include "formats/byte_alphabet.h"

#include <array>
#include <cstdint>

namespace llmc {
namespace {

// Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls, space, DEL, NBSP,
// soft hyphen) take U+0100 onwards, in byte order.
struct Alphabet {
  std::array<char32_t, 256> to_codepoint{};
  std::array<int16_t, 324> to_byte{};  // codepoints 0..323; -1 = not in the alphabet
  Alphabet() {
    to_byte.fill(-1);
    int next_extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next_extra++);
      to_codepoint[b] = cp;
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet table;
  return table;
}

}  // namespace

char32_t byte_to_alphabet(unsigned char byte) { return alphabet().to_codepoint[byte]; }

std::optional<unsigned char> alphabet_to_byte(char32_t c) {
  if (c >= alphabet().to_byte.size() || alphabet().to_byte[c] < 0) return std::nullopt;
  return static_cast<unsigned char>(alphabet().to_byte[c]);
}

std::string bytes_to_alphabet(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) append_utf8(byte_to_alphabet(b), &out);
  return out;
}

std::optional<std::string> alphabet_to_bytes(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (size_t pos = 0; pos < token.size();) {
    char32_t cp;
    int len = decode_utf8(token, pos, &cp);
    if (len == 0) return std::nullopt;
    std::optional<unsigned char> b = alphabet_to_byte(cp);
    if (!b) return std::nullopt;
    out.push_back(static_cast<char>(*b));
    pos += static_cast<size_t>(len);
  }
  return out;
}

int decode_utf8(std::string_view s, size_t pos, char32_t* cp) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char b0 = byte(pos);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  int len;
  char32_t value;
  char32_t min_value;  // smaller values are overlong encodings
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, value = b0 & 0x1F, min_value = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, value = b0 & 0x0F, min_value = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, value = b0 & 0x07, min_value = 0x10000;
  } else {
    return 0;
  }
  if (pos + static_cast<size_t>(len) > s.size()) return 0;
  for (int i = 1; i < len; ++i) {
    unsigned char b = byte(pos + static_cast<size_t>(i));
    if ((b & 0xC0) != 0x80) return 0;
    value = (value << 6) | (b & 0x3F);
  }
  if (value < min_value || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
  *cp = value;
  return len;
}

void append_utf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace llmc
