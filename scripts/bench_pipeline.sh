#!/usr/bin/env bash
# Quantising speed through the pipeline, one table from one run on the synthetic Llama-110M
# (float32, 537 MB): copies of the input file against `llmcompress quantize --mode int8-dynamic`
# and `--mode fp16`, in rounds that interleave all of them (the order rotates every round; this
# VM's memory and disk speed drift within seconds, so only same-round comparisons count).
#
# Baselines, each timed alone:
#   cp            cp over the copy of the previous round (how the issue timed `cp`: 0.43-0.48 s)
#   cp new file   cp to a file that does not exist (page cache only, nothing freed first)
#   cp + sync     cp to a new file, then `sync FILE` (durable, as quantize's output is: it fsyncs)
# quantize writes over its previous round's output, as a re-run does. A warm-up round (not
# timed) creates every output first.
# Reported per command: median wall time, the median of its per-round ratio to each copy, peak
# RSS (/usr/bin/time %M, the maximum over rounds) and its ratio to the input file, and from the
# pipeline's --json report the median seconds of load, pass, write and hash wait, and the
# pipeline overhead: wall - (load + pass + write), as a fraction of wall (process start and
# exit, the wait for the input's SHA-256 when it outlasts the pass and the write, verify, the
# manifest).
# Run it under the shared lock: flock /tmp/llmc_build.lock scripts/bench_pipeline.sh
# Usage: scripts/bench_pipeline.sh [--rounds N] [--threads N] [--model FILE.onnx]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=7; threads=0; model=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
"$root/scripts/build.sh" >/dev/null
bin="$root/build/llmcompress"
work="$root/build/bench"
mkdir -p "$work"
if [[ -z $model ]]; then
  model="$work/llama-110m.onnx"
  [[ -f "$model" ]] || "$bin" synth --preset llama-110m --seed 0 -o "$model" >/dev/null
fi
py=python3
[[ -x "$root/.venv/bin/python" ]] && py="$root/.venv/bin/python"
cat "$model" >/dev/null  # page cache warm for every command alike

log="$work/pipeline_runs.tsv"
names=(cp "cp new file" "cp + sync" int8-dynamic fp16)
# One timed command; with a log, one line of it: round, name, wall s, peak RSS KB, --json report.
run() {
  local name=$1
  case $name in
    cp) set -- cp "$model" "$work/copy.onnx" ;;
    "cp new file") rm -f "$work/copy_new.onnx"; set -- cp "$model" "$work/copy_new.onnx" ;;
    "cp + sync") rm -f "$work/copy_sync.onnx"
                 set -- sh -c 'cp "$1" "$2" && sync "$2"' sh "$model" "$work/copy_sync.onnx" ;;
    int8-dynamic|fp16) set -- "$bin" quantize "$model" -o "$work/$name.onnx" --mode "$name" --threads "$threads" --json ;;
  esac
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >"$work/report.json" 2>/dev/null
  read -r wall rss_kb <"$work/time.txt"
  if [[ -n ${round:-} ]]; then
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$wall" "$rss_kb" "$(tr -d '\n' <"$work/report.json")" >>"$log"
  fi
}
for name in "${names[@]}"; do run "$name"; done  # warm-up: every output exists from here on
: >"$log"
for ((round = 0; round < rounds; ++round)); do
  for ((k = 0; k < ${#names[@]}; ++k)); do run "${names[(round + k) % ${#names[@]}]}"; done
done
rm -f "$work/copy.onnx" "$work/copy_new.onnx" "$work/copy_sync.onnx"

"$py" - "$log" "$(stat -c %s "$model")" "$rounds" <<'PY'
import json, statistics, sys
log, file_bytes, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = {}
for line in open(log):
    rnd, name, wall, rss, report = line.rstrip("\n").split("\t", 4)
    runs.setdefault(name, {})[int(rnd)] = (float(wall), int(rss) * 1024, json.loads(report) if report else None)
med = statistics.median
copies = ("cp", "cp new file", "cp + sync")
print(f"input {file_bytes / 1e6:.1f} MB, {rounds} interleaved rounds; medians (peak RSS: maximum)")
print()
print("| command | wall s | vs cp | vs cp new file | vs cp + sync | peak RSS MB | vs file "
      "| load s | pass s | write s | hash wait s | overhead |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for name in copies + ("int8-dynamic", "fp16"):
    r = runs[name]
    cells = [name, f"{med(w for w, _, _ in r.values()):.3f}"]
    cells += [f"{med(r[k][0] / runs[c][k][0] for k in r):.2f}x" for c in copies]
    rss = max(m for _, m, _ in r.values())
    cells += [f"{rss / 1e6:.0f}", f"{rss / file_bytes:.2f}x"]
    reports = [(w, j) for w, _, j in r.values() if j]
    if reports:
        def phases(j):
            return j["load_seconds"] + sum(s["seconds"] for s in j["steps"]) + j["write_seconds"]
        cells += [f"{med(j['load_seconds'] for _, j in reports):.3f}",
                  f"{med(sum(s['seconds'] for s in j['steps']) for _, j in reports):.3f}",
                  f"{med(j['write_seconds'] for _, j in reports):.3f}",
                  f"{med(j['hash_wait_seconds'] for _, j in reports):.3f}",
                  f"{100 * med((w - phases(j)) / w for w, j in reports):.1f}%"]
    else:
        cells += [""] * 5
    print("| " + " | ".join(cells) + " |")
PY
