"""Shared by the check scripts: where the pretrained models are, failing with one line, and
running the llmcompress CLI."""
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
