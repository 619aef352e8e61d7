#!/usr/bin/env python3
"""ONNX Runtime's own weight-only quantiser (the peer), for tests and the int4 benchmark.

  ort_quantize_nbits.py IN.onnx OUT.onnx [--block-size 32] [--symmetric] [--bits 4]
                        [--accuracy-level 4] [--algo rtn|gptq] [--calib-ids IDS.npy --calib-samples N --seq-len L]

rtn: MatMulNBitsQuantizer with DefaultWeightOnlyQuantConfig (every MatMul with a constant
weight, the LM head included). gptq: GPTQWeightOnlyQuantConfig over a calibration reader built
from IDS.npy (int32 token ids; N windows of L tokens taken from the start, with empty
past_key_values inputs when the model has them). Prints the seconds from loading IN to OUT written
(calibration included), as `llmcompress quantize` is timed.
"""
import argparse
import sys
import time

import numpy as np
import onnx
from onnxruntime.quantization import matmul_nbits_quantizer as mnq


class IdsReader:
    """CalibrationDataReader over windows of token ids."""

    def __init__(self, model, ids, samples, seq_len):
        self.feeds = []
        inits = {t.name for t in model.graph.initializer}
        for s in range(samples):
            window = ids[s * seq_len:(s + 1) * seq_len]
            if len(window) < seq_len:
                break
            feed = {}
            for inp in model.graph.input:
                if inp.name in inits:
                    continue
                if inp.name.startswith("past_key_values"):
                    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
                    feed[inp.name] = np.zeros((1, dims[1], 0, dims[3]), np.float32)
                else:
                    feed[inp.name] = window[None, :].astype(np.int64)
            self.feeds.append(feed)
        self.pos = 0

    def get_next(self):
        if self.pos >= len(self.feeds):
            return None
        self.pos += 1
        return self.feeds[self.pos - 1]

    def rewind(self):
        self.pos = 0

    def __iter__(self):  # the GPTQ path iterates the reader
        return iter(self.feeds)


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--block-size", type=int, default=32)
    p.add_argument("--symmetric", action="store_true")
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--accuracy-level", type=int, default=4)
    p.add_argument("--algo", default="rtn", choices=["rtn", "gptq"])
    p.add_argument("--calib-ids")
    p.add_argument("--calib-samples", type=int, default=128)
    p.add_argument("--seq-len", type=int, default=256)
    a = p.parse_args(argv)
    t0 = time.monotonic()  # load to save, as `llmcompress quantize` is timed
    model = onnx.load(a.src)
    if a.algo == "rtn":
        cfg = mnq.DefaultWeightOnlyQuantConfig(block_size=a.block_size, is_symmetric=a.symmetric,
                                               accuracy_level=a.accuracy_level, bits=a.bits)
    else:
        reader = IdsReader(model, np.load(a.calib_ids), a.calib_samples, a.seq_len)
        cfg = mnq.GPTQWeightOnlyQuantConfig(calibration_data_reader=reader, block_size=a.block_size)
    q = mnq.MatMulNBitsQuantizer(model, bits=a.bits, block_size=a.block_size, is_symmetric=a.symmetric,
                                 algo_config=cfg, accuracy_level=a.accuracy_level)
    q.process()
    q.model.save_model_to_file(a.dst, False)
    print(f"{time.monotonic() - t0:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
