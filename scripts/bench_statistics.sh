#!/usr/bin/env bash
# Activation-statistics service: memory and time for abs-max, mean |x|, L2 norms and the float64
# Gram matrix of every MatMul input with a constant weight of the synthetic Llama-110M (49
# values) over S TinyStories windows of 256 tokens, for S = 16, 32 and 128 (one process each,
# `llmcompress stats`). Prints weight bytes, Gram bytes, peak RSS (the process's own getrusage
# figure, and /usr/bin/time's as a cross-check), peak / (weights + Grams) and seconds.
# Gates (issue 10): at 32 samples peak < 1.3 x (weights + Grams); peak at 128 samples within 5%
# of the peak at 16. Exit 1 when one fails.
# Usage: scripts/bench_statistics.sh [--threads N] [--samples "16 32 128"] [--model FILE.onnx]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
threads=0; samples="16 32 128"; model=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
data=${LLMC_DATA:-}
[[ -n "$data" && -f "$data/corpora/tinystories_val_prefix.txt" ]] || { echo "set LLMC_DATA to the shared data directory" >&2; exit 2; }
bin="$root/build/llmcompress"
[[ -x "$bin" ]] || "$root/scripts/build.sh" >/dev/null
work="$root/build/bench"
mkdir -p "$work"
if [[ -z "$model" ]]; then
  model="$work/llama-110m.onnx"
  [[ -f "$model" ]] || "$bin" synth --preset llama-110m --seed 0 -o "$model" >/dev/null
fi

results=()
for n in $samples; do
  out="$work/stats_$n.json"
  /usr/bin/time -f "%M" -o "$work/stats_$n.time" "$bin" stats "$model" --threads "$threads" \
    --calib "$data/corpora/tinystories_val_prefix.txt" --tokenizer "$data/llama2c/tok512.bin" \
    --calib-samples "$n" --calib-seq-len 256 --json > "$out"
  results+=("$n:$out:$work/stats_$n.time")
done

python3 - "${results[@]}" <<'EOF'
import json, sys
rows = []
for arg in sys.argv[1:]:
    n, path, time_path = arg.split(":")
    j = json.load(open(path))
    time_kb = int(open(time_path).read().split()[-1])
    rows.append((int(n), j, time_kb * 1024))
mb = lambda b: b / 1e6
print(f"{'samples':>7} {'weights MB':>10} {'Grams MB':>9} {'peak RSS MB':>11} {'(time -v)':>9} "
      f"{'peak/(w+G)':>10} {'measure s':>9} {'load s':>6}")
for n, j, time_rss in rows:
    print(f"{n:>7} {mb(j['weight_bytes']):>10.1f} {mb(j['gram_bytes']):>9.1f} {mb(j['peak_rss_bytes']):>11.1f} "
          f"{mb(time_rss):>9.1f} {j['peak_over_weights_and_grams']:>10.3f} {j['measure_seconds']:>9.2f} "
          f"{j['load_seconds']:>6.2f}")
ok = True
by_n = {n: j for n, j, _ in rows}
if 32 in by_n and by_n[32]["peak_over_weights_and_grams"] >= 1.3:
    print("FAIL: peak RSS at 32 samples is not below 1.3x (weights + Grams)"); ok = False
if 16 in by_n and 128 in by_n:
    growth = by_n[128]["peak_rss_bytes"] / by_n[16]["peak_rss_bytes"] - 1
    print(f"peak RSS growth from 16 to 128 samples: {100 * growth:+.1f}%")
    if growth > 0.05:
        print("FAIL: peak RSS grows with the number of samples"); ok = False
sys.exit(0 if ok else 1)
EOF
