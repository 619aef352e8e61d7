#!/usr/bin/env python3
"""Writes formats/unicode_tables.cpp: the codepoint classes and mappings tokenizers need.

  letter     \\p{L}  general category Lu, Ll, Lt, Lm, Lo
  number     \\p{N}  general category Nd, Nl, No (also Rust's char::is_numeric, which HF's
                    Digits pre-tokenizer uses)
  whitespace \\s     Oniguruma's Unicode \\s, which HF tokenizers' regexes run on:
                    U+0009..U+000D, U+0085 and categories Zs, Zl, Zp (the White_Space property)

and for WordPiece (HF tokenizers' BertNormalizer / BertPreTokenizer, Rust semantics). These three
classes come from the unicode_categories crate (0.1.1), whose tables are Unicode 8.0's: a
character assigned later is in none of them there (measured: U+1172B, Mn in 8.0, is stripped;
U+08D4, Mn since 9.0, is not), so they hold only characters of age <= 8.0 (DerivedAge.txt of
Debian's unicode-data package):
  mark_nonspacing   general category Mn (what strip_accents drops after NFD)
  control           Cc, Cf, Co (the crate's is_other, which clean_text drops)
  punctuation       P* (Pc Pd Ps Pe Pi Pf Po; BertPreTokenizer isolates these)
  lowercase         the full per-character lowercase mapping (Rust's char::to_lowercase, not
                    Python's str.lower() on a string, which special-cases final sigma): runs
                    (lo, hi, delta, stride) for one-codepoint mappings, a short list for longer
  stripped          each character's canonical decomposition (NFD) with Mn marks removed, for
                    the characters where that differs from the character itself (Hangul
                    syllables decompose by formula in the C++ instead of a table)

Each class is a sorted list of inclusive ranges, looked up by binary search. The data come from
this Python's unicodedata (its version is written into the output); HF tokenizers' Oniguruma and
Rust's std may use a newer Unicode, so codepoints assigned after that version are "other" here.

Usage: scripts/gen_unicode_tables.py [output path]   (default: formats/unicode_tables.cpp)
"""
import os
import sys
import unicodedata

MAX_CODEPOINT = 0x10FFFF


def is_letter(c):
    return unicodedata.category(chr(c)).startswith("L")


def is_number(c):
    return unicodedata.category(chr(c)).startswith("N")


def is_whitespace(c):
    return 0x09 <= c <= 0x0D or c == 0x85 or unicodedata.category(chr(c)) in ("Zs", "Zl", "Zp")


CATEGORY_OTHER = ("Cc", "Cf", "Co")
PUNCTUATION = ("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po")
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3


DERIVED_AGE = "/usr/share/unicode/DerivedAge.txt"
CRATE_UNICODE = (8, 0)


def read_old_codepoints():
    """The codepoints assigned by Unicode CRATE_UNICODE, from DERIVED_AGE."""
    if not os.path.isfile(DERIVED_AGE):
        sys.exit(f"gen_unicode_tables.py: {DERIVED_AGE} is missing (apt-get install unicode-data)")
    old = set()
    with open(DERIVED_AGE, encoding="utf-8") as f:
        for line in f:
            line = line.split("#")[0].strip()
            if not line:
                continue
            cps, age = (x.strip() for x in line.split(";"))
            if tuple(int(x) for x in age.split(".")) > CRATE_UNICODE:
                continue
            lo, _, hi = cps.partition("..")
            old.update(range(int(lo, 16), int(hi or lo, 16) + 1))
    return old


OLD = read_old_codepoints()
# Characters of 8.0 whose category has changed since, as 8.0 had it (a sweep of every assigned
# codepoint through `tokenizers` found exactly these six differing from this Python's categories).
CATEGORY_IN_8_0 = {0x166D: "Po", 0x1734: "Mn", 0x1885: "Lo", 0x1886: "Lo", 0xA9BD: "Mc", 0x111C9: "Po"}


def crate_category(c):
    """The general category as the unicode_categories crate knows it ("Cn": unassigned then)."""
    if c not in OLD:
        return "Cn"
    return CATEGORY_IN_8_0.get(c) or unicodedata.category(chr(c))


def is_mark_nonspacing(c):
    return crate_category(c) == "Mn"


def is_control(c):
    return crate_category(c) in CATEGORY_OTHER


def is_punctuation(c):
    return crate_category(c) in PUNCTUATION


