#!/usr/bin/env python3
"""A GGUF with a SentencePiece ("llama") tokenizer, imported by `llmcompress`, judged against
Hugging Face `tokenizers` and the llama2.c import of the same weights.

  check_gguf_spm.py LLMCOMPRESS_BIN [DATA_DIR]   (default DATA_DIR: $LLMC_DATA)

No Llama-2-family GGUF ships with the data, so the test writes one with the `gguf` package from
the real stories260K checkpoint and its 512-token SentencePiece vocabulary (tok512.bin: scores,
byte fallback), exactly as llama.cpp's converter lays a Llama 2 model out: tokens with "▁" for
space, scores, token types, Q/K in the interleaved rotary order llama2.c already uses. Checks:
  1. tokenizer parity: every id of `llmcompress tokenize --file` on the GGUF equals Hugging Face
     `tokenizers` (a BPE with byte fallback whose merges are ranked by the merged piece's score,
     as transformers' SentencePiece converter builds Llama's tokenizer.json) over both corpora
     and an edge-case list, each line with BOS;
  2. the same ids as the llama2.c tokenizer read from tok512.bin;
  3. logits: `llmcompress eval` perplexity on 4096 TinyStories tokens equal for the GGUF and
     the llama2.c import within 1e-4 relative, and greedy `run` of "Once upon a time" from the
     GGUF byte-identical to llama2.c's golden generation.
Exit 1 on any mismatch.
"""
import argparse
import json
import os
import struct
import sys
import tempfile

import numpy as np
from gguf import GGUFWriter, TokenType
from tokenizers import Tokenizer, models, normalizers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llmc_script import cli, fail  # noqa: E402

SPACE = "\u2581"
EDGE_CASES = ["Hello world", "  two leading spaces", "trailing   ", "tabs\tand\u00a0nbsp", "digits 1234567890 3.14",
              "caf\u00e9 na\u00efve \u00fcber", "\u65e5\u672c\u8a9e \ud55c\uad6d\uc5b4 emoji \U0001f600\U0001f680",
              "<s> </s> <unk> literal", "a\u0300 combining", "x" * 300, "!!!???...", "Lily's mom said, \"No!\""]


