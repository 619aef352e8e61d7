#!/usr/bin/env python3
"""Reference ids for the WordPiece tokenizer test (tests/formats/wordpiece_tokenizer_test.cpp).

Loads TOKENIZER_JSON with Hugging Face `tokenizers` (truncation and padding switched off: the C++
tokenizer gives whole sequences) and, for each INPUT file (UTF-8 text), writes next to it:

  INPUT.ids       the ids of its whole text without special tokens, space-separated
  INPUT.cls.ids   the same with the post-processor's [CLS] ... [SEP]
  INPUT.decoded   HF's decode of INPUT.cls.ids (special tokens skipped), as UTF-8

Usage: wordpiece_reference.py TOKENIZER_JSON INPUT...
"""
import sys

from tokenizers import Tokenizer


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: wordpiece_reference.py TOKENIZER_JSON INPUT...")
    tok = Tokenizer.from_file(sys.argv[1])
    tok.no_truncation()
    tok.no_padding()
    for path in sys.argv[2:]:
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
