#!/usr/bin/env bash
# bench/udp_echo.sh [build-dir]: UDP echo -- datagrams per second and server
# CPU per datagram for netio (uring, epoll) next to a raw C recvfrom/sendto
# server and luv's UDP, in the same run; prints a markdown table with the
# ratios to the C server.
#
#   bash bench/udp_echo.sh                  (~1 min: 3 rounds x 4 servers x 3 s)
#   ROUNDS=1 SECS=1 bash bench/udp_echo.sh build-bench      (smoke run)
#
# It builds what it needs in build-dir (default: build; configured as Release
# when it has no CMakeCache.txt): netio, udp_loadgen, udp_echo_c. luv comes
# from Debian's lua-luv under lua5.4 (bench/run.sh installs it).
#
# Servers (one thread each, pinned to SERVER_CPU):
#   c            udp_echo_c: blocking recvfrom -> sendto loop (the baseline)
#   luv          lua5.4 bench/udp_echo_luv.lua: recv_start callback -> send
#   netio-uring  netio bench/udp_echo_netio.lua, NETIO_BACKEND=uring: one
#   netio-epoll  task looping udp:recvfrom() -> udp:sendto()
# None uses recvmmsg/sendmmsg. A server that cannot run here (netio.udp not
# in the build, luv not installed, io_uring refused) is reported as
# "skipped: why".
#
# Load: bench/udp_loadgen on LOAD_CPU, SOCKS client sockets each keeping
# WINDOW datagrams of SIZE bytes in flight; echoes are checked byte for
# byte; a datagram unanswered for TIMEOUT_MS counts as lost and its slot
# moves on (UDP drops under overload; the run never stalls). CPU per
# datagram: the server's utime+stime from /proc/<pid>/stat over the
# measured window (and CPU0: the busy time of SERVER_CPU from /proc/stat,
# which adds the kernel's softirq work and anything else on that core),
# divided by the datagrams echoed in the window. Within a round the servers
# take turns (the order rotates each round); the table gives medians over
# rounds, and "x C" is the median of the per-round ratios to the C server.
#
# Knobs (environment):
#   ROUNDS=3 SECS=3 WARM=1      rounds; measured seconds and warm-up per run
#   SOCKS=16 WINDOW=8 SIZE=64   client sockets, datagrams in flight per
#                               socket, datagram bytes (16..65507)
#   TIMEOUT_MS=200              a datagram's echo deadline before it is lost
#   SERVERS="c luv netio-uring netio-epoll"
#   SERVER_CPU=0 LOAD_CPU=1     taskset lists
#   OUT=/tmp/netio-udp.XXXX     where results.tsv, table.md and logs go
# The whole script is one brace group, parsed before it runs.
{
set -euo pipefail
B=${1:-build}
# A build-dir given is taken from where we were called.
[[ $B == /* ]] || B=$PWD/$B
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/common.sh
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
WARM=${WARM:-1}
SOCKS=${SOCKS:-16}
WINDOW=${WINDOW:-8}
SIZE=${SIZE:-64}
TIMEOUT_MS=${TIMEOUT_MS:-200}
SERVERS=${SERVERS:-c luv netio-uring netio-epoll}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT=${OUT:-$(mktemp -d /tmp/netio-udp.XXXX)}
mkdir -p "$OUT"
RES=$OUT/results.tsv
: >"$RES"

# ---- build -------------------------------------------------------------------
# A new tree is configured as Release; an existing one keeps its settings
# but is configured again, so a tree made before these targets existed
# learns them.
cfg=()
if [ ! -f "$B/CMakeCache.txt" ]; then
  say "configuring $B (Release)"
  cfg=(-DCMAKE_BUILD_TYPE=Release -DNETIO_TESTS=OFF)
fi
cmake -S "$ROOT" -B "$B" "${cfg[@]}" >"$OUT/configure.log" 2>&1 || {
  say "udp_echo.sh: cmake failed, see $OUT/configure.log"
  exit 2
}
cmake --build "$B" -j2 --target udp_loadgen udp_echo_c >"$OUT/build.log" 2>&1 || {
  say "udp_echo.sh: udp_loadgen/udp_echo_c did not build, see $OUT/build.log"
  exit 2
}
NETIO_OK=1
cmake --build "$B" -j2 --target netio >>"$OUT/build.log" 2>&1 || NETIO_OK=0
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$B/CMakeCache.txt")
case "$btype" in
Release | RelWithDebInfo) ;;
*) say "warning: $B is a '${btype:-no type}' build: netio figures will be low" ;;
esac
[ "$(nproc)" -ge 2 ] || say "warning: fewer than 2 CPUs; pinning is meaningless"

# ---- servers -------------------------------------------------------------------
PORT=$((23000 + RANDOM % 6000)) # below the ephemeral range (32768-)
SRV_PID=""
declare -A SKIPPED # server -> why; each is reported once

trap 'stop_pid "$SRV_PID"' EXIT
trap 'exit 130' INT TERM

skip() { # skip SERVER WHY
  if [ -z "${SKIPPED[$1]:-}" ]; then
    SKIPPED[$1]=$2
    printf 'skip\t%s\t%s\n' "$1" "$2" >>"$RES"
    say "  $1: skipped: $2"
  fi
}

# Why server $1 cannot run here, before trying it ("" = it may).
precheck() {
  case "$1" in
  c) ;;
  luv)
    command -v lua5.4 >/dev/null || {
      echo "lua5.4 not installed"
      return
    }
    lua5.4 -e 'require "luv"' 2>/dev/null ||
      echo "luv for Lua 5.4 not installed (Debian: apt-get install lua-luv)"
    ;;
  netio-uring | netio-epoll)
    [ "$NETIO_OK" = 1 ] || echo "netio did not build (see $OUT/build.log)"
    ;;
  *) echo "unknown server" ;;
  esac
}

# Start server $1 on 127.0.0.1:$PORT pinned to SERVER_CPU and wait for its
# "ready". Returns 1 (with $WHY set) when it does not come up.
start_server() {
  local name=$1 log=$OUT/server.log
  for _ in 1 2 3 4 5; do
    local addr="127.0.0.1:$PORT"
    case "$name" in
    c)
      taskset -c "$SERVER_CPU" "$B/udp_echo_c" "$addr" >"$log" 2>&1 &
      ;;
    luv)
      taskset -c "$SERVER_CPU" lua5.4 bench/udp_echo_luv.lua "$addr" \
        >"$log" 2>&1 &
      ;;
    netio-uring | netio-epoll)
      NETIO_BACKEND=${name#netio-} taskset -c "$SERVER_CPU" "$B/netio" \
        bench/udp_echo_netio.lua "$addr" >"$log" 2>&1 &
      ;;
    esac
    SRV_PID=$!
    for _ in $(seq 100); do
      grep -q '^ready' "$log" 2>/dev/null && return 0
      kill -0 "$SRV_PID" 2>/dev/null || break
      sleep 0.05
    done
    stop_pid "$SRV_PID"
    SRV_PID=""
    WHY=$(grep -v '^ready' "$log" | tail -1 | sed 's/^skip: //' || true)
    PORT=$((PORT + 1))
    # someone else holds the port: try the next one
    grep -qi 'in use' "$log" || break
  done
  [ -n "$WHY" ] || WHY="did not start (no output)"
  return 1
}


run_one() {
  local srv=$1 round=$2 out why
  [ -z "${SKIPPED[$srv]:-}" ] || return 0
  why=$(precheck "$srv")
  if [ -n "$why" ]; then
    skip "$srv" "$why"
    return 0
  fi
  WHY=""
  if ! start_server "$srv"; then
    skip "$srv" "$WHY"
    return 0
  fi
  taskset -c "$LOAD_CPU" "$B/udp_loadgen" -a "127.0.0.1:$PORT" -k "$SOCKS" \
    -W "$WINDOW" -s "$SIZE" -d "$SECS" -w "$WARM" -t "$TIMEOUT_MS" \
    -P "$SRV_PID" -C "$SERVER_CPU" >"$OUT/load.log" 2>&1 || true
  stop_pid "$SRV_PID"
  SRV_PID=""
  PORT=$((PORT + 1))
  out=$(grep '^dgrams=' "$OUT/load.log" || true)
  if [ -z "$out" ] || [ "$(field dgrams "$out" 0)" = 0 ]; then
    say "  $srv: no result: $(head -c 300 "$OUT/load.log" | tr '\n' ' ')" \
      "server: $(tail -2 "$OUT/server.log" | tr '\n' ' ')"
    return 0
  fi
  printf 'udp\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$srv" "$round" "$SIZE" "$(field dgrams "$out")" "$SECS" \
    "$(field p50_us "$out")" "$(field p99_us "$out")" "$(field lost "$out")" \
    "$(field late "$out")" "$(field corrupt "$out")" "$(field errors "$out")" \
    "$(field cpu_busy_us "$out")" "$(field srv_cpu_us "$out")" \
    "$(field lg_cpu_us "$out")" >>"$RES"
  say "  $srv: $(($(field dgrams "$out") / SECS)) dgrams/s," \
    "$(awk -v c="$(field srv_cpu_us "$out")" -v n="$(field dgrams "$out")" \
      'BEGIN { printf "%.2f", c / n }') us CPU/dgram," \
    "lost $(field lost "$out"), corrupt $(field corrupt "$out")"
}


{
  echo "# UDP echo, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# $(uname -sr), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "# rounds=$ROUNDS secs=$SECS warm=$WARM socks=$SOCKS window=$WINDOW" \
    "size=$SIZE timeout_ms=$TIMEOUT_MS server_cpu=$SERVER_CPU load_cpu=$LOAD_CPU"
  echo "# build: $B (${btype:-?}, $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ', dirty tree'))"
} >"$OUT/header.txt"
say "results in $OUT"
# How busy are the CPUs with nothing of ours running? Other work there
# inflates CPU0 and slows the server or the load.
HZ=$(getconf CLK_TCK)
s0=${SERVER_CPU%%[,-]*} l0=${LOAD_CPU%%[,-]*}
b0=$(busy_ticks "$s0") b1=$(busy_ticks "$l0")
sleep 1
q0=$(((($(busy_ticks "$s0") - b0) * 100) / HZ))
q1=$(((($(busy_ticks "$l0") - b1) * 100) / HZ))
[ "$q0" -le 100 ] || q0=100 # tick rounding
[ "$q1" -le 100 ] || q1=100
echo "# before the run CPU $s0 was ${q0}% busy, CPU $l0 ${q1}% (should be ~0)" >>"$OUT/header.txt"
[ "$q0" -le 5 ] && [ "$q1" -le 5 ] ||
  say "warning: CPU $s0 is ${q0}% and CPU $l0 ${q1}% busy without us: figures will be noisy"
for ((r = 1; r <= ROUNDS; r++)); do
  say "round $r/$ROUNDS: ${SIZE}-byte datagrams, $SOCKS sockets x $WINDOW in flight"
  for srv in $(rotate "$r" $SERVERS); do run_one "$srv" "$r"; done
done
lua5.4 bench/udp_report.lua "$RES" "$OUT/header.txt" | tee "$OUT/table.md"
say "raw results: $RES; table: $OUT/table.md"
exit 0
}
