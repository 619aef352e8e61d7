#!/usr/bin/env python3
"""Seed corpora for the libFuzzer targets (fuzz/), one folder per target, from the real data and
small files written with the same libraries the formats come from (gguf, tokenizers, numpy).

  fuzz_seeds.py OUT_DIR REPO_ROOT        ($LLMC_DATA: the shared data folder)

Seeds stay small (the largest is stories260K, 1 MB) so mutations run fast.
"""
import io
import json
import os
import shutil
import struct
import sys

import numpy as np

data = os.environ.get("LLMC_DATA")
out, repo = sys.argv[1], sys.argv[2]
if not data or not os.path.isdir(data):
    sys.exit("fuzz_seeds.py: set LLMC_DATA to the shared data folder")


def folder(name):
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def put(target, name, payload):
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(payload)


for t in ("onnx_reader", "run_model", "llama2c", "npy", "gguf", "safetensors", "json_tokenizer", "recipe"):
    folder(t)

# ONNX: the node conformance models and ORT's transformer test graphs.
node_tests = os.path.join(data, "onnx-node-tests")
for case in sorted(os.listdir(node_tests)):
    model = os.path.join(node_tests, case, "model.onnx")
    if os.path.isfile(model) and os.path.getsize(model) < 16384:
        raw = open(model, "rb").read()
        put("onnx_reader", case + ".onnx", raw)
        put("run_model", case + ".onnx", raw)
ort_models = os.path.join(data, "ort-transformer-models")
for name in sorted(os.listdir(ort_models)):
    raw = open(os.path.join(ort_models, name), "rb").read()
    put("onnx_reader", name, raw)
    if len(raw) < 32768:
        put("run_model", name, raw)