def read_llama2c(path):
    """stories260K.bin (llama2.c legacy layout) as {gguf tensor name: array} and hyperparameters."""
    raw = open(path, "rb").read()
    dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack("7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    f = np.frombuffer(raw, dtype=np.float32, offset=28)
    kv = dim * kv_heads // heads
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = f[pos:pos + n].reshape(shape)
        pos += n
        return a

    t = {"token_embd.weight": take(vocab, dim)}
    per_layer = [("attn_norm", (dim,)), ("attn_q", (dim, dim)), ("attn_k", (kv, dim)), ("attn_v", (kv, dim)),
                 ("attn_output", (dim, dim)), ("ffn_norm", (dim,)), ("ffn_gate", (hidden, dim)),
                 ("ffn_down", (dim, hidden)), ("ffn_up", (hidden, dim))]
    for name, shape in per_layer:
        stacked = take(layers, *shape)
        for l in range(layers):
            t[f"blk.{l}.{name}.weight"] = stacked[l]
    t["output_norm.weight"] = take(dim)
    take(seq, dim // heads // 2)  # freq_cis_real
    take(seq, dim // heads // 2)  # freq_cis_imag
    if not shared:
        t["output.weight"] = take(vocab, dim)
    return t, dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab, seq=seq)


def read_tok512(path):
    raw = open(path, "rb").read()
    off, pieces, scores = 4, [], []
    while off < len(raw):
        score, n = struct.unpack_from("fi", raw, off)
        pieces.append(raw[off + 8:off + 8 + n].decode("utf-8"))
        scores.append(score)
        off += 8 + n
    return pieces, scores


def write_gguf(path, tensors, hp, pieces, scores):
    w = GGUFWriter(path, "llama")
    w.add_name("stories260K")
    w.add_context_length(hp["seq"])
    w.add_embedding_length(hp["dim"])
    w.add_block_count(hp["layers"])
    w.add_feed_forward_length(hp["hidden"])
    w.add_head_count(hp["heads"])
    w.add_head_count_kv(hp["kv_heads"])
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    tokens = [p.replace(" ", SPACE) for p in pieces]
    types = [TokenType.UNKNOWN if i == 0 else TokenType.CONTROL if i < 3 else TokenType.BYTE if i < 259
             else TokenType.NORMAL for i in range(len(tokens))]
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_space_prefix(True)
    for name, a in tensors.items():
        w.add_tensor(name, np.ascontiguousarray(a, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tokens


def hf_tokenizer(tokens, scores):
    """Llama's tokenizer.json shape: BPE with byte fallback, merges ranked by the merged piece's
    score (ties by the parts' ids), normalizer prepending "▁" and mapping " " to "▁"."""
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = []
    for piece, pid in vocab.items():
        if pid < 259:
            continue
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in vocab and right in vocab:
                merges.append((-scores[pid], vocab[left], vocab[right], left, right))
    merges.sort()
    bpe = models.BPE(vocab, [(m[3], m[4]) for m in merges], unk_token="<unk>", fuse_unk=True, byte_fallback=True)
    tok = Tokenizer(bpe)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
    return tok


def lines_of(text):
    return [l.rstrip("\r") for l in text.split("\n") if l.rstrip("\r")]


def our_ids(bin_path, model, text_path):
    return json.loads(cli(bin_path, "tokenize", model, "--file", text_path, "--json"))["ids"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("data", nargs="?", default=os.environ.get("LLMC_DATA"))
    args = ap.parse_args()
    if not args.data:
        fail("no data folder: pass DATA_DIR or set LLMC_DATA")
    ckpt = os.path.join(args.data, "llama2c", "stories260K.bin")
    tok512 = os.path.join(args.data, "llama2c", "tok512.bin")
    golden = os.path.join(args.data, "llama2c", "golden", "stories260K_t0_n64_prompt_once_upon_a_time.txt")
    stories = os.path.join(args.data, "corpora", "tinystories_val_prefix.txt")
    shakespeare = os.path.join(args.data, "corpora", "tinyshakespeare.txt")
    for p in (ckpt, tok512, golden, stories, shakespeare):
        if not os.path.isfile(p):
            fail(f"{p} is missing (LLMC_DATA)")
    tensors, hp = read_llama2c(ckpt)
    pieces, scores = read_tok512(tok512)
    with tempfile.TemporaryDirectory() as tmp:
        gguf_path = os.path.join(tmp, "stories260K.gguf")
        tokens = write_gguf(gguf_path, tensors, hp, pieces, scores)
        hf = hf_tokenizer(tokens, scores)
        edge_path = os.path.join(tmp, "edge.txt")
        with open(edge_path, "w", encoding="utf-8") as f:
            f.write("\n".join(EDGE_CASES) + "\n")

        bad = 0
        for path in (stories, shakespeare, edge_path):
            text = open(path, encoding="utf-8").read()[:100_000]
            sample = os.path.join(tmp, "sample.txt")
            with open(sample, "w", encoding="utf-8") as f:
                f.write(text)
            ours = our_ids(args.bin, gguf_path, sample)
            theirs = []
            for enc in hf.encode_batch(lines_of(text), add_special_tokens=False):
                theirs += [1] + enc.ids
            llama2c = our_ids(args.bin, tok512, sample)
            first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
            ok = ours == theirs and ours == llama2c
            print(f"{os.path.basename(path):<28} {len(ours):>7} ids; equal to tokenizers: {ours == theirs}"
                  f" (first difference at {first}); equal to tok512.bin: {ours == llama2c}")
            bad += not ok

        onnx_gguf = os.path.join(tmp, "from_gguf.onnx")
        onnx_l2c = os.path.join(tmp, "from_llama2c.onnx")
        cli(args.bin, "convert", gguf_path, "-o", onnx_gguf)
        cli(args.bin, "convert", ckpt, "--tokenizer", tok512, "-o", onnx_l2c)
        ppl = {}
        for name, model in (("gguf", onnx_gguf), ("llama2c", onnx_l2c)):
            r = json.loads(cli(args.bin, "eval", model, "--text", stories, "--limit", "4096", "--json"))
            ppl[name] = r["result"]["perplexity"]
        rel = abs(ppl["gguf"] - ppl["llama2c"]) / ppl["llama2c"]
        print(f"perplexity on 4096 TinyStories tokens: GGUF {ppl['gguf']:.6f}, llama2.c {ppl['llama2c']:.6f}"
              f" (relative difference {rel:.1e}, limit 1e-4)")
        bad += rel > 1e-4

        prompt = "Once upon a time"
        # run.c -n 64 runs positions 0..63 and prints the token after each: 64 - (prompt ids after BOS).
        # run.c -n 64 runs positions 0..63 and prints the token after each, so it generates
        # 64 - (prompt ids after BOS) = 65 - (prompt ids with BOS).
        n_prompt = len(json.loads(cli(args.bin, "tokenize", gguf_path, "--text", prompt, "--json"))["ids"])
        text = cli(args.bin, "run", gguf_path, "--prompt", prompt, "--tokens", str(65 - n_prompt), "--temperature", "0")
        want = open(golden, encoding="utf-8").read()
        same = text.rstrip("\n") == want.rstrip("\n")
        print(f"greedy 'Once upon a time' from the GGUF equals llama2.c's golden generation: {same}")
        if not same:
            print(f"  ours:   {text!r}\n  golden: {want!r}")
        bad += not same
    if bad:
        fail(f"{bad} check(s) failed")
    print("all checks passed")


if __name__ == "__main__":
    main()
