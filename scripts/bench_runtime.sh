#!/usr/bin/env bash
# Runtime speed and memory, ours vs ONNX Runtime, measured side by side in one run.
# Models: the synthetic Llama-110M (llmcompress synth) and the real stories260K.
# Prints one table: prefill ms, decode ms/token (p50), ratios ours/ORT, and decode time over
# the bandwidth floor (weight bytes / measured memory read bandwidth).
# Usage: scripts/bench_runtime.sh [--threads N] [--prompt-len N] [--tokens N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
threads=$(nproc); prompt=128; tokens=32
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
data=${LLMC_DATA:-$root/../shared/data}
bin="$root/build/llmcompress"
py="$root/.venv/bin/python"
work="$root/build/bench"
mkdir -p "$work"
[[ -f "$work/llama-110m.onnx" ]] || "$bin" synth --preset llama-110m --seed 0 -o "$work/llama-110m.onnx" >/dev/null
"$bin" convert "$data/llama2c/stories260K.bin" --tokenizer "$data/llama2c/tok512.bin" -o "$work/stories260K.onnx" >/dev/null

bw=$("$bin" bench --memory-bandwidth --threads "$threads" --json)
echo "machine: $(nproc) cores, threads used: $threads, $(echo "$bw" | "$py" -c 'import json,sys; print("memory read bandwidth %.1f GB/s" % (json.load(sys.stdin)["read_bandwidth_bytes_per_s"]/1e9))')"
rows=()
for model in "$work/llama-110m.onnx" "$work/stories260K.onnx"; do
  ours=$(/usr/bin/time -f '%M' -o "$work/rss.txt" "$bin" bench "$model" --threads "$threads" --prompt-len "$prompt" --tokens "$tokens" --json)
  theirs=$("$py" "$root/scripts/ort_bench.py" "$model" --threads "$threads" --prompt-len "$prompt" --tokens "$tokens")
  rows+=("$(basename "$model" .onnx)|$ours|$theirs|$(cat "$work/rss.txt")")
done
"$py" - "$bw" "${rows[@]}" <<'PY'
import json, sys
bw = json.loads(sys.argv[1])["read_bandwidth_bytes_per_s"]
print(f"{'model':<14}{'weights MB':>11}{'prefill ms':>12}{'ORT':>9}{'ours/ORT':>10}"
      f"{'decode ms':>11}{'ORT':>8}{'ours/ORT':>10}{'floor ms':>10}{'ours/floor':>11}{'RSS/(W+KV)':>12}")
for row in sys.argv[2:]:
    name, ours, theirs, rss_kb = row.split("|")
    o, t = json.loads(ours), json.loads(theirs)
    floor = o["model_bytes"] / bw * 1e3
    rss_ratio = int(rss_kb) * 1024 / (o["model_bytes"] + o["kv_cache_bytes"])
    print(f"{name:<14}{o['model_bytes']/1e6:>11.1f}{o['prefill_ms']:>12.2f}{t['prefill_ms']:>9.2f}"
          f"{o['prefill_ms']/t['prefill_ms']:>10.2f}{o['decode_ms_p50']:>11.3f}{t['decode_ms_p50']:>8.3f}"
          f"{o['decode_ms_p50']/t['decode_ms_p50']:>10.2f}{floor:>10.3f}{o['decode_ms_p50']/floor:>11.2f}{rss_ratio:>12.2f}")
print("prefill/decode ratios < 1 mean we are faster than ONNX Runtime; ours/floor is decode time over"
      " weight bytes / bandwidth; RSS is the peak of the whole `bench` process.")
PY
