#!/usr/bin/env bash
# Configures build-asan/: clang with AddressSanitizer + UBSan (every UB fatal) and libFuzzer
# coverage instrumentation, the fuzz targets (fuzz/) and the unit tests. Used by scripts/fuzz.sh
# and scripts/test_sanitizers.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link -fno-omit-frame-pointer -gline-tables-only -O1"
if [[ ! -f "$root/build-asan/CMakeCache.txt" ]]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$root/build-asan" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DLLMC_FUZZ=ON
fi
