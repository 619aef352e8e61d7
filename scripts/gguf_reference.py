"""Float64 references for GGUF Llama models, for tests only: weights dequantised by the `gguf`
package, the forward pass written the Hugging Face way (Q/K rows un-permuted back from llama.cpp's
interleaved rotary order, rotate-half RoPE), and the model's tokenizer rebuilt with Hugging Face
`tokenizers` from the GGUF vocabulary and merges. Independent of llmcompress's own code."""
import numpy as np
import gguf


def field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


class GgufLlama:
    def __init__(self, path):
        r = gguf.GGUFReader(path)
        assert field(r, "general.architecture") == "llama"
        self.layers = int(field(r, "llama.block_count"))
        self.dim = int(field(r, "llama.embedding_length"))
        self.heads = int(field(r, "llama.attention.head_count"))
        self.kv_heads = int(field(r, "llama.attention.head_count_kv") or self.heads)
        self.theta = float(field(r, "llama.rope.freq_base") or 10000.0)
        self.eps = float(field(r, "llama.attention.layer_norm_rms_epsilon") or 1e-5)
        self.head = self.dim // self.heads
        self.w = {}
        for t in r.tensors:
            a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
            self.w[t.name] = a.reshape([int(n) for n in reversed(t.shape)])
        if "output.weight" not in self.w:
            self.w["output.weight"] = self.w["token_embd.weight"]

    def unpermute(self, w, n_head):
        # Inverse of convert_hf_to_gguf.py's permute: rows (head, pair, 2) -> (head, 2, pair).
        out, inp = w.shape
        return w.reshape(n_head, out // n_head // 2, 2, inp).swapaxes(1, 2).reshape(out, inp)

    def rms(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, positions):  # x [n, heads, head]; rotate-half as Hugging Face's Llama
        half = self.head // 2
        inv = 1.0 / self.theta ** (np.arange(0, self.head, 2, dtype=np.float64) / self.head)
        ang = np.outer(positions, inv)
        cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :]
        sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :]
        rot = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
        return x * cos + rot * sin

    def logits(self, ids):
        """Logits [len(ids), vocab] of a full causal pass over ids."""
        n = len(ids)
        pos = np.arange(n)
        x = self.w["token_embd.weight"][ids]
        mask = np.triu(np.full((n, n), -np.inf), 1)
        rep = self.heads // self.kv_heads
        for l in range(self.layers):
            b = f"blk.{l}."
            h = self.rms(x, self.w[b + "attn_norm.weight"])
            q = h @ self.unpermute(self.w[b + "attn_q.weight"], self.heads).T
            k = h @ self.unpermute(self.w[b + "attn_k.weight"], self.kv_heads).T
            v = h @ self.w[b + "attn_v.weight"].T
            q = self.rope(q.reshape(n, self.heads, self.head), pos)
            k = np.repeat(self.rope(k.reshape(n, self.kv_heads, self.head), pos), rep, axis=1)
            v = np.repeat(v.reshape(n, self.kv_heads, self.head), rep, axis=1)
            s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(self.head) + mask
            p = np.exp(s - s.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            ctx = np.einsum("hqk,khd->qhd", p, v).reshape(n, self.dim)
            x = x + ctx @ self.w[b + "attn_output.weight"].T
            h = self.rms(x, self.w[b + "ffn_norm.weight"])
            g = h @ self.w[b + "ffn_gate.weight"].T
            u = h @ self.w[b + "ffn_up.weight"].T
            x = x + (g / (1 + np.exp(-g)) * u) @ self.w[b + "ffn_down.weight"].T
        return self.rms(x, self.w["output_norm.weight"]) @ self.w["output.weight"].T


def hf_tokenizer(path):
    """The GGUF's byte-level BPE vocabulary as a Hugging Face `tokenizers` Tokenizer (SmolLM2's
    pre-tokenizer 'smollm': single digits, then GPT-2's byte-level regex)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    r = gguf.GGUFReader(path)
    assert field(r, "tokenizer.ggml.model") == "gpt2"
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in field(r, "tokenizer.ggml.merges")]
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    pre = field(r, "tokenizer.ggml.pre")
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    elif pre == "gpt2":
        tok.pre_tokenizer = byte_level
    else:
        raise SystemExit(f"gguf_reference.py: pre-tokenizer {pre!r} not handled")
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == 3])
    return tok
