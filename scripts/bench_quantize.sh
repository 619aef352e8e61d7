#!/usr/bin/env bash
# Quantisation speed table, measured side by side in one run on the synthetic Llama-110M:
#  - decode/prefill of our FP32, int8-dynamic and fp16 artifacts in our runtime, and of the same
#    artifacts in ONNX Runtime (ratios: ours int8 vs ours FP32, ours vs ORT on the same file);
#  - the quantize command itself: wall time vs copying the model file, peak RSS vs file size.
# Every artifact is measured in each of --rounds rounds (ours on every artifact, then ORT on
# each), and the table shows per-artifact medians: this VM's memory bandwidth swings by up to
# 1.7x within a minute, which a single sequential pass turns into fake speed-ups. Ratios to our
# fp32 are per round (our runs are adjacent), then the median.
# Usage: scripts/bench_quantize.sh [--threads N] [--tokens N] [--rounds N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
threads=$(nproc); tokens=32; prompt=128; rounds=5
while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >/dev/null
bin="$root/build/llmcompress"
py="$root/.venv/bin/python"
work="$root/build/bench"
mkdir -p "$work"
fp32="$work/llama-110m.onnx"
[[ -f "$fp32" ]] || "$bin" synth --preset llama-110m --seed 0 -o "$fp32" >/dev/null

# The quantize command vs a plain copy of the same file (page cache warm for both), alternated
# three times; medians, since single timings on a shared machine vary by 2x.
cat "$fp32" >/dev/null
copies=(); quants=(); q_rss_kb=0
for _ in 1 2 3; do
  t0=$(date +%s.%N); cp "$fp32" "$work/copy.onnx"; sync "$work/copy.onnx"; t1=$(date +%s.%N)
  copies+=("$(echo "$t1 - $t0" | bc -l)"); rm -f "$work/copy.onnx"
  /usr/bin/time -f '%e %M' -o "$work/q_time.txt" "$bin" quantize "$fp32" -o "$work/llama-110m.int8.onnx" --mode int8-dynamic >/dev/null
  read -r q_s rss < "$work/q_time.txt"; quants+=("$q_s"); (( rss > q_rss_kb )) && q_rss_kb=$rss
done
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
copy_s=$(median "${copies[@]}"); q_s=$(median "${quants[@]}")
has_fp16=0
if "$bin" quantize --help | grep -q fp16; then
  "$bin" quantize "$fp32" -o "$work/llama-110m.fp16.onnx" --mode fp16 >/dev/null && has_fp16=1
fi

# int8-static (QDQ) with calibration windows of the TinyStories text through the real llama2.c
# tokenizer (the synthetic model's vocabulary covers its ids); our runtime folds QDQ pairs
# around each MatMul into one integer product.
data=${LLMC_DATA:-$root/../shared/data}
static=""
if [[ -f "$data/corpora/tinystories_val_prefix.txt" ]]; then
  "$bin" quantize "$fp32" -o "$work/llama-110m.static.onnx" --mode int8-static --method minmax \
    --calib "$data/corpora/tinystories_val_prefix.txt" --tokenizer "$data/llama2c/tok512.bin" --calib-samples 8 >/dev/null
  static="$work/llama-110m.static.onnx"
fi

models=("$fp32" "$work/llama-110m.int8.onnx")
[[ $has_fp16 == 1 ]] && models+=("$work/llama-110m.fp16.onnx")
[[ -n $static ]] && models+=("$static")
# Each round runs our runtime on every artifact back to back, then ONNX Runtime on each: the
# ratios to our fp32 are taken within a round (runs seconds apart, in the same memory phase)
# and their median reported; mixing phases across rounds would measure the machine instead.
rows=()
for ((r = 0; r < rounds; r++)); do
  declare -A ours_of=()
  for model in "${models[@]}"; do
    ours_of[$model]=$("$bin" bench "$model" --threads "$threads" --prompt-len "$prompt" --tokens "$tokens" --json)
  done
  for model in "${models[@]}"; do
    theirs=$("$py" "$root/scripts/ort_bench.py" "$model" --threads "$threads" --prompt-len "$prompt" --tokens "$tokens" 2>/dev/null || echo '{}')
    rows+=("$(basename "$model" .onnx)|${ours_of[$model]}|$theirs")
  done
  unset ours_of
done
size=$(stat -c %s "$fp32")
"$py" - "$copy_s" "$q_s" "$q_rss_kb" "$size" "${rows[@]}" <<'PY'
import json, sys
copy_s, q_s, q_rss_kb, size = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
from statistics import median
runs = {}  # artifact -> list of (ours, theirs) per round, in first-seen order
for r in sys.argv[5:]:
    name, ours, theirs = r.split("|")
    runs.setdefault(name, []).append((json.loads(ours), json.loads(theirs)))
def med(name, side, key):
    vals = [run[side].get(key) for run in runs[name] if run[side].get(key) is not None]
    return median(vals) if vals else None
names = list(runs)
def round_ratios(name):  # our fp32 decode / this artifact's, per round (same memory phase)
    return [b[0]["decode_ms_p50"] / a[0]["decode_ms_p50"] for a, b in zip(runs[name], runs[names[0]])]
print(f"medians of {len(runs[names[0]])} interleaved rounds ('vs our fp32': median of per-round ratios, range in brackets)")
print(f"{'artifact':<22}{'weights MB':>11}{'prefill ms':>11}{'decode ms':>10}{'vs our fp32':>12}{'(range)':>14}{'ORT decode':>11}{'ours/ORT':>9}")
for name in names:
    o0 = runs[name][0][0]
    dec, ort_dec = med(name, 0, "decode_ms_p50"), med(name, 1, "decode_ms_p50")
    rr = round_ratios(name)
    print(f"{name:<22}{o0['model_bytes']/1e6:>11.1f}{med(name, 0, 'prefill_ms'):>11.1f}{dec:>10.2f}{median(rr):>11.2f}x"
          + f"{f'({min(rr):.2f}-{max(rr):.2f})':>14}"
          + (f"{ort_dec:>11.2f}{dec/ort_dec:>9.2f}" if ort_dec else f"{'n/a':>11}{'':>9}"))
print(f"  {names[0]} decode ms per round: " + " ".join(f"{r[0]['decode_ms_p50']:.2f}" for r in runs[names[0]]))
for name in names[1:]:
    print(f"  {name} vs our fp32 per round: " + " ".join(f"{x:.2f}" for x in round_ratios(name)))
print(f"quantize int8-dynamic: {q_s:.2f} s vs copying the file {copy_s:.2f} s ({q_s/copy_s:.2f}x); "
      f"peak RSS {q_rss_kb/1024:.0f} MB vs file {size/1e6:.0f} MB ({q_rss_kb*1024/size:.2f}x)")
print("'vs our fp32' is speed-up (higher is better); ours/ORT < 1 means we decode faster on the same artifact.")
PY
