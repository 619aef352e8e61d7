#!/usr/bin/env bash
# Our runtime (`llmcompress run`) against ONNX Runtime on every .onnx under $LLMC_DATA, the
# llama2.c stories260K import, and a small GPT exported by PyTorch at opsets 14 and 17, judged
# output by output by scripts/ort_compare.py. gpt2_past.onnx, bert_toy_optimized.onnx, both GPT
# exports and stories260K must be claimed by our runtime (have every kernel) and match.
# Usage: check_runtime_vs_ort.sh PATH/TO/llmcompress
set -euo pipefail
bin=${1:?usage: check_runtime_vs_ort.sh PATH/TO/llmcompress}
here=$(cd "$(dirname "$0")" && pwd)
py="$here/../.venv/bin/python"
torch_py=/usr/bin/python3   # Debian's python3-torch (scripts/setup.sh installs it)
if [[ -z "${LLMC_DATA:-}" || ! -d "${LLMC_DATA}" ]]; then
  echo "LLMC_DATA is not set or missing" >&2
  [[ "${CI:-}" == "true" ]] && exit 1
  echo "SKIPPED (set LLMC_DATA=../shared/data)"; exit 0
fi
[[ -x "$py" ]] || { echo "missing $py: run scripts/setup.sh" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

models=()
while IFS= read -r -d '' f; do models+=("$f"); done < <(find "$LLMC_DATA" -name '*.onnx' -print0 | sort -z)
[[ ${#models[@]} -gt 0 ]] || { echo "no .onnx files under $LLMC_DATA" >&2; exit 1; }

"$bin" convert "$LLMC_DATA/llama2c/stories260K.bin" --tokenizer "$LLMC_DATA/llama2c/tok512.bin" \
  -o "$out/stories260K.onnx" >/dev/null
models+=("$out/stories260K.onnx")
required=(gpt2_past.onnx bert_toy_optimized.onnx stories260K.onnx)

if "$torch_py" -c "import torch" >/dev/null 2>&1; then
  for opset in 14 17; do
    "$torch_py" "$here/export_gpt_torch.py" "$out/gpt_torch_opset$opset.onnx" --opset "$opset" >/dev/null
    models+=("$out/gpt_torch_opset$opset.onnx")
    required+=("gpt_torch_opset$opset.onnx")
  done
else
  echo "$torch_py cannot import torch (apt-get install python3-torch, or run scripts/setup.sh)" >&2
  [[ "${CI:-}" == "true" ]] && exit 1
  echo "SKIPPED the PyTorch GPT exports"
fi

"$py" "$here/ort_compare.py" "$bin" "${models[@]}" --require-claimed "${required[@]}"
