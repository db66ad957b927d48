#!/usr/bin/env bash
# Redis through OpenResty's resty.redis on netio.ngx (bench/redis_netio.lua)
# next to redis-benchmark -P 1 with the same concurrency, in one run:
# SET and GET ops/s and the ratios. redis-server (no persistence) on CPU 1,
# the client on CPU 0; each configuration ROUNDS times, medians shown.
#   bash bench/redis.sh [build-dir]
# Knobs: CONNS (50), SECS (5, per command for netio), REQS (200000 per
# command for redis-benchmark), ROUNDS (3), MODES ("conn pool").
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
conns=${CONNS:-50}; secs=${SECS:-5}; reqs=${REQS:-200000}; rounds=${ROUNDS:-3}
modes=${MODES:-conn pool}
for p in redis-server redis-benchmark; do
  command -v "$p" >/dev/null || { echo "redis.sh: $p missing (bash tools/deps.sh)" >&2; exit 1; }
done
cmake --build "$build" --target netio >/dev/null

# A free loopback port: the first that nothing listens on, from 17400.
port=17400
while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
taskset -c 1 redis-server --port "$port" --bind 127.0.0.1 --save '' \
  --appendonly no >/dev/null 2>&1 &
rpid=$!
trap 'kill $rpid 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
  sleep 0.1
done

# The client's CPU time (user + system, bash's `time`) per operation, in
# microseconds: what a command costs the client, whichever side is the
# bottleneck of the ops/s.
TIMEFORMAT='%U %S'
us_per_op() { awk -v t="$1" -v n="$2" 'BEGIN { split(t, a, " ");
  printf "%.2f", (n > 0 ? (a[1] + a[2]) * 1e6 / n : 0) }'; }

tsv=$(mktemp); out=$(mktemp)
for r in $(seq "$rounds"); do
  cpu=$( { time taskset -c 0 redis-benchmark -p "$port" -c "$conns" -n "$reqs" \
          -P 1 -t set,get --csv -q >"$out" 2>/dev/null; } 2>&1 )
  set=$(awk -F'"' '$2 == "SET" { print int($4) }' "$out")
  get=$(awk -F'"' '$2 == "GET" { print int($4) }' "$out")
  printf '%s\tredis-benchmark\t-\t%s\t%s\t%s\n' "$r" "$set" "$get" \
    "$(us_per_op "$cpu" $((2 * reqs)))" >>"$tsv"
  for mode in $modes; do
    for be in uring epoll; do
      cpu=$( { time NETIO_BACKEND=$be taskset -c 0 "$build/netio" \
              bench/redis_netio.lua "$port" "$conns" "$secs" "$mode" >"$out"; } 2>&1 )
      set=$(sed -E 's/.*set_rps=([0-9]+).*/\1/' "$out")
      get=$(sed -E 's/.*get_rps=([0-9]+).*/\1/' "$out")
      ops=$(sed -E 's/.*ops=([0-9]+).*/\1/' "$out")
      printf '%s\tresty.redis %s\t%s\t%s\t%s\t%s\n' "$r" "$mode" "$be" "$set" "$get" \
        "$(us_per_op "$cpu" "$ops")" >>"$tsv"
    done
  done
  echo "round $r done" >&2
done

printf '\n%d connections, %d rounds (medians); netio %d s per command, redis-benchmark %d requests per command\n\n' \
  "$conns" "$rounds" "$secs" "$reqs"
printf '| client | backend | SET ops/s | GET ops/s | SET × redis-benchmark | GET × redis-benchmark | client CPU µs/op | CPU × redis-benchmark |\n'
printf '|---|---|--:|--:|--:|--:|--:|--:|\n'
# Medians over rounds; the ratios are medians of the per-round ratios (to
# the same round's redis-benchmark), so drift between rounds cancels.
awk -F'\t' '
  function median(arr, key, cnt,    i, j, t, v) {
    for (i = 1; i <= cnt; i++) v[i] = arr[key, i]
    for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++)
      if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2 }
  $2 == "redis-benchmark" { bs[$1] = $4; bg[$1] = $5; bc[$1] = $6 }
  { key = $2 "\t" $3; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    c = ++cnt[key]; s[key, c] = $4; g[key, c] = $5; u[key, c] = $6
    rs[key, c] = $4 / bs[$1]; rg[key, c] = $5 / bg[$1]; ru[key, c] = $6 / bc[$1] }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, p, "\t")
      printf "| %s | %s | %d | %d | %.2f | %.2f | %.2f | %.2f |\n", p[1], p[2],
        median(s, k, cnt[k]), median(g, k, cnt[k]),
        median(rs, k, cnt[k]), median(rg, k, cnt[k]),
        median(u, k, cnt[k]), median(ru, k, cnt[k])
    }
  }' "$tsv"
rm -f "$tsv" "$out"
