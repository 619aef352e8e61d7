#!/usr/bin/env python3
"""Reference ids for the WordPiece tokenizer test (tests/formats/wordpiece_tokenizer_test.cpp).

Loads TOKENIZER_JSON with Hugging Face `tokenizers` (truncation and padding switched off: the C++
tokenizer gives whole sequences) and, for each INPUT file (UTF-8 text), writes next to it:

  INPUT.ids       the ids of its whole text without special tokens, space-separated
  INPUT.cls.ids   the same with the post-processor's [CLS] ... [SEP]
  INPUT.decoded   HF's decode of INPUT.cls.ids (special tokens skipped), as UTF-8

With --sweep PATH it first writes PATH, a Unicode sweep: for every assigned codepoint (and every
97th unassigned one) c, the word c + "a" + c.upper(), space-separated; PATH is then an INPUT too.
It reaches every class and mapping of the normalizer and pre-tokenizer.

Usage: wordpiece_reference.py TOKENIZER_JSON [--sweep PATH] INPUT...
"""
import sys
import unicodedata

from tokenizers import Tokenizer


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: wordpiece_reference.py TOKENIZER_JSON INPUT...")
    tok = Tokenizer.from_file(sys.argv[1])
    tok.no_truncation()
    tok.no_padding()
    inputs = sys.argv[2:]
    if inputs[:1] == ["--sweep"]:
        words = [chr(c) + "a" + chr(c).upper() for c in range(0x20, 0x110000)
                 if not 0xD800 <= c <= 0xDFFF and (unicodedata.category(chr(c)) != "Cn" or c % 97 == 0)]
        with open(inputs[1], "w", encoding="utf-8", newline="") as f:
            f.write(" ".join(words))
        inputs = inputs[1:]
    for path in inputs:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
        plain = tok.encode(text, add_special_tokens=False).ids
        wrapped = tok.encode(text, add_special_tokens=True).ids
        with open(path + ".ids", "w") as f:
            f.write(" ".join(map(str, plain)))
        with open(path + ".cls.ids", "w") as f:
            f.write(" ".join(map(str, wrapped)))
        with open(path + ".decoded", "w", encoding="utf-8", newline="") as f:
            f.write(tok.decode(wrapped))


if __name__ == "__main__":
    main()
