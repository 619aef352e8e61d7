#!/usr/bin/env bash
# Round trip of every .onnx under $LLMC_DATA through `llmcompress convert` (inline, and with
# --external-data for the larger ones), judged by scripts/check_roundtrip.py (onnx checker,
# ONNX Runtime, bit-exact weights). Usage: check_roundtrip.sh PATH/TO/llmcompress
set -euo pipefail
bin=${1:?usage: check_roundtrip.sh PATH/TO/llmcompress}
here=$(cd "$(dirname "$0")" && pwd)
py="$here/../.venv/bin/python"
if [[ -z "${LLMC_DATA:-}" || ! -d "${LLMC_DATA}" ]]; then
  echo "LLMC_DATA is not set or missing" >&2
  [[ "${CI:-}" == "true" ]] && exit 1
  echo "SKIPPED (set LLMC_DATA=../shared/data)"; exit 0
fi
[[ -x "$py" ]] || { echo "missing $py: run scripts/setup.sh" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pairs=()
n=0
while IFS= read -r -d '' f; do
  n=$((n + 1))
  dst="$out/$n/$(basename "$f")"
  mkdir -p "$out/$n"
  "$bin" convert "$f" -o "$dst" >/dev/null
  pairs+=("$f=$dst")
  if [[ $(stat -c %s "$f") -gt 100000 ]]; then
    mkdir -p "$out/$n/ext"
    "$bin" convert "$f" -o "$out/$n/ext/model.onnx" --external-data >/dev/null
    [[ -f "$out/$n/ext/model.onnx.data" ]] || { echo "no external data written for $f" >&2; exit 1; }
    pairs+=("$f=$out/$n/ext/model.onnx")
  fi
done < <(find "$LLMC_DATA" -name '*.onnx' -print0 | sort -z)
[[ $n -gt 0 ]] || { echo "no .onnx files under $LLMC_DATA" >&2; exit 1; }
# Models we generate: the llama2.c import, inline and with external data.
"$bin" convert "$LLMC_DATA/llama2c/stories260K.bin" --tokenizer "$LLMC_DATA/llama2c/tok512.bin" \
  -o "$out/stories260K.onnx" >/dev/null
mkdir -p "$out/stories_ext"
"$bin" convert "$out/stories260K.onnx" -o "$out/stories_ext/stories260K.onnx" --external-data >/dev/null
pairs+=("=$out/stories260K.onnx" "$out/stories260K.onnx=$out/stories_ext/stories260K.onnx")
"$py" "$here/check_roundtrip.py" "${pairs[@]}"
