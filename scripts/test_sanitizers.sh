#!/usr/bin/env bash
# The AddressSanitizer + UBSan job, run by scripts/test.sh after the release tests: builds
# build-asan/ (scripts/configure_asan.sh; a clean build takes ~7 minutes on 2 cores), runs the
# [hostile] unit tests under the sanitizers (llmc_hostile_tests, a reduced set: the readers'
# real-model tests take over 10 minutes under ASan; the [ulimit] ones cannot run there, ASan reserves terabytes of
# address space), replays the fuzz corpora (seeds from the real data + fuzz/regressions/), then
# fuzzes every target for FUZZ_SECONDS (default 10) each.
# Exit 1 on any sanitizer report, failed test or fuzz finding.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz_seconds=${FUZZ_SECONDS:-10}
if [[ -z "${LLMC_DATA:-}" && -d "$root/../shared/data" ]]; then
  export LLMC_DATA=$(cd "$root/../shared/data" && pwd)
fi
"$root/scripts/configure_asan.sh" >/dev/null
targets=(llmcompress llmc_hostile_tests fuzz_onnx_reader fuzz_llama2c fuzz_npy fuzz_gguf fuzz_safetensors
         fuzz_json_tokenizer fuzz_run_model fuzz_recipe)
cmake --build "$root/build-asan" -j "$(nproc)" --target "${targets[@]}" >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
tags="[hostile]~[ulimit]"
echo "unit tests under ASan + UBSan: $tags"
(cd "$root/build-asan" && ./llmc_hostile_tests "$tags" -w NoTests | tail -3)
echo "fuzz corpora replayed, then ${fuzz_seconds} s of fuzzing per target:"
"$root/scripts/fuzz.sh" 0
"$root/scripts/fuzz.sh" "$fuzz_seconds"
