#!/usr/bin/env python3
"""Reference ids for the byte-level BPE tokenizer test (tests/formats/bpe_tokenizer_test.cpp).

Reads the tokenizer.ggml.* fields of a GGUF file, builds the equivalent Hugging Face
`tokenizers` tokenizer (BPE model, the pre-tokenizer `tokenizer.ggml.pre` names, ByteLevel
decoder, control tokens as special added tokens, user-defined ones as added tokens) and writes
into OUT_DIR:

  tokens.txt      one token per line (byte-level tokens hold no whitespace: checked here)
  types.txt       one GGUF token type per line
  merges.txt      one "left right" merge per line, by rank
  meta.txt        "pre NAME", "bos ID", "eos ID", "add_bos 0|1" lines
  tokenizer.PRE.json  the HF tokenizer itself (Tokenizer.save) for each PRE below
  unicode_sweep.txt  every assigned codepoint of this Python's Unicode in letter/number/space/
                     punctuation contexts, so the C++ character classes meet HF's on each one

and, for each INPUT file (valid UTF-8) and for unicode_sweep.txt, INPUT.PRE.ids: the ids
(space-separated, one line) HF gives for its whole text without BOS/EOS, for PRE = the GGUF's own
pre-tokenizer and the others this script knows (the same vocabulary split GPT-2's or Llama 3's
way), so one vocabulary checks every pre-tokenizer.

Usage: bpe_reference.py GGUF OUT_DIR [INPUT...]
"""
import os
import sys
import unicodedata

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

CONTROL, USER_DEFINED = 3, 4
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")


def fail(message):
    sys.exit(f"bpe_reference.py: {message}")


def read_gguf(path):
    fields = gguf.GGUFReader(path).fields

    def value(key, default=None):
        field = fields.get(key)
        return default if field is None else field.contents()

    tokens = value("tokenizer.ggml.tokens")
    merges = value("tokenizer.ggml.merges")
    if tokens is None or merges is None:
        fail(f"{path} has no tokenizer.ggml.tokens/merges")
    types = value("tokenizer.ggml.token_type", [1] * len(tokens))
    meta = {
        "pre": value("tokenizer.ggml.pre", "gpt2"),
        "bos": value("tokenizer.ggml.bos_token_id", -1),
        "eos": value("tokenizer.ggml.eos_token_id", -1),
        "add_bos": int(bool(value("tokenizer.ggml.add_bos_token", False))),
    }
    return tokens, merges, types, meta


def check_line_safe(tokens, merges):
    """The text dumps hold one item per line: fail loudly if an item could break a line."""
    for i, t in enumerate(tokens):
        if t == "" or any(c.isspace() for c in t) or len(t.splitlines()) != 1:
            fail(f"token {i} {t!r} is empty or holds whitespace: tokens.txt cannot hold it")
    for i, m in enumerate(merges):
        parts = m.split(" ")
        if len(parts) != 2 or any(c.isspace() for c in "".join(parts)) or len(m.splitlines()) != 1:
            fail(f"merge {i} {m!r} is not two whitespace-free tokens separated by one space")


def build_hf(tokens, merges, types, pre):
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ")) for m in merges]
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    ignore_merges = False
    if pre == "gpt2":
        pre_tokenizer = byte_level
    elif pre == "smollm":
        pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    elif pre in ("llama-bpe", "qwen2"):
        regex = LLAMA3_REGEX if pre == "llama-bpe" else QWEN2_REGEX
        pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        ignore_merges = pre == "llama-bpe"
    else:
        fail(f"pre-tokenizer {pre!r} is not known to this script")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == CONTROL])
    tok.add_tokens([AddedToken(t, special=False, normalized=False)
                    for t, ty in zip(tokens, types) if ty == USER_DEFINED])
    return tok


def unicode_sweep():
    lines = []
    for cp in range(0x110000):
        c = chr(cp)
        if unicodedata.category(c) in ("Cn", "Cs", "Co"):  # unassigned, surrogates, private use
            continue
        # A letter joins "a_b"; punctuation joins "!_"; a number stands alone (smollm) or follows
        # a space; in a whitespace run before "x" the last character leads the next piece.
        lines.append(f"a{c}b!{c} {c}{c}x\n")
    return "".join(lines)


def write_lines(path, items):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for item in items:
            f.write(f"{item}\n")


def main():
    if len(sys.argv) < 3:
        fail("usage: bpe_reference.py GGUF OUT_DIR [INPUT...]")
    gguf_path, out_dir, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(out_dir, exist_ok=True)
    tokens, merges, types, meta = read_gguf(gguf_path)
    check_line_safe(tokens, merges)
    write_lines(os.path.join(out_dir, "tokens.txt"), tokens)
    write_lines(os.path.join(out_dir, "types.txt"), types)
    write_lines(os.path.join(out_dir, "merges.txt"), merges)
    write_lines(os.path.join(out_dir, "meta.txt"), [f"{k} {v}" for k, v in meta.items()])
    sweep = os.path.join(out_dir, "unicode_sweep.txt")
    with open(sweep, "w", encoding="utf-8", newline="") as f:
        f.write(unicode_sweep())
    texts = []
    for path in inputs + [sweep]:
        with open(path, "rb") as f:
            texts.append(f.read().decode("utf-8"))  # strict: the inputs must be valid UTF-8
    for pre in dict.fromkeys([meta["pre"], "smollm", "gpt2", "llama-bpe", "qwen2"]):
        tok = build_hf(tokens, merges, types, pre)
        tok.save(os.path.join(out_dir, f"tokenizer.{pre}.json"))
        for path, text in zip(inputs + [sweep], texts):
            ids = tok.encode(text, add_special_tokens=False).ids
            with open(f"{path}.{pre}.ids", "w") as f:
                f.write(" ".join(map(str, ids)) + "\n")


if __name__ == "__main__":
    main()
