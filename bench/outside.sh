#!/usr/bin/env bash
# bench/outside.sh [build-dir]: messages per second from OUTSIDE threads into
# connections. A server's own threads push 64-byte messages (time stamp,
# thread, connection, sequence: bench/outside_common.h) round-robin into
# CONNS connections that bench/outside_reader drains, checks and times.
#
#   bash bench/outside.sh /tmp/bench-build       (~5 min: 3 rounds x 3 s)
#   QUICK=1 bash bench/outside.sh /tmp/bench-build   (~1 min: 1 round x 1 s)
#
# It builds nothing: build-dir (default $BUILD or build-bench) must hold a
# Release build of the targets netio, outside_reader, outside_baseline,
# outside_nio and outside_rawq (rawq.so):
#   cmake -S . -B /tmp/bench-build -DCMAKE_BUILD_TYPE=Release
#   cmake --build /tmp/bench-build -j2
#
# Servers (each its own process, every thread of it on SERVER_CPUS):
#   baseline     outside_baseline: mutex-protected vector + eventfd wake-up
#                feeding a plain epoll writer (raw C)
#   nio-uring    outside_nio: nio_send() from C threads, engine on io_uring
#   nio-epoll    the same, NETIO_BACKEND=epoll
#   lua-raw      netio bench/outside_lua.lua raw: the same Lua threads and
#                loop, calling rawq.push() (rawq.so: the baseline's queue
#                and writer as a Lua module) instead of netio.send()
#   lua-uring    netio bench/outside_lua.lua: netio.send() from netio.thread()s
#   lua-epoll    the same, NETIO_BACKEND=epoll
# Each server runs with every THREADS count, flat out (throughput, and the
# latency at saturation), then paced at RATE messages/s in all (latency
# where queueing does not dominate). Within a round the servers take turns
# (the order rotates each round). Table: medians over rounds; "x baseline"
# is the median of per-round ratios to the baseline with as many threads,
# "x lua-raw" (Lua-thread rows) the same against lua-raw: what netio.send
# costs over a raw queue, the Lua loop being the same.
#
# Knobs (environment):
#   ROUNDS=3 SECS=3 WARM=1   rounds; measured seconds and warm-up per run
#   CONNS=100 THREADS="1 2"  connections; sender thread counts
#   RATE=50000               paced runs' total rate (0: no paced runs)
#   SERVERS="baseline nio-uring nio-epoll lua-raw lua-uring lua-epoll"
#   SEND_LIMIT=32768         bytes that may wait per connection (in the
#                            queue or inbox and in its output) before
#                            "busy", for all; with CONNS it bounds
#                            the whole queue (3.2 MiB). 0: nio's default,
#                            4 MiB (then the 16 MiB inbox bound rules)
#   QUEUE_LIMIT=0            bytes the baseline's queue and outside_nio's
#                            inbox may hold (0: nio's default, 16 MiB; the
#                            Lua host and lua-raw always have the default)
#   BACKOFF_US=50            a sender's pause after "busy", for all
#   SERVER_CPUS=0 READER_CPU=1   taskset lists
#   OUT=/tmp/netio-outside.XXXX  where results.tsv and table.md go
# The whole script is one brace group, parsed before it runs.
{
set -euo pipefail
B=${1:-}
# A build-dir given is taken from where we were called; the default
# ($BUILD or build-bench) from the repository's root.
[ -z "$B" ] || [[ $B == /* ]] || B=$PWD/$B
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/common.sh
if [ -z "$B" ]; then
  B=${BUILD:-build-bench}
  [[ $B == /* ]] || B=$ROOT/$B
fi
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  ROUNDS=${ROUNDS:-1} SECS=${SECS:-1}
fi
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
WARM=${WARM:-1}
CONNS=${CONNS:-100}
THREADS=${THREADS:-1 2}
RATE=${RATE:-50000}
SERVERS=${SERVERS:-baseline nio-uring nio-epoll lua-raw lua-uring lua-epoll}
SEND_LIMIT=${SEND_LIMIT:-32768}
QUEUE_LIMIT=${QUEUE_LIMIT:-0}
BACKOFF_US=${BACKOFF_US:-50}
SERVER_CPUS=${SERVER_CPUS:-0}
READER_CPU=${READER_CPU:-1}
OUT=${OUT:-$(mktemp -d /tmp/netio-outside.XXXX)}
mkdir -p "$OUT"
RES=$OUT/results.tsv
: >"$RES"

need="netio outside_reader outside_baseline outside_nio"
[[ " $SERVERS " != *" lua-raw "* ]] || need+=" rawq.so"
for t in $need; do
  if [ ! -e "$B/$t" ]; then
    say "outside.sh: $B/$t is missing: build $B first (Release):"
    say "  cmake -S $ROOT -B $B -DCMAKE_BUILD_TYPE=Release && cmake --build $B -j2"
    exit 2
  fi
done
[ "$(nproc)" -ge 2 ] || say "warning: fewer than 2 CPUs; pinning is meaningless"

PORT=$((29000 + RANDOM % 3000)) # below the ephemeral range (32768-)
SRV_PID="" RD_PID=""

cleanup() {
  stop_pid "$RD_PID"
  RD_PID=""
  stop_pid "$SRV_PID"
  SRV_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Start server $1 with $2 sender threads at $3 messages/s (0: flat out) on
# 127.0.0.1:$PORT; it prints "ready" once it listens (no probe connection:
# the server accepts exactly CONNS). Returns 1 when it does not come up.
start_server() {
  local name=$1 threads=$2 rate=$3 addr="127.0.0.1:$PORT" log=$OUT/server.log
  local lim=()
  [ "$SEND_LIMIT" = 0 ] || lim+=(-l "$SEND_LIMIT")
  [ "$QUEUE_LIMIT" = 0 ] || lim+=(-q "$QUEUE_LIMIT")
  case "$name" in
  baseline)
    taskset -c "$SERVER_CPUS" "$B/outside_baseline" -a "$addr" -c "$CONNS" \
      -t "$threads" -r "$rate" -b "$BACKOFF_US" "${lim[@]}" >"$log" 2>&1 &
    ;;
  nio-uring | nio-epoll)
    NETIO_BACKEND=${name#nio-} taskset -c "$SERVER_CPUS" "$B/outside_nio" \
      -a "$addr" -c "$CONNS" -t "$threads" -r "$rate" -b "$BACKOFF_US" \
      "${lim[@]}" >"$log" 2>&1 &
    ;;
  lua-uring | lua-epoll)
    NETIO_BACKEND=${name#lua-} NETIO_GRACE=0 taskset -c "$SERVER_CPUS" \
      "$B/netio" bench/outside_lua.lua "$addr" "$CONNS" "$threads" "$rate" \
      "$SEND_LIMIT" "$BACKOFF_US" >"$log" 2>&1 &
    ;;
  lua-raw)
    NETIO_GRACE=0 taskset -c "$SERVER_CPUS" \
      "$B/netio" bench/outside_lua.lua "$addr" "$CONNS" "$threads" "$rate" \
      "$SEND_LIMIT" "$BACKOFF_US" raw "$B" >"$log" 2>&1 &
    ;;
  *) return 1 ;;
  esac
  SRV_PID=$!
  for _ in $(seq 100); do
    grep -q '^ready' "$log" 2>/dev/null && return 0
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
  done
  say "  $name did not start: $(tail -3 "$log" | tr '\n' ' ')"
  stop_pid "$SRV_PID"
  SRV_PID=""
  return 1
}


run_one() {
  local srv=$1 threads=$2 rate=$3 round=$4 out slog msgs p50 p99 errs busy sent
  if ! start_server "$srv" "$threads" "$rate"; then
    PORT=$((PORT + 1))
    return
  fi
  taskset -c "$READER_CPU" "$B/outside_reader" -a "127.0.0.1:$PORT" \
    -c "$CONNS" -d "$SECS" -w "$WARM" -P "$SRV_PID" -C 0 \
    >"$OUT/reader.log" 2>&1 &
  RD_PID=$!
  wait "$RD_PID" 2>/dev/null || true
  RD_PID=""
  # The reader closed its connections: the senders hear "closed" and the
  # server prints their counts and ends (given 2 s; then it is stopped).
  for _ in $(seq 40); do
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
  done
  stop_pid "$SRV_PID"
  SRV_PID=""
  PORT=$((PORT + 1))
  out=$(grep '^msgs=' "$OUT/reader.log" || true)
  slog=$(grep '^senders=' "$OUT/server.log" || true)
  msgs=$(field msgs "$out")
  if [ -z "$msgs" ]; then
    say "  $srv x$threads: no result: $(head -c 300 "$OUT/reader.log")"
    return
  fi
  p50=$(field p50_us "$out")
  p99=$(field p99_us "$out")
  errs=$(field errors "$out" 0)
  busy=$(field busy "$slog" -1) # -1: the server did not report
  sent=$(field sent "$slog" -1)
  [ "$errs" = 0 ] || say "  $srv x$threads: STREAM ERRORS: $(grep -v '^msgs=' "$OUT/reader.log" | head -3 | tr '\n' ' ')"
  printf 'outside\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$srv" \
    "$threads" "$rate" "$round" "$msgs" "$SECS" "$p50" "$p99" "$errs" \
    "$busy" "$sent" >>"$RES"
  local how="flat out"
  [ "$rate" = 0 ] || how="at $rate/s"
  say "  $srv x$threads $how: $((msgs / SECS)) msgs/s, p50 $p50 us," \
    "p99 $p99 us, $busy busy retries in $sent sends, stream errors $errs"
}


{
  echo "# outside threads -> connections, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# $(uname -sr), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "# rounds=$ROUNDS secs=$SECS warm=$WARM conns=$CONNS rate=$RATE" \
    "send_limit=$SEND_LIMIT queue_limit=$QUEUE_LIMIT backoff_us=$BACKOFF_US" \
    "server_cpus=$SERVER_CPUS reader_cpu=$READER_CPU"
  echo "# build: $B ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ', dirty tree'))"
} >"$OUT/header.txt"
say "results in $OUT"
# How busy are the CPUs with nothing of ours running? Other work there
# slows the server (CPU 0) or the reader (CPU 1).
HZ=$(getconf CLK_TCK)
b0=$(busy_ticks 0) b1=$(busy_ticks 1)
sleep 2
q0=$(((($(busy_ticks 0) - b0) * 100) / (2 * HZ)))
q1=$(((($(busy_ticks 1) - b1) * 100) / (2 * HZ)))
[ "$q0" -le 100 ] || q0=100 # tick rounding
[ "$q1" -le 100 ] || q1=100
echo "# before the run CPU 0 was ${q0}% busy, CPU 1 ${q1}% (should be ~0)" >>"$OUT/header.txt"
[ "$q0" -le 5 ] && [ "$q1" -le 5 ] ||
  say "warning: CPU 0 is ${q0}% and CPU 1 ${q1}% busy without us: figures will be low and noisy"
rates=0
[ "$RATE" = 0 ] || rates="0 $RATE"
for ((r = 1; r <= ROUNDS; r++)); do
  for rate in $rates; do
    for t in $THREADS; do
      if [ "$rate" = 0 ]; then
        say "round $r/$ROUNDS: $t thread(s), flat out"
      else
        say "round $r/$ROUNDS: $t thread(s), $rate msgs/s"
      fi
      for srv in $(rotate "$r" $SERVERS); do run_one "$srv" "$t" "$rate" "$r"; done
    done
  done
done
lua5.4 bench/outside_report.lua "$RES" "$OUT/header.txt" | tee "$OUT/table.md"
say "raw results: $RES; table: $OUT/table.md"
exit 0
}
