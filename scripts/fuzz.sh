#!/usr/bin/env bash
# Runs every libFuzzer target in fuzz/ for SECONDS each (default 60) under AddressSanitizer and
# UBSan, starting from seeds made from the real data (scripts/fuzz_seeds.py), and prints one row
# per target. Exit 1 on any finding; the crashing input is kept in build-asan/fuzz-findings/.
# Corpora grow in build-asan/fuzz-corpus/ across runs; fuzz/regressions/<target>/ holds inputs
# that once failed (each fixed), replayed every run. A nightly-length run: scripts/fuzz.sh 600.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]    (replay only: SECONDS=0 runs the corpora once)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(onnx_reader llama2c npy gguf safetensors json_tokenizer run_model recipe)
build="$root/build-asan"
"$root/scripts/configure_asan.sh" >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null
if [[ -z "${LLMC_DATA:-}" && -d "$root/../shared/data" ]]; then
  export LLMC_DATA=$(cd "$root/../shared/data" && pwd)
fi
"$root/.venv/bin/python" "$root/scripts/fuzz_seeds.py" "$build/fuzz-seeds" "$root"
mkdir -p "$build/fuzz-findings"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TMPDIR=$(mktemp -d)
trap 'rm -rf "$TMPDIR"' EXIT
failed=0
printf '%-16s %10s %9s %8s %6s  %s\n' target runs exec/s corpus cover result
for t in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$t"
  mkdir -p "$corpus"
  log="$build/fuzz-$t.log"
  args=(-rss_limit_mb=3072 -malloc_limit_mb=2048 -timeout=30 -print_final_stats=1
        -artifact_prefix="$build/fuzz-findings/$t-")
  if [[ $seconds -eq 0 ]]; then
    args+=(-runs=0)
  else
    args+=(-max_total_time="$seconds")
  fi
  result=ok
  dirs=("$corpus" "$build/fuzz-seeds/$t")
  [[ -d "$root/fuzz/regressions/$t" ]] && dirs+=("$root/fuzz/regressions/$t")  # inputs that once crashed
  if ! "$build/fuzz_$t" "${args[@]}" "${dirs[@]}" >"$log" 2>&1; then
    result="FINDING (see $log)"
    failed=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  size=$(ls "$corpus" | wc -l)
  printf '%-16s %10s %9s %8s %6s  %s\n' "$t" "$runs" "$rate" "$size" "$cov" "$result"
done
exit $failed
