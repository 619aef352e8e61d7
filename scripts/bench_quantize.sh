#!/usr/bin/env bash
# Quantisation speed table, measured side by side in one run on the synthetic Llama-110M:
#  - decode/prefill of our FP32, int8-dynamic and fp16 artifacts in our runtime, and of the same
#    artifacts in ONNX Runtime (ratios: ours int8 vs ours FP32, ours vs ORT on the same file);
#  - the quantize command itself: wall time vs copying the model file, peak RSS vs file size.
# Ratios to our fp32 come from paired per-token measurements in one process (see below); the
# comparison with ONNX Runtime from medians over --rounds rounds of each artifact alone.
# Usage: scripts/bench_quantize.sh [--threads N] [--tokens N] [--rounds N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
threads=$(nproc); tokens=64; prompt=128; rounds=3
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
# 'vs our fp32': every round runs all our artifacts in one process, interleaved token by token
# (`llmcompress bench A B ...`), so each decoded token of an artifact is paired with the fp32
# token decoded next to it, in the same memory phase (this VM's bandwidth swings 1.7x within
# seconds). The ratios are also shown for the tokens decoded while memory was fastest and
# slowest (the median fp32 time of the 10 neighbouring tokens in its lowest / highest
# quartile): the fast phase is the hard one, as fp32 streams its weights closer to the
# bandwidth limit there.
# 'ours/ORT': each artifact alone in our runtime, then in ONNX Runtime, medians over rounds.
rows=(); inter=()
for ((r = 0; r < rounds; r++)); do
  inter+=("$("$bin" bench "${models[@]}" --threads "$threads" --prompt-len "$prompt" --tokens "$tokens" --json)")
  for model in "${models[@]}"; do
    ours=$("$bin" bench "$model" --threads "$threads" --prompt-len "$prompt" --tokens "$tokens" --json)
    theirs=$("$py" "$root/scripts/ort_bench.py" "$model" --threads "$threads" --prompt-len "$prompt" --tokens "$tokens" 2>/dev/null || echo '{}')
    rows+=("$(basename "$model" .onnx)|$ours|$theirs")
  done
done
size=$(stat -c %s "$fp32")
"$py" - "$copy_s" "$q_s" "$q_rss_kb" "$size" "${#inter[@]}" "${inter[@]}" "${rows[@]}" <<'PY'
import json, os, sys
from statistics import median, quantiles
copy_s, q_s, q_rss_kb, size, n_inter = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
inter = [json.loads(x) for x in sys.argv[6:6 + n_inter]]
runs = {}  # artifact -> list of (ours alone, ORT) per round, in first-seen order
for r in sys.argv[6 + n_inter:]:
    name, ours, theirs = r.split("|")
    runs.setdefault(name, []).append((json.loads(ours), json.loads(theirs)))
def med(name, side, key):
    vals = [run[side].get(key) for run in runs[name] if run[side].get(key) is not None]
    return median(vals) if vals else None
names = list(runs)
# Paired per-token ratios (fp32 token time / artifact token time) from the interleaved runs.
# A token's memory phase: the median fp32 time of its 10 neighbours (not its own, which is in
# the ratio: binning on it would favour tokens whose fp32 step was fast by chance).
pairs = {name: [] for name in names}  # (phase ms, ratio)
for run in inter:
    base = run["models"][0]["decode_ms"]
    phase = [median(base[max(0, i - 5):i] + base[i + 1:i + 6] or [base[i]]) for i in range(len(base))]
    for m in run["models"]:
        name = os.path.basename(m["model"])[:-len(".onnx")]
        pairs[name] += [(p, b / t) for p, b, t in zip(phase, base, m["decode_ms"])]
fp32_ms = sorted(b for run in inter for b in run["models"][0]["decode_ms"])
q1, _, q3 = quantiles(sorted(p for p, _ in pairs[names[0]]), n=4)
def ratio(name, keep=lambda b: True):
    sel = [r for b, r in pairs[name] if keep(b)]
    return median(sel) if sel else float("nan")
print(f"{len(inter)} rounds x {len(pairs[names[0]]) // len(inter)} decoded tokens. 'vs our fp32': median of paired per-token ratios "
      f"(interleaved in one process); fast/slow 25%: tokens whose neighbours' median fp32 time was <= {q1:.2f} / >= {q3:.2f} ms (fastest / slowest memory)")
print(f"{'artifact':<22}{'weights MB':>11}{'prefill ms':>11}{'decode ms':>10}{'vs our fp32':>12}{'fast 25%':>9}{'slow 25%':>9}{'ORT decode':>11}{'ours/ORT':>9}")
for name in names:
    o0 = runs[name][0][0]
    dec, ort_dec = med(name, 0, "decode_ms_p50"), med(name, 1, "decode_ms_p50")
    print(f"{name:<22}{o0['model_bytes']/1e6:>11.1f}{med(name, 0, 'prefill_ms'):>11.1f}{dec:>10.2f}{ratio(name):>11.2f}x"
          f"{ratio(name, lambda b: b <= q1):>8.2f}x{ratio(name, lambda b: b >= q3):>8.2f}x"
          + (f"{ort_dec:>11.2f}{dec/ort_dec:>9.2f}" if ort_dec else f"{'n/a':>11}{'':>9}"))
fq1, fq2, fq3 = quantiles(fp32_ms, n=4)
print(f"  fp32 decode ms per token: quartiles {fq1:.2f} / {fq2:.2f} / {fq3:.2f}, range {fp32_ms[0]:.2f}-{fp32_ms[-1]:.2f}")
print(f"quantize int8-dynamic: {q_s:.2f} s vs copying the file {copy_s:.2f} s ({q_s/copy_s:.2f}x); "
      f"peak RSS {q_rss_kb/1024:.0f} MB vs file {size/1e6:.0f} MB ({q_rss_kb*1024/size:.2f}x)")
print("'vs our fp32' is speed-up (higher is better); ours/ORT < 1 means we decode faster on the same artifact.")
PY
