#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test through ctest.
# Real data: $LLMC_DATA (default: ../shared/data beside the checkout when it exists).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
if [[ -z "${LLMC_DATA:-}" && -d "$root/../shared/data" ]]; then
  export LLMC_DATA=$(cd "$root/../shared/data" && pwd)
fi
"$root/scripts/build.sh"
cd "$root/build"
ctest --output-on-failure -j "$(nproc)"
