#!/usr/bin/env bash
# Lists the tests of the last ctest run in BUILD_DIR that were skipped, with the reason each gave
# (GTEST_SKIP's message), so a smaller suite never passes unnoticed. Usage: tools/print-skipped.sh BUILD_DIR
set -euo pipefail
log="${1:?usage: print-skipped.sh BUILD_DIR}/Testing/Temporary/LastTest.log"
[ -f "$log" ] || { echo "print-skipped: no $log (has ctest run in ${1}?)" >&2; exit 1; }
awk '
  /^[0-9]+\/[0-9]+ Test: / { name = $3; reason = ""; want = 0; next }
  want == 1 { reason = $0; want = 0 }
  /: Skipped$/ { want = 1 }
  /^\[  SKIPPED \] / && name != "" { print "  skipped: " name (reason == "" ? "" : " - " reason); count++; name = "" }
  END { if (count == 0) print "No test was skipped."; else print count " test(s) skipped (above, with the reason each gave)." }
' "$log"
