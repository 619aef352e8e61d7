#!/usr/bin/env bash
# Honest test discovery: every ctest entry must be one Catch2 test case or one script test
# declared with add_test(NAME ...) in CMakeLists.txt, and every test case must have its entry.
# A test name that catch_discover_tests splits (Catch2 2.13 splits at ';') gives more entries
# than test cases; a lost discovery gives fewer. Either fails here instead of passing silently.
# Usage: check_test_count.sh SOURCE_DIR BUILD_DIR TEST_BINARY
set -euo pipefail
src=$1 build=$2 bin=$3
# Catch2 2.13 exits with the number of tests listed, so its status says nothing here.
names=$("$bin" --list-test-names-only) || true
cases=$(grep -c . <<<"$names" || true)
scripts=$(grep -c '^\s*add_test(NAME' "$src/CMakeLists.txt")
entries=$(cd "$build" && ctest -N | sed -n 's/^Total Tests: //p')
if [[ "$entries" != $((cases + scripts)) ]]; then
  echo "check_test_count: ctest has $entries entries, expected $cases Catch2 test cases + $scripts script tests" >&2
  exit 1
fi
echo "ctest entries $entries = $cases Catch2 test cases + $scripts script tests"
