#!/usr/bin/env bash
# spec-counts.sh: after `ctest`, sum the busted counts of each spec run
# (CTest itself counts files): one line per backend label, e.g.
#   specs iocp: 209 passed, 0 failed, 1 errors, 3 pending (12 files)
#
#   tools/spec-counts.sh <build-dir>
set -euo pipefail
log="${1:?usage: spec-counts.sh <build-dir>}/Testing/Temporary/LastTest.log"
[ -f "$log" ] || { echo "spec-counts: no $log (run ctest first)" >&2; exit 1; }
awk '
  /^[0-9]+\/[0-9]+ Testing: lua\./ {
    n = split($3, p, "."); be = p[n]; cur = be; files[be]++; next
  }
  cur != "" && / successes \/ [0-9]+ failures \/ / {
    ok[cur] += $1; fail[cur] += $4; err[cur] += $7; pend[cur] += $10; seen[cur]++
    cur = ""
  }
  END {
    for (be in files) {
      miss = files[be] - seen[be]
      note = miss ? sprintf(", %d without a busted summary", miss) : ""
      printf("specs %s: %d passed, %d failed, %d errors, %d pending (%d files%s)\n",
        be, ok[be], fail[be], err[be], pend[be], files[be], note)
    }
  }' "$log" | sort
