// GPT-2's byte alphabet (bytes_to_unicode in openai/gpt-2 encoder.py): byte-level BPE
// vocabularies spell every byte as one printable codepoint, so tokens never hold raw whitespace
// or control bytes ("Ġ" is the space byte, "Ċ" the newline).
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace llmc {

// The codepoint that stands for `byte`.
char32_t byte_to_alphabet(unsigned char byte);
// The byte `c` stands for, or nullopt when `c` is not in the alphabet.
std::optional<unsigned char> alphabet_to_byte(char32_t c);
// `bytes` spelled in the alphabet, as UTF-8 ("a b" -> "aĠb").
std::string bytes_to_alphabet(std::string_view bytes);
// The bytes an alphabet-spelled token stands for; nullopt when `token` is not valid UTF-8 or has
// a codepoint outside the alphabet (Hugging Face's ByteLevel decoder then keeps the token's text).
std::optional<std::string> alphabet_to_bytes(std::string_view token);

// Strict UTF-8 decoding of one codepoint at `s[pos]` (no overlongs, surrogates or values past
// U+10FFFF). Returns its length in bytes (1-4) and sets *cp, or 0 when the bytes there are not
// valid UTF-8.
int decode_utf8(std::string_view s, size_t pos, char32_t* cp);
// Appends `cp` as UTF-8.
void append_utf8(char32_t cp, std::string* out);

}  // namespace llmc