def lowercase_runs():
    """One-codepoint lowercase mappings as runs (lo, hi, delta, stride): every stride-th codepoint
    from lo to hi maps to itself + delta (stride 2 covers the alternating upper/lower blocks)."""
    runs, multi = [], []
    for c in range(MAX_CODEPOINT + 1):
        if 0xD800 <= c <= 0xDFFF:
            continue
        low = chr(c).lower()
        if low == chr(c):
            continue
        if len(low) > 1:
            multi.append((c, [ord(x) for x in low]))
            continue
        delta = ord(low) - c
        if runs:
            lo, hi, d, stride = runs[-1]
            if d == delta and c - hi == stride:
                runs[-1] = (lo, c, d, stride)
                continue
            if d == delta and lo == hi and c - hi == 2:
                runs[-1] = (lo, c, d, 2)
                continue
        runs.append((c, c, delta, 1))
    return runs, multi


def stripped():
    """{codepoint: NFD without the crate's Mn marks} where that is not the codepoint itself; Hangul
    excluded."""
    out = {}
    for c in range(MAX_CODEPOINT + 1):
        if 0xD800 <= c <= 0xDFFF or HANGUL_FIRST <= c <= HANGUL_LAST:
            continue
        nfd = unicodedata.normalize("NFD", chr(c))
        if nfd == chr(c):
            continue
        out[c] = [ord(x) for x in nfd if not is_mark_nonspacing(ord(x))]
    return out


def ranges(predicate):
    out = []
    start = None
    for c in range(MAX_CODEPOINT + 2):
        inside = c <= MAX_CODEPOINT and predicate(c)
        if inside and start is None:
            start = c
        elif not inside and start is not None:
            out.append((start, c - 1))
            start = None
    return out


def emit_table(name, rs):
    lines = [f"constexpr CodepointRange {name}[] = {{"]
    row = []
    for lo, hi in rs:
        row.append(f"{{0x{lo:X}, 0x{hi:X}}},")
        if len(row) == 6:
            lines.append("    " + " ".join(row))
            row = []
    if row:
        lines.append("    " + " ".join(row))
    lines.append("};")
    return "\n".join(lines)


def emit_rows(decl, items):
    lines = [decl + " = {"]
    for i in range(0, len(items), 6):
        lines.append("    " + " ".join(items[i:i + 6]))
    lines.append("};")
    return "\n".join(lines)


