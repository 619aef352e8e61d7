"""Shared by the check scripts: where the pretrained models are, failing with one line, and
running the llmcompress CLI (commands, and `run` on numpy inputs)."""
import os
import subprocess
import sys


def default_models():
    """$LLMC_MODELS, else the cache scripts/setup.sh fills (~/.cache/llmcompress/models)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("LLMC_MODELS") or os.path.join(cache, "llmcompress", "models")


def fail(msg):
    print(f"{os.path.basename(sys.argv[0])}: {msg}", file=sys.stderr)
    sys.exit(1)


def cli(bin_path, *args):
    """stdout of `llmcompress ARGS`; fails the script when the command does."""
    r = subprocess.run([bin_path, *args], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"llmcompress {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def run_outputs(bin_path, model, feeds, tmp, tag):
    """`llmcompress run MODEL` on `feeds` ({name: numpy array}, saved as TMP/TAG.NAME.npy): its
    outputs as {name: array}, read back from TMP/TAG/."""
    import numpy as np  # the model-free helpers above work without numpy
    out = os.path.join(tmp, tag)
    args = ["run", model, "--output-dir", out]
    for name, value in feeds.items():
        path = os.path.join(tmp, f"{tag}.{name}.npy")
        np.save(path, value)
        args += ["--input", f"{name}={path}"]
    cli(bin_path, *args)
    return {f[:-4]: np.load(os.path.join(out, f)) for f in os.listdir(out)}
