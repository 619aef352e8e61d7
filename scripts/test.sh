#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test through ctest, then the sanitizer job
# (scripts/test_sanitizers.sh: an ASan + UBSan build, the [hostile] tests, fuzz corpus replay and
# 10 s of fuzzing per target). SKIP_SANITIZERS=1 stops after ctest (a quick local run).
# Real data: $LLMC_DATA (default: ../shared/data beside the checkout when it exists).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
if [[ -z "${LLMC_DATA:-}" && -d "$root/../shared/data" ]]; then
  export LLMC_DATA=$(cd "$root/../shared/data" && pwd)
fi
"$root/scripts/build.sh"
(cd "$root/build" && ctest --output-on-failure -j "$(nproc)")
[[ ${SKIP_SANITIZERS:-0} == 1 ]] || "$root/scripts/test_sanitizers.sh"