def hexlist(cps, n):
    cps = list(cps) + [0] * (n - len(cps))
    return "{" + ", ".join(f"0x{c:X}" for c in cps) + "}"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "formats", "unicode_tables.cpp")
    tables = [("kLetters", ranges(is_letter)), ("kNumbers", ranges(is_number)),
              ("kWhitespace", ranges(is_whitespace)), ("kMarkNonspacing", ranges(is_mark_nonspacing)),
              ("kControl", ranges(is_control)), ("kPunctuation", ranges(is_punctuation))]
    body = "\n\n".join(emit_table(n, r) for n, r in tables)
    runs, multi = lowercase_runs()
    strip = stripped()
    strip_single = [(c, v[0]) for c, v in sorted(strip.items()) if len(v) == 1]
    strip_other = [(c, v) for c, v in sorted(strip.items()) if len(v) != 1]
    max_strip = max(len(v) for _, v in strip_other)
    max_lower = max(len(v) for _, v in multi)
    body += "\n\n" + emit_rows("constexpr LowercaseRun kLowercaseRuns[]",
                                [f"{{0x{lo:X}, 0x{hi:X}, {d}, {st}}}," for lo, hi, d, st in runs])
    body += "\n\n" + emit_rows("constexpr LowercaseMulti kLowercaseMulti[]",
                                [f"{{0x{c:X}, {len(v)}, {hexlist(v, max_lower)}}}," for c, v in multi])
    body += "\n\n" + emit_rows("constexpr StrippedSingle kStrippedSingle[]",
                                [f"{{0x{c:X}, 0x{v:X}}}," for c, v in strip_single])
    body += "\n\n" + emit_rows("constexpr StrippedMulti kStrippedMulti[]",
                                [f"{{0x{c:X}, {len(v)}, {hexlist(v, max_strip)}}}," for c, v in strip_other])
    text = f"""// GENERATED by scripts/gen_unicode_tables.py from Unicode {unicodedata.unidata_version} (Python's
// unicodedata): do not edit. HF tokenizers' Oniguruma/Rust may know a newer Unicode; codepoints
// assigned since {unicodedata.unidata_version} count as "other" here.
#include "formats/unicode_tables.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace llmc {{
namespace {{

struct CodepointRange {{
  char32_t lo, hi;  // inclusive
}};
// Every `stride`-th codepoint of [lo, hi] lowercases to itself + delta.
struct LowercaseRun {{
  char32_t lo, hi;
  int32_t delta;
  int32_t stride;
}};
struct LowercaseMulti {{
  char32_t cp;
  int n;
  char32_t out[{max_lower}];
}};
struct StrippedSingle {{
  char32_t cp, out;
}};
struct StrippedMulti {{
  char32_t cp;
  int n;
  char32_t out[{max_strip}];
}};
static_assert({max_lower} <= kMaxLowercase && {max_strip} <= kMaxStripped);

{body}

template <size_t N>
bool in_ranges(const CodepointRange (&table)[N], char32_t c) {{
  // The first range whose upper end reaches c; c is inside when that range starts at or below it.
  auto it = std::lower_bound(std::begin(table), std::end(table), c,
                             [](const CodepointRange& r, char32_t v) {{ return r.hi < v; }});
  return it != std::end(table) && it->lo <= c;
}}

// The entry of a table sorted by `cp` whose cp is c, or nullptr.
template <typename T, size_t N>
const T* find_cp(const T (&table)[N], char32_t c) {{
  auto it = std::lower_bound(std::begin(table), std::end(table), c,
                             [](const T& e, char32_t v) {{ return e.cp < v; }});
  return it != std::end(table) && it->cp == c ? it : nullptr;
}}

// Hangul syllables decompose arithmetically (Unicode 3.12): leading consonant, vowel, and
// trailing consonant unless the index says none. No jamo is a nonspacing mark.
constexpr char32_t kHangulFirst = 0xAC00, kHangulLast = 0xD7A3;
int hangul_jamo(char32_t c, char32_t* out) {{
  const char32_t s = c - kHangulFirst, t = s % 28;
  out[0] = 0x1100 + s / (21 * 28);
  out[1] = 0x1161 + (s % (21 * 28)) / 28;
  if (t == 0) return 2;
  out[2] = 0x11A7 + t;
  return 3;
}}

}}  // namespace

const char* unicode_tables_version() {{ return "{unicodedata.unidata_version}"; }}
bool is_letter(char32_t c) {{ return in_ranges(kLetters, c); }}
bool is_number(char32_t c) {{ return in_ranges(kNumbers, c); }}
bool is_whitespace(char32_t c) {{ return in_ranges(kWhitespace, c); }}
bool is_mark_nonspacing(char32_t c) {{ return in_ranges(kMarkNonspacing, c); }}
bool is_control(char32_t c) {{ return in_ranges(kControl, c); }}
bool is_punctuation(char32_t c) {{ return in_ranges(kPunctuation, c); }}

int to_lowercase(char32_t c, char32_t* out) {{
  auto run = std::lower_bound(std::begin(kLowercaseRuns), std::end(kLowercaseRuns), c,
                              [](const LowercaseRun& r, char32_t v) {{ return r.hi < v; }});
  if (run != std::end(kLowercaseRuns) && run->lo <= c && (c - run->lo) % run->stride == 0) {{
    out[0] = static_cast<char32_t>(static_cast<int32_t>(c) + run->delta);
    return 1;
  }}
  if (const LowercaseMulti* m = find_cp(kLowercaseMulti, c)) {{
    std::copy_n(m->out, m->n, out);
    return m->n;
  }}
  out[0] = c;
  return 1;
}}

int strip_accents(char32_t c, char32_t* out) {{
  if (c >= kHangulFirst && c <= kHangulLast) return hangul_jamo(c, out);
  if (const StrippedSingle* s = find_cp(kStrippedSingle, c)) {{
    out[0] = s->out;
    return 1;
  }}
  if (const StrippedMulti* m = find_cp(kStrippedMulti, c)) {{
    std::copy_n(m->out, m->n, out);
    return m->n;
  }}
  if (is_mark_nonspacing(c)) return 0;
  out[0] = c;
  return 1;
}}

}}  // namespace llmc
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"{path}: " + ", ".join(f"{n} {len(r)} ranges" for n, r in tables) +
          f", {len(runs)} lowercase runs, {len(strip)} stripped characters")


if __name__ == "__main__":
    main()
