#!/usr/bin/env bash
# Installs, builds, and runs the main job on the default model (stories260K from $LLMC_DATA):
# import the llama2.c checkpoint with its tokenizer into ONNX, inspect it, generate text,
# quantise it to int8 (perplexity before/after measured by our runtime), check that ONNX
# Runtime loads the artifact, compare the two models, and run an example recipe through
# `pipeline` (SmoothQuant + static int8 with asserts). Artifacts go to out/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >/dev/null
data=${LLMC_DATA:-$root/../shared/data}
export LLMC_DATA=$(cd "$data" && pwd)  # the example recipes name their files through it
bin="$root/build/llmcompress"
out="$root/out"
mkdir -p "$out"
set -x
"$bin" convert "$data/llama2c/stories260K.bin" --tokenizer "$data/llama2c/tok512.bin" -o "$out/stories260K.onnx"
"$bin" inspect "$out/stories260K.onnx" --top 5
"$bin" run "$out/stories260K.onnx" --prompt "Once upon a time" --tokens 60
"$bin" quantize "$out/stories260K.onnx" -o "$out/stories260K.int8.onnx" --mode int8-dynamic \
  --eval "$data/corpora/tinystories_val_prefix.txt" --eval-limit 20000
"$root/.venv/bin/python" "$root/scripts/ort_run.py" "$out/stories260K.int8.onnx" --list >/dev/null && echo "ONNX Runtime loads $out/stories260K.int8.onnx"
"$bin" tokenize "$out/stories260K.onnx" --file "$data/corpora/tinystories_val_prefix.txt" -o "$out/tinystories_ids.npy"
"$bin" eval "$out/stories260K.onnx" --compare "$out/stories260K.int8.onnx" --tokens "$out/tinystories_ids.npy" --limit 20000
"$bin" run "$out/stories260K.int8.onnx" --prompt "Once upon a time" --tokens 60
# A recipe as CI runs it: SmoothQuant then static int8, gated on perplexity, agreement and size.
"$bin" pipeline "$root/recipes/stories260k_int8_static.yaml" -o "$out/stories260K.qdq.onnx"
