#!/usr/bin/env bash
# ctest-wine.sh: run a build's tests once, and once more only those that
# died the way wine64 fails to start a process when several start at once:
# no output at all and an exit within milliseconds. Any other failure, or a
# second failure of a rerun test, fails (exit 1). Not `--repeat
# until-pass`: that would hide a flaky real failure.
#   bash tools/ctest-wine.sh <build-dir> [jobs]
# Afterwards <build-dir>/Testing/Temporary/AllRuns.log holds the first
# run's LastTest.log followed by the rerun's, for the per-test counts.
set -euo pipefail
dir=${1:?usage: ctest-wine.sh <build-dir> [jobs]}
jobs=${2:-$(nproc)}
tmp="$dir/Testing/Temporary"

rc=0
ctest --test-dir "$dir" -j"$jobs" --output-on-failure || rc=$?
cp "$tmp/LastTest.log" "$tmp/AllRuns.log"
[ "$rc" -eq 0 ] && exit 0
if [ ! -s "$tmp/LastTestsFailed.log" ]; then
  echo "ctest-wine: ctest failed ($rc) without a list of failed tests" >&2
  exit 1
fi

# The tests whose run printed nothing and took under 0.5 s. LastTest.log
# has one block per test: "k/N Test: <name>", "Output:", a rule, the
# output, "<end of output>", "Test time =   0.01 sec".
mapfile -t silent < <(awk '
  /^[0-9]+\/[0-9]+ Test: / { name = $3; inout = 0; n = 0; next }
  name != "" && /^Output:$/ { getline; inout = 1; next }
  inout && /^<end of output>$/ { inout = 0; next }
  inout { n++; next }
  name != "" && /^Test time = / {
    if (n == 0 && $4 + 0 < 0.5) print name
    name = ""
  }' "$tmp/AllRuns.log")

rerun=() real=()
while IFS= read -r name; do
  if printf '%s\n' "${silent[@]}" | grep -qxF -- "$name"; then
    rerun+=("$name")
  else
    real+=("$name")
  fi
done < <(cut -d: -f2- "$tmp/LastTestsFailed.log")
if [ ${#real[@]} -gt 0 ]; then
  echo "ctest-wine: failed (not a start failure): ${real[*]}" >&2
  exit 1
fi
echo "ctest-wine: start failures (no output, < 0.5 s), run once more: ${rerun[*]}"
re=$(printf '%s\n' "${rerun[@]}" | sed 's/[][\.*^$+?(){}|]/\\&/g' | paste -sd'|')
rc=0
ctest --test-dir "$dir" --output-on-failure -R "^($re)\$" || rc=$?
cat "$tmp/LastTest.log" >>"$tmp/AllRuns.log"
exit "$rc"
