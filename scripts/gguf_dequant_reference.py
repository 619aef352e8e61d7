#!/usr/bin/env python3
"""Writes random GGML blocks and the gguf package's dequantisation of them, the ground truth for
tests/formats/gguf_quants_test.cpp.

Usage: gguf_dequant_reference.py OUT_DIR [SEED]
For each type T writes OUT_DIR/T.bin (raw blocks, as GGUF stores them) and OUT_DIR/T.f32
(little-endian float32 from gguf.quants.dequantize).

Quantised blocks are random bytes, except that their fp16 scale fields hold finite values:
a NaN or Inf scale would turn whole blocks into NaN and hide any difference in the other bits.
The scales mix ordinary magnitudes (random normal over many decades), subnormals, zeros of both
signs and the extremes +-65504. F32, F16 and BF16 are random bit patterns, NaNs included.
A second, smaller set per quantised type, T.nonfinite.bin / .f32, has scales that are random
bit patterns, half of them Inf or NaN, for which NaN signs and payloads must match too.
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

# Byte offsets of the fp16 scale fields inside each block (ggml-common.h).
SCALE_OFFSETS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
RAW_TYPES = [T.F32, T.F16, T.BF16]
BLOCKS_PER_TYPE = 2048
EXTREME_SCALES = np.array([65504.0, -65504.0, 6.1035156e-05, -6.1035156e-05, 5.9604645e-08,
                           -5.9604645e-08, 3.0e-06, 0.0, -0.0, 1.0], dtype=np.float16)
NONFINITE_BITS = np.array([0x7c00, 0xfc00, 0x7e00, 0xfe00, 0x7c01, 0xfd55, 0x7fff], dtype=np.uint16)


def finite_scales(rng: np.random.Generator, n: int) -> np.ndarray:
    """n finite fp16 values: mostly normal * 10^U(-8, 4.8), one in eight an extreme value."""
    values = rng.standard_normal(n) * 10.0 ** rng.uniform(-8.0, 4.8, n)
    scales = np.clip(values, -65504.0, 65504.0).astype(np.float16)
    extreme = rng.random(n) < 0.125
    scales[extreme] = rng.choice(EXTREME_SCALES, int(extreme.sum()))
    assert np.isfinite(scales).all()
    return scales


def any_scales(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random fp16 bit patterns, half of them +-Inf or a quiet or signalling NaN."""
    bits = rng.integers(0, 1 << 16, n, dtype=np.uint16)
    special = rng.random(n) < 0.5
    bits[special] = rng.choice(NONFINITE_BITS, int(special.sum()))
    return bits.view(np.float16)


def random_blocks(rng: np.random.Generator, qtype: T, n_blocks: int, scales) -> np.ndarray:
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for offset in SCALE_OFFSETS.get(qtype, []):
        blocks[:, offset:offset + 2] = scales(rng, n_blocks).view(np.uint8).reshape(-1, 2)
    return blocks


def write_case(out_dir: str, name: str, qtype: T, blocks: np.ndarray) -> None:
    with np.errstate(invalid="ignore", over="ignore"):
        values = np.asarray(dequantize(blocks.reshape(-1), qtype), dtype=np.float32)
    assert values.size == blocks.size // GGML_QUANT_SIZES[qtype][1] * GGML_QUANT_SIZES[qtype][0]
    blocks.tofile(f"{out_dir}/{name}.bin")
    values.astype("<f4").tofile(f"{out_dir}/{name}.f32")


def main() -> None:
    out_dir = sys.argv[1]
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    for qtype in RAW_TYPES:
        write_case(out_dir, qtype.name, qtype, random_blocks(rng, qtype, BLOCKS_PER_TYPE * 256, None))
    for qtype in SCALE_OFFSETS:
        write_case(out_dir, qtype.name, qtype, random_blocks(rng, qtype, BLOCKS_PER_TYPE, finite_scales))
        write_case(out_dir, f"{qtype.name}.nonfinite", qtype, random_blocks(rng, qtype, 256, any_scales))


if __name__ == "__main__":
    main()
