#!/usr/bin/env bash
# The folder layering of DESIGN.md's table "Folders and what each may depend on", checked on
# #include lines. Every target has the repository root on its include path, so the linker alone
# cannot stop, say, calibration/ from including a formats/ header; this check can. tools/ and
# tests/ may use everything and are not checked.
# Usage: check_layering.sh [ROOT]   (ROOT defaults to this repository). Exit 1 on a violation.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

ours=(ir formats runtime calibration passes tools tests)
declare -A may_use=(
  [ir]=""
  [formats]="ir"
  [runtime]="ir"
  [calibration]="ir runtime"
  [passes]="ir calibration runtime"
)

status=0
for folder in ir formats runtime calibration passes; do
  [[ -d $folder ]] || continue
  for dep in "${ours[@]}"; do
    [[ $dep == "$folder" || " ${may_use[$folder]} " == *" $dep "* ]] && continue
    # Quoted or angled, with or without a ../ prefix.
    rc=0
    hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<](\.\./)*$dep/" "$folder") || rc=$?
    if [[ $rc == 0 ]]; then
      echo "layering: $folder/ may not include $dep/ (it may use: ${may_use[$folder]:-std only}):"
      echo "$hits" | sed 's/^/  /'
      status=1
    elif [[ $rc != 1 ]]; then
      echo "layering: grep failed on $folder/" >&2
      exit 2
    fi
  done
done
[[ $status == 0 ]] && echo "layering: ok (ir, formats, runtime, calibration, passes include only what DESIGN.md allows)"
exit $status
