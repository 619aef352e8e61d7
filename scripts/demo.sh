#!/usr/bin/env bash
# Installs, builds, and runs the main job on the default model (stories260K from $LLMC_DATA):
# import the llama2.c checkpoint with its tokenizer into ONNX, inspect it, tokenize a prompt,
# and check the artifact in ONNX Runtime. Artifacts go to out/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >/dev/null
data=${LLMC_DATA:-$root/../shared/data}
bin="$root/build/llmcompress"
out="$root/out"
mkdir -p "$out"
set -x
"$bin" convert "$data/llama2c/stories260K.bin" --tokenizer "$data/llama2c/tok512.bin" -o "$out/stories260K.onnx"
"$bin" inspect "$out/stories260K.onnx" --top 5
"$bin" tokenize "$out/stories260K.onnx" --text "Once upon a time"
"$bin" tokenize "$out/stories260K.onnx" --file "$data/corpora/tinystories_val_prefix.txt" -o "$out/tinystories_ids.npy"
"$root/.venv/bin/python" "$root/scripts/ort_run.py" "$out/stories260K.onnx" --list
