#!/usr/bin/env bash
# First figure: messages per second through examples/echo_server.lua with
# C connections of S-byte ping-pong, on each backend. Server pinned to CPU 0,
# load to CPU 1. Usage: bench/echo.sh [build-dir] [conns] [size] [secs]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; conns=${2:-100}; size=${3:-64}; secs=${4:-5}
port=17000
cmake --build "$build" --target netio loadgen >/dev/null
hz=$(getconf CLK_TCK)
printf '| backend | conns | size | msgs/s | p50 us | p99 us | server CPU us/msg |\n'
printf '|---|---|---|---|---|---|---|\n'
for be in uring epoll; do
  port=$((port + 1))
  NETIO_BACKEND=$be taskset -c 0 "$build/netio" examples/echo_server.lua \
    "127.0.0.1:$port" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
  done
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  out=$(taskset -c 1 "$build/loadgen" -a "127.0.0.1:$port" -c "$conns" \
        -s "$size" -d "$secs" -w 1)
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  msgs=$(sed -E 's/.*msgs=([0-9]+).*/\1/' <<<"$out")
  rate=$(sed -E 's/.*msgs_per_sec=([0-9]+).*/\1/' <<<"$out")
  p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$out")
  p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$out")
  # CPU ticks over warm-up + measurement, divided by the messages measured
  # scaled by the same window: (secs + 1) / secs.
  cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v m="$msgs" -v s="$secs" \
        'BEGIN { if (m > 0) printf "%.2f", (b-a)/hz*1e6/(m*(s+1)/s); else print "-" }')
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$be" "$conns" "$size" \
    "$rate" "$p50" "$p99" "$cpu"
done
