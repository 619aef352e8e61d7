// Unicode classes and mappings the tokenizers need, from tables that scripts/gen_unicode_tables.py
// generates into formats/unicode_tables.cpp: the classes byte-level BPE pre-tokenizer regexes use
// (\p{L}, \p{N}, \s) and what WordPiece's BERT normalizer and pre-tokenizer use (marks, control
// characters, punctuation, lowercasing, accent stripping).
#pragma once

namespace llmc {

// The Unicode version the tables were generated from ("14.0.0").
const char* unicode_tables_version();
// General category L* (Lu, Ll, Lt, Lm, Lo).
bool is_letter(char32_t c);
// General category N* (Nd, Nl, No).
bool is_number(char32_t c);
// Oniguruma's Unicode \s: U+0009..U+000D, U+0085, categories Zs, Zl, Zp. This is also the
// White_Space property, Rust's char::is_whitespace.
bool is_whitespace(char32_t c);
// The three WordPiece classes below hold characters assigned by Unicode 8.0 only: HF tokenizers
// takes them from the unicode_categories crate, whose tables are 8.0's.
// General category Mn (nonspacing marks: combining accents).
bool is_mark_nonspacing(char32_t c);
// General category Cc, Cf or Co: what HF's BertNormalizer drops as control characters (tab,
// newline and carriage return excepted by the caller).
bool is_control(char32_t c);
// General category P* (Pc, Pd, Ps, Pe, Pi, Pf, Po).
bool is_punctuation(char32_t c);

inline constexpr int kMaxLowercase = 3;
inline constexpr int kMaxStripped = 3;
// The full lowercase mapping of one character (Unicode's, as Rust's char::to_lowercase: "İ" gives
// "i" + U+0307, "Σ" always "σ"). Writes 1..kMaxLowercase codepoints to `out`, returns the count.
int to_lowercase(char32_t c, char32_t* out);
// The character's canonical decomposition (NFD) without its nonspacing marks: "é" gives "e", a
// lone combining accent nothing, a Hangul syllable its jamo. Writes 0..kMaxStripped codepoints.
int strip_accents(char32_t c, char32_t* out);

}  // namespace llmc
