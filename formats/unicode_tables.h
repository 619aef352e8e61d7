// The Unicode classes byte-level BPE pre-tokenizer regexes use (\p{L}, \p{N}, \s), from tables
// that scripts/gen_unicode_tables.py generates into formats/unicode_tables.cpp.
#pragma once

namespace llmc {

// The Unicode version the tables were generated from ("14.0.0").
const char* unicode_tables_version();
// General category L* (Lu, Ll, Lt, Lm, Lo).
bool is_letter(char32_t c);
// General category N* (Nd, Nl, No).
bool is_number(char32_t c);
// Oniguruma's Unicode \s: U+0009..U+000D, U+0085, categories Zs, Zl, Zp.
bool is_whitespace(char32_t c);

}  // namespace llmc