# Our own op com.llmcompress NMSparseMatMul (packed 2:4 / 1:4 weights): two products sharing the
# input (the session groups them), float32, float16 and int8 with scales, so mutations reach the
# packed-form checks and the panel kernels.
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def nm_sparse_model(kind, n):
    rng = np.random.default_rng(3)
    K, N = 16, 40
    vt = {"f32": np.float32, "f16": np.float16, "i8": np.int8}[kind]
    at = TensorProto.FLOAT16 if kind == "f16" else TensorProto.FLOAT
    inits, nodes, outs = [], [], []
    for i in range(2):
        vals = (rng.integers(-100, 100, (K // 4 * n, N)) if kind == "i8" else rng.standard_normal((K // 4 * n, N))).astype(vt)
        pos = np.array([[0, 2][:n]] * N).T  # positions 0 (and 2) in every group and column
        idx = np.zeros((K // 4 * n, (N + 3) // 4), np.uint8)
        for r in range(K // 4 * n):
            for c in range(N):
                idx[r, c // 4] |= pos[r % n, c] << (2 * (c % 4))
        names = [f"v{i}", f"x{i}"]
        inits += [numpy_helper.from_array(vals, names[0]), numpy_helper.from_array(idx, names[1])]
        ins = ["a"] + names
        if kind == "i8":
            inits.append(numpy_helper.from_array(np.full((N,), 0.01, np.float32), f"s{i}"))
            ins.append(f"s{i}")
        nodes.append(helper.make_node("NMSparseMatMul", ins, [f"y{i}"], domain="com.llmcompress", n=n))
        outs.append(helper.make_tensor_value_info(f"y{i}", at, [1, N]))
    g = helper.make_graph(nodes, "nm", [helper.make_tensor_value_info("a", at, [1, K])], outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.llmcompress", 1)])
    return m.SerializeToString()


for kind in ("f32", "f16", "i8"):
    for n in (1, 2):
        put("run_model", f"nm_sparse_{kind}_{n}.onnx", nm_sparse_model(kind, n))

# llama2.c: byte 0 selects the checkpoint, byte 1 the tokenizer.
put("llama2c", "stories260K", b"\x00" + open(os.path.join(data, "llama2c", "stories260K.bin"), "rb").read())
put("llama2c", "tok512", b"\x01" + open(os.path.join(data, "llama2c", "tok512.bin"), "rb").read())

# .npy (byte 0) and .npz (byte 1) of several dtypes and layouts.
arrays = {"f32": np.arange(6, dtype=np.float32).reshape(2, 3), "i64": np.array([1, -2, 3], dtype=np.int64),
          "f16": np.ones((2, 2), dtype=np.float16), "b": np.array([True, False]),
          "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
          "big_endian": np.arange(4, dtype=">f4"), "scalar": np.float32(3.5), "empty": np.zeros((0, 4), np.float32),
          "i32": np.arange(5, dtype=np.int32)}
for name, a in arrays.items():
    buf = io.BytesIO()
    np.save(buf, a)
    put("npy", name + ".npy", b"\x00" + buf.getvalue())
buf = io.BytesIO()
np.savez(buf, input_ids=np.arange(8, dtype=np.int64).reshape(1, 8), mask=np.ones((1, 8), np.int64))
put("npy", "pair.npz", b"\x01" + buf.getvalue())

# GGUF: tiny llama models, every tensor type the quantiser of the gguf package writes, with a
# SentencePiece and a byte-level BPE tokenizer.
from gguf import GGUFWriter, GGMLQuantizationType, TokenType, quants  # noqa: E402


def tiny_gguf(path, qtype, tokenizer):
    rng = np.random.default_rng(1)
    k_bytes = {GGMLQuantizationType.Q4_K: 144, GGMLQuantizationType.Q5_K: 176, GGMLQuantizationType.Q6_K: 210}
    k_quant = qtype in k_bytes  # blocks of 256 values; random bytes (the package cannot quantise them)
    dim, hidden, vocab = (256, 256, 260) if k_quant else (32, 64, 260)
    w = GGUFWriter(path, "llama")
    w.add_context_length(64)
    w.add_embedding_length(dim)
    w.add_block_count(1)
    w.add_feed_forward_length(hidden)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    if tokenizer == "llama":
        tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["\u2581"]
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores([0.0] * len(tokens))
        w.add_token_types([TokenType.NORMAL] * len(tokens))
    else:
        byte_chars = [chr(c) for c in range(33, 127)] + [chr(c) for c in range(161, 256) if c != 173]
        tokens = byte_chars + [chr(256 + i) for i in range(256 - len(byte_chars))] + ["he", "ll", "hell", "o"]
        w.add_tokenizer_model("gpt2")
        w.add_token_list(tokens[:vocab])
        w.add_token_merges(["h e", "l l", "he ll"])
    shapes = {"token_embd.weight": (vocab, dim), "blk.0.attn_norm.weight": (dim,), "blk.0.attn_q.weight": (dim, dim),
              "blk.0.attn_k.weight": (dim // 2, dim), "blk.0.attn_v.weight": (dim // 2, dim),
              "blk.0.attn_output.weight": (dim, dim), "blk.0.ffn_norm.weight": (dim,),
              "blk.0.ffn_gate.weight": (hidden, dim), "blk.0.ffn_up.weight": (hidden, dim),
              "blk.0.ffn_down.weight": (dim, hidden), "output_norm.weight": (dim,)}
    for name, shape in shapes.items():
        a = rng.standard_normal(shape).astype(np.float32)
        if len(shape) == 2 and k_quant:
            blocks = rng.integers(0, 256, size=(shape[0], shape[1] // 256 * k_bytes[qtype]), dtype=np.uint8)
            w.add_tensor(name, blocks, raw_dtype=qtype)
        elif len(shape) == 2 and qtype != GGMLQuantizationType.F32:
            w.add_tensor(name, quants.quantize(a, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


gguf_dir = os.path.join(out, "gguf")
for qtype in (GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.Q8_0,
              GGMLQuantizationType.Q4_0, GGMLQuantizationType.Q4_1, GGMLQuantizationType.Q5_0,
              GGMLQuantizationType.Q5_1, GGMLQuantizationType.Q4_K, GGMLQuantizationType.Q5_K,
              GGMLQuantizationType.Q6_K):
    for tok in ("llama", "gpt2"):
        try:
            tiny_gguf(os.path.join(gguf_dir, f"{qtype.name}_{tok}.gguf"), qtype, tok)
        except (NotImplementedError, ValueError, quants.QuantError):  # a type this gguf version cannot quantise
            pass


# safetensors: a header (JSON) and the bytes it describes.
def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    for name, (dtype, a) in tensors.items():
        raw = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blob


put("safetensors", "f32.safetensors", safetensors({"w": ("F32", np.ones((2, 3), np.float32)),
                                                   "b": ("F32", np.zeros(3, np.float32))}, {"format": "pt"}))
put("safetensors", "f16_bf16.safetensors", safetensors({"h": ("F16", np.ones(4, np.float16)),
                                                        "g": ("BF16", np.array([0x3f80, 0x4000], np.uint16))}))
put("safetensors", "ints.safetensors", safetensors({"i": ("I64", np.arange(3, dtype=np.int64)),
                                                    "e": ("F32", np.zeros((0,), np.float32))}))

# tokenizer.json: a small byte-level BPE trained on TinyStories by `tokenizers`, and config.json.
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
text = open(os.path.join(data, "corpora", "tinystories_val_prefix.txt"), encoding="utf-8").read()[:20000]
tok.train_from_iterator(text.splitlines(), trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
put("json_tokenizer", "tokenizer.json", tok.to_str().encode())
put("json_tokenizer", "config.json", json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 576,
                                                 "rope_theta": 1e5, "tie_word_embeddings": True,
                                                 "torch_dtype": "bfloat16", "x": [1, 2.5e-3, None, "\u00e9"]}).encode())

# Recipes: the repository's own.
for name in sorted(os.listdir(os.path.join(repo, "recipes"))):
    put("recipe", name, open(os.path.join(repo, "recipes", name), "rb").read())

print(f"fuzz seeds in {out}: " + ", ".join(f"{t} {len(os.listdir(os.path.join(out, t)))}" for t in sorted(os.listdir(out))))
