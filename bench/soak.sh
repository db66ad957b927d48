#!/usr/bin/env bash
# soak.sh: a churn soak of a netio server. One process serves lines on
# netio.server (bench/soak.lua server); another churns connections against
# it for N minutes (connect, exchange, close; some reset, some idle until
# the server cuts them, some send a line that is too long). The server's
# RSS and open descriptors are sampled every SAMPLE seconds; the script
# prints a table (start, after warm-up, middle, end) and fails (exit 1) on
# growth: end RSS above 1.2x the RSS after warm-up, or more descriptors than
# at warm-up plus FD_SLACK -- or when the client saw a failed exchange.
#   bash bench/soak.sh [minutes] [backend]    (default 10, uring)
#   env: SOAK_MINUTES, NETIO_BACKEND, BUILD (build), SAMPLE (5),
#        CONC (64 client tasks), FD_SLACK (32), RSS_GROWTH (1.2)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-${SOAK_MINUTES:-10}}
backend=${2:-${NETIO_BACKEND:-uring}}
build=${BUILD:-build}
sample=${SAMPLE:-5}
conc=${CONC:-64}
fd_slack=${FD_SLACK:-32}
growth=${RSS_GROWTH:-1.2}
netio="$build/netio"
[ -x "$netio" ] || { echo "soak: no $netio (build first)" >&2; exit 2; }
secs=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
warm=$(( secs / 10 > 10 ? secs / 10 : 10 )) # warm-up: 10% (at least 10 s)
export NETIO_BACKEND=$backend
export LUA_PATH_5_4="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;"

tmp=$(mktemp -d)
server=""
client=""
cleanup() {
  [ -n "$client" ] && kill "$client" 2>/dev/null || true
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

"$netio" bench/soak.lua server "$tmp/port" &
server=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
port=$(cat "$tmp/port")
"$netio" bench/soak.lua client "$port" "$secs" "$conc" >"$tmp/client.out" 2>&1 &
client=$!

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$server/status"; }
fds() { ls "/proc/$server/fd" | wc -l; }
echo "soak: $minutes min on $backend, server pid $server, port $port, sample every $sample s"
printf '%8s %10s %6s\n' "t (s)" "RSS (KiB)" "fds" >"$tmp/samples"
t0=$(date +%s)
while kill -0 "$client" 2>/dev/null; do
  now=$(( $(date +%s) - t0 ))
  kill -0 "$server" 2>/dev/null || { echo "soak: the server died" >&2; exit 1; }
  printf '%8d %10d %6d\n' "$now" "$(rss)" "$(fds)" >>"$tmp/samples"
  sleep "$sample"
done
crc=0
wait "$client" || crc=$?
client=""
sleep 3 # idle connections cut, closes done
printf '%8d %10d %6d\n' "$(( $(date +%s) - t0 ))" "$(rss)" "$(fds)" >>"$tmp/samples"
cat "$tmp/client.out"

# The table and the verdict: start, the first sample after warm-up, the
# middle one and the last (after the churn stopped).
awk -v warm="$warm" -v growth="$growth" -v slack="$fd_slack" '
  BEGIN { n = 0 }
  NR == 1 { next }
  { t[n] = $1; r[n] = $2; f[n] = $3; n++ }
  END {
    w = 0; while (w < n - 1 && t[w] < warm) w++
    m = int((w + n - 1) / 2)
    printf "%-14s %8s %10s %6s\n", "", "t (s)", "RSS (KiB)", "fds"
    printf "%-14s %8d %10d %6d\n", "start", t[0], r[0], f[0]
    printf "%-14s %8d %10d %6d\n", "after warm-up", t[w], r[w], f[w]
    printf "%-14s %8d %10d %6d\n", "middle", t[m], r[m], f[m]
    printf "%-14s %8d %10d %6d\n", "end", t[n-1], r[n-1], f[n-1]
    maxr = 0; for (i = w; i < n; i++) if (r[i] > maxr) maxr = r[i]
    printf "peak RSS after warm-up: %d KiB; %d samples\n", maxr, n
    bad = 0
    if (r[n-1] > growth * r[w]) {
      printf "FAIL: RSS grew from %d to %d KiB (limit %.1fx)\n", r[w], r[n-1], growth; bad = 1
    }
    if (f[n-1] > f[w] + slack) {
      printf "FAIL: descriptors grew from %d to %d (slack %d)\n", f[w], f[n-1], slack; bad = 1
    }
    if (!bad) print "PASS: no growth"
    exit bad
  }' "$tmp/samples" || exit 1
[ "$crc" -eq 0 ] || { echo "FAIL: the client saw failed exchanges ($crc)" >&2; exit 1; }
