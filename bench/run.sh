#!/usr/bin/env bash
# bench/run.sh: the whole benchmark in one command -- installs the peers
# (apt), builds a Release tree, runs echo / HTTP / ab / idle-memory tests (and
# outside threads -> connections, bench/outside.sh; UDP echo,
# bench/udp_echo.sh; HTTPS next to nginx with TLS, bench/https.sh) with the
# server pinned to CPU 0 and the load to CPU 1, and prints markdown tables,
# then the targets of issue 13 with PASS/MISS.
#
#   bash bench/run.sh                 full run (~25 min): 3 rounds x 5 s
#   QUICK=1 bash bench/run.sh         smoke run (~3 min): 1 round x 1 s
#
# Knobs (environment):
#   ROUNDS=3 SECS=5 WARM=1      rounds; measured seconds and warm-up per run
#   PARTS=echo,http,ab,idle,outside,udp,tls   which parts run
#   ONLY=uring,netio-uring,...  echo/idle/HTTP servers to run (default: all;
#                               netio-uring names its echo and HTTP servers)
#   OUTSIDE_SECS=3 OUTSIDE_SERVERS="baseline nio-uring lua-raw ..."  the outside
#                               part (bench/outside.sh, which has more knobs)
#   UDP_SECS=3 UDP_SERVERS="c luv netio-uring netio-epoll"   the UDP echo
#                               part (bench/udp_echo.sh, which has more knobs)
#   TLS_SECS=5 TLS_HS_SECS=3    the TLS part (bench/https.sh: keep-alive
#                               seconds, full-handshake seconds)
#   SIZES="64 16384" CONNS="50 500"   echo message sizes and connection counts
#   LOADERS=1                   loadgen processes per echo run (summed)
#   IDLE_N=10000 AB_N=200000 AB_C=10000 HTTP_C=50
#   BUILD=build-bench  OUT=/tmp/netio-bench.XXXX  SKIP_APT=1  SKIP_BUILD=1
# Echo servers: uring engine luafloor epoll netio-uring netio-epoll luv cqueues
#   copas (luafloor: bench/echo_luafloor.c, the engine with the least a Lua
#   coroutine per connection costs, uring backend)
# HTTP servers: netio-uring netio-server-uring netio-epoll netio-server-epoll
#   luv nginx-lua nginx-static (luv: bench/http_luv.lua; netio-server-*: bench/http_server.lua, the same
#   server as netio-* but written with netio.server; listed next to its bare
#   twin so the two run close together in every round)
#
# CPU per message: busy time of CPU 0 (user+nice+system+irq+softirq
# from /proc/stat) over the measured window, divided by the messages. It
# includes the kernel's softirq work done on the server's core (fairer than
# the process's own rusage), but also anything else that ran on CPU 0: on a
# busy machine compare it with the "proc" column (utime+stime of the server
# processes, every thread included).
# The whole script is one brace group, parsed before it runs, so editing this
# file during a run cannot derail the run.
{
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/common.sh

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  ROUNDS=${ROUNDS:-1} SECS=${SECS:-1} IDLE_N=${IDLE_N:-2000}
  OUTSIDE_SECS=${OUTSIDE_SECS:-1} UDP_SECS=${UDP_SECS:-1}
  TLS_SECS=${TLS_SECS:-1} TLS_HS_SECS=${TLS_HS_SECS:-1}
  AB_N=${AB_N:-30000} AB_C=${AB_C:-2000}
fi
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
WARM=${WARM:-1}
PARTS=${PARTS:-echo,http,ab,idle,outside,udp,tls}
OUTSIDE_SECS=${OUTSIDE_SECS:-3}
UDP_SECS=${UDP_SECS:-3}
TLS_SECS=${TLS_SECS:-5}
TLS_HS_SECS=${TLS_HS_SECS:-3}
SIZES=${SIZES:-64 16384}
CONNS=${CONNS:-50 500}
LOADERS=${LOADERS:-1}
IDLE_N=${IDLE_N:-10000}
AB_N=${AB_N:-200000}
AB_C=${AB_C:-10000}
HTTP_C=${HTTP_C:-50}
BUILD=${BUILD:-build-bench}
ECHO_SERVERS="uring engine luafloor epoll netio-uring netio-epoll luv cqueues copas"
HTTP_SERVERS="netio-uring netio-server-uring netio-epoll netio-server-epoll
  luv nginx-lua nginx-static"
COPAS_MAX=900 # copas waits in select(): file descriptors must stay < 1024
OUT=${OUT:-$(mktemp -d /tmp/netio-bench.XXXX)}
mkdir -p "$OUT"
RES=$OUT/results.tsv
: >"$RES"
B=$ROOT/$BUILD
[[ $BUILD != /* ]] || B=$BUILD # an absolute path is taken as it is
has_part() { [[ ",$PARTS," == *",$1,"* ]]; }
wanted() { [ -z "${ONLY:-}" ] || [[ ",$ONLY," == *",$1,"* ]]; }

# ---- 1. dependencies (Debian 12 package names) -----------------------------
if [ "${SKIP_APT:-0}" != 1 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  bash tools/deps.sh
  # copas: Debian packages it (1.2.0) for Lua 5.1/5.2 only, so it runs under
  # lua5.2. nginx's Lua module is libnginx-mod-http-lua (LuaJIT).
  pkgs=(lua-luv lua-cqueues lua5.2 lua-copas lua-socket nginx
        libnginx-mod-http-lua wrk apache2-utils)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2
  fi
fi

# ---- 2. build ---------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "building $BUILD (Release)"
  cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DNETIO_TESTS=OFF >/dev/null
  cmake --build "$B" -j2 --target netio loadgen echo_epoll outside_reader \
    outside_baseline outside_nio outside_rawq udp_loadgen udp_echo_c >/dev/null
  # the optimizer's servers: skipped (not failed) when absent or broken
  for t in echo_uring echo_engine echo_luafloor; do
    [ -f "bench/$t.c" ] || continue
    if ! cmake --build "$B" -j2 --target "$t" >"$OUT/build-$t.log" 2>&1; then
      say "warning: $t did not build (see $OUT/build-$t.log); skipped"
      rm -f "${B:?}/$t" # no stale binary
    fi
  done
fi

# The idle test holds 10,000 connections: servers and ab need more than
# 10,000 descriptors (the sandbox caps a process at 20,000).
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
[ "$NCPU" -ge 2 ] || say "warning: fewer than 2 CPUs; pinning is meaningless"

# ---- servers -----------------------------------------------------------------
PORT=$((21000 + RANDOM % 8000)) # below the ephemeral range (32768-)
SRV_PID="" # the process started (nginx: its master)
SRV_PIDS="" # the processes that do the work, comma separated

# Start server $1 ($2: echo or http) on 127.0.0.1:$PORT pinned to CPU 0.
# Returns 1 when it is not available here.
start_server() {
  local name=$1 kind=$2 addr="127.0.0.1:$PORT" log=$OUT/server.log
  SRV_PID="" SRV_PIDS=""
  case "$kind:$name" in
  echo:uring | echo:engine | echo:luafloor | echo:epoll)
    # the engine's servers (engine, luafloor) on io_uring, like netio-uring
    [ -x "$B/echo_$name" ] || return 1
    NETIO_BACKEND=uring taskset -c 0 "$B/echo_$name" "$addr" >"$log" 2>&1 &
    ;;
  echo:netio-uring | echo:netio-epoll)
    NETIO_BACKEND=${name#netio-} taskset -c 0 "$B/netio" \
      examples/echo_server.lua "$addr" >"$log" 2>&1 &
    ;;
  http:netio-uring | http:netio-epoll)
    NETIO_BACKEND=${name#netio-} taskset -c 0 "$B/netio" \
      bench/http_netio.lua "$addr" >"$log" 2>&1 &
    ;;
  http:netio-server-uring | http:netio-server-epoll)
    NETIO_BACKEND=${name#netio-server-} taskset -c 0 "$B/netio" \
      bench/http_server.lua "$addr" >"$log" 2>&1 &
    ;;
  echo:luv | echo:cqueues)
    taskset -c 0 lua5.4 "bench/echo_$name.lua" "$addr" >"$log" 2>&1 &
    ;;
  http:luv)
    taskset -c 0 lua5.4 bench/http_luv.lua "$addr" >"$log" 2>&1 &
    ;;
  echo:copas)
    taskset -c 0 lua5.2 bench/echo_copas.lua "$addr" >"$log" 2>&1 &
    ;;
  http:nginx-lua | http:nginx-static)
    command -v nginx >/dev/null || return 1
    nginx_conf "${name#nginx-}" "$addr"
    taskset -c 0 nginx -p "$OUT/nginx" -e "$OUT/nginx/error.log" \
      -c "$OUT/nginx/nginx.conf" >"$log" 2>&1 &
    ;;
  *) return 1 ;;
  esac
  SRV_PID=$!
  if ! wait_port "$PORT" "$SRV_PID"; then
    say "server $name did not start: $(tail -3 "$log")"
    stop_server
    return 1
  fi
  SRV_PIDS=$SRV_PID
  if [[ $name == nginx-* ]]; then
    # the worker (one) does the work; the master only sleeps
    local w=""
    for _ in $(seq 40); do
      w=$(children "$SRV_PID")
      [ -z "$w" ] || break
      sleep 0.05
    done
    SRV_PIDS=${w:+$w,}$SRV_PID
  fi
}



stop_server() {
  [ -n "$SRV_PID" ] || return 0
  stop_pid "$SRV_PID"
  SRV_PID=""
  PORT=$((PORT + 1))
}
trap 'stop_server; kill $(jobs -p) 2>/dev/null || true' EXIT

# nginx with its own prefix under $OUT (never the system's nginx): one
# worker, keep-alive requests raised, no access log.
nginx_conf() {
  local mode=$1 addr=$2 P=$OUT/nginx body
  mkdir -p "$P"
  if [ "$mode" = lua ]; then
    body='content_by_lua_block {
        ngx.header.content_length = 11
        ngx.print("hello world")
      }'
  else
    body='return 200 "hello world";'
  fi
  cat >"$P/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $P/nginx.pid;
lock_file $P/nginx.lock;
error_log $P/error.log warn;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  default_type text/plain;
  client_body_temp_path $P/body;
  proxy_temp_path $P/proxy;
  fastcgi_temp_path $P/fastcgi;
  uwsgi_temp_path $P/uwsgi;
  scgi_temp_path $P/scgi;
  server {
    listen $addr backlog=65535;
    location / {
      $body
    }
  }
}
EOF
}


# Rotate the list by the round number, so no server always goes first.

# ---- echo --------------------------------------------------------------------
run_echo() {
  local srv=$1 size=$2 conns=$3 round=$4 i per out msgs=0 errs=0 busy srv_us
  local hists=() outs=() lpids=()
  if ! start_server "$srv" echo; then
    say "  $srv: skipped (not built or not installed)"
    return
  fi
  per=$(((conns + LOADERS - 1) / LOADERS))
  for ((i = 0; i < LOADERS; i++)); do
    local extra=()
    # the first loader samples the CPU over the measured window
    [ "$i" -eq 0 ] && extra=(-P "$SRV_PIDS" -C 0)
    taskset -c 1 "$B/loadgen" -a "127.0.0.1:$PORT" -c "$per" -s "$size" \
      -d "$SECS" -w "$WARM" -H "$OUT/hist.$i" "${extra[@]}" \
      >"$OUT/lg.$i" 2>&1 &
    lpids+=($!)
    outs+=("$OUT/lg.$i")
    hists+=("$OUT/hist.$i")
  done
  wait "${lpids[@]}" 2>/dev/null || true
  for out in "${outs[@]}"; do
    msgs=$((msgs + $(field msgs "$(cat "$out")" 0)))
    errs=$((errs + $(field errors "$(cat "$out")" 0)))
  done
  out=$(cat "${outs[0]}")
  busy=$(field cpu_busy_us "$out")
  srv_us=$(field srv_cpu_us "$out")
  local merged p50 p99
  merged=$("$B/loadgen" -M "${hists[@]}")
  p50=$(field p50_us "$merged")
  p99=$(field p99_us "$merged")
  stop_server
  if [ -z "$busy" ] || [ "$msgs" -eq 0 ]; then
    say "  $srv: no result ($(head -c 200 "${outs[0]}"))"
    return
  fi
  printf 'echo\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" \
    "$conns" "$srv" "$round" "$msgs" "$SECS" "$p50" "$p99" "$busy" \
    "$srv_us" "$errs" >>"$RES"
  say "  $srv ${size}B x$conns: $((msgs / SECS)) msgs/s," \
    "cpu0 $(awk -v b="$busy" -v m="$msgs" 'BEGIN{printf "%.2f", b/m}') us/msg"
}

# ---- HTTP under wrk ----------------------------------------------------------
wrk_us() { # "411.00us" / "4.17ms" / "1.02s" -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0
    if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else m = 1000000
    printf "%.0f", n * m }'
}
run_http() {
  local srv=$1 round=$2 c0 c1 p0 p1 out reqs p50 p99
  if ! start_server "$srv" http; then
    say "  $srv: skipped"
    return
  fi
  # one short wrk run first: warm-up (connections, Lua JIT/allocations)
  taskset -c 1 wrk -t1 -c "$HTTP_C" -d 1s "http://127.0.0.1:$PORT/" \
    >/dev/null 2>&1 || true
  c0=$(busy_ticks 0)
  p0=$(pid_ticks "$SRV_PIDS")
  out=$(taskset -c 1 wrk -t1 -c "$HTTP_C" -d "${SECS}s" --latency \
    "http://127.0.0.1:$PORT/" 2>&1) || true
  c1=$(busy_ticks 0)
  p1=$(pid_ticks "$SRV_PIDS")
  stop_server
  reqs=$(sed -nE 's/^ *([0-9]+) requests in.*/\1/p' <<<"$out")
  p50=$(wrk_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(wrk_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  if [ -z "$reqs" ] || grep -q "Non-2xx\|Socket errors" <<<"$out"; then
    say "  $srv: wrk trouble: $(grep -E 'errors|Non-2xx' <<<"$out" | head -2)"
    [ -n "$reqs" ] || return
  fi
  printf 'http\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$srv" "$round" "$reqs" \
    "$SECS" "$p50" "$p99" "$(((c1 - c0) * 1000000 / HZ))" \
    "$(((p1 - p0) * 1000000 / HZ))" >>"$RES"
  say "  $srv: $((reqs / SECS)) req/s"
}

# ---- the seed's test: ab -k -c 10000 -----------------------------------------
run_ab() {
  local srv=$1 round=$2 c0 c1 p0 p1 out rps ndone failed
  if ! start_server "$srv" http; then
    say "  ab $srv: skipped"
    return
  fi
  c0=$(busy_ticks 0)
  p0=$(pid_ticks "$SRV_PIDS")
  out=$(taskset -c 1 ab -q -k -r -s 30 -c "$AB_C" -n "$AB_N" \
    "http://127.0.0.1:$PORT/" 2>&1) || true
  c1=$(busy_ticks 0)
  p1=$(pid_ticks "$SRV_PIDS")
  stop_server
  rps=$(sed -nE 's/^Requests per second: *([0-9.]+).*/\1/p' <<<"$out")
  ndone=$(sed -nE 's/^Complete requests: *([0-9]+).*/\1/p' <<<"$out")
  failed=$(sed -nE 's/^Failed requests: *([0-9]+).*/\1/p' <<<"$out")
  if [ -z "$rps" ]; then
    say "  ab $srv: failed: $(tail -2 <<<"$out")"
    return
  fi
  printf 'ab\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$srv" "$round" "$rps" \
    "$ndone" "$failed" "$(((c1 - c0) * 1000000 / HZ))" \
    "$(((p1 - p0) * 1000000 / HZ))" "$AB_C" "$AB_N" >>"$RES"
  say "  ab $srv: $rps req/s ($ndone done, $failed failed)"
}

# ---- idle memory ---------------------------------------------------------------
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
run_idle() {
  local srv=$1 kind=echo n=$IDLE_N k wpid r0 r1 f0 f1 i per
  [ "$srv" = copas ] && [ "$n" -gt "$COPAS_MAX" ] && n=$COPAS_MAX
  if [[ $srv == nginx-* ]]; then kind=http; fi
  if ! start_server "$srv" $kind; then
    say "  idle $srv: skipped"
    return
  fi
  wpid=${SRV_PIDS%%,*} # the worker (nginx) or the server itself
  sleep 0.3
  r0=$(rss_kib "$wpid")
  f0=$(nfds "$wpid")
  # 4 loaders of n/4 connections, each from its own 127.0.0.x sources, so no
  # process nears the open-file cap or runs out of ephemeral ports.
  k=4
  per=$(((n + k - 1) / k))
  local lpids=()
  for ((i = 0; i < k; i++)); do
    taskset -c 1 "$B/loadgen" -i -a "127.0.0.1:$PORT" -c "$per" -d 120 \
      -S "127.0.0.$((2 * i + 2)),127.0.0.$((2 * i + 3))" \
      >"$OUT/idle.$i" 2>&1 &
    lpids+=($!)
  done
  for _ in $(seq 600); do # every loader connected (60 s at most)
    [ "$(cat "$OUT"/idle.* | grep -c '^ready')" -ge "$k" ] && break
    grep -q -v '^ready' "$OUT"/idle.* && break
    sleep 0.1
  done
  for _ in $(seq 100); do # the server has accepted them all (10 s at most)
    [ "$(nfds "$wpid")" -ge $((f0 + n)) ] && break
    sleep 0.1
  done
  sleep 1 # let every connection's first recv be posted
  r1=$(rss_kib "$wpid")
  f1=$(nfds "$wpid")
  kill "${lpids[@]}" 2>/dev/null || true
  wait "${lpids[@]}" 2>/dev/null || true
  rm -f "$OUT"/idle.*
  stop_server
  printf 'idle\t%s\t%s\t%s\t%s\t%s\n' "$srv" "$((per * k))" "$((f1 - f0))" \
    "$r0" "$r1" >>"$RES"
  say "  idle $srv: $((f1 - f0)) conns, RSS $r0 -> $r1 KiB"
}

# ---- the run -------------------------------------------------------------------
{
  echo "# netio benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# $(uname -sr), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "# rounds=$ROUNDS secs=$SECS warm=$WARM loaders=$LOADERS"
} >"$OUT/header.txt"
say "results in $OUT"
# How busy is CPU 0 with nothing of ours running? Other work there inflates
# the CPU0 column (the proc column is immune to it).
c0=$(busy_ticks 0)
sleep 2
quiet=$(((($(busy_ticks 0) - c0) * 100) / (2 * HZ)))
echo "# CPU 0 was ${quiet}% busy before the run (should be ~0)" >>"$OUT/header.txt"
[ "$quiet" -le 5 ] ||
  say "warning: CPU 0 is ${quiet}% busy without a server: CPU0 figures are inflated"
st0=$(steal_ticks 0) st1=$(steal_ticks 1) t0=$(date +%s)
for ((r = 1; r <= ROUNDS; r++)); do
  if has_part echo; then
    for size in $SIZES; do
      for conns in $CONNS; do
        say "round $r/$ROUNDS: echo ${size} B x $conns connections"
        for srv in $(rotate "$r" $ECHO_SERVERS); do
          wanted "$srv" && run_echo "$srv" "$size" "$conns" "$r"
        done
      done
    done
  fi
  if has_part http; then
    say "round $r/$ROUNDS: HTTP hello, wrk -t1 -c $HTTP_C"
    for srv in $(rotate "$r" $HTTP_SERVERS); do
      wanted "$srv" && run_http "$srv" "$r"
    done
  fi
  if has_part ab; then
    say "round $r/$ROUNDS: ab -k -c $AB_C -n $AB_N"
    for srv in $(rotate "$r" netio-uring nginx-lua); do run_ab "$srv" "$r"; done
  fi
done
if has_part idle; then
  say "idle memory: $IDLE_N connections"
  for srv in $ECHO_SERVERS nginx-lua; do
    if [[ $srv == nginx-* ]] || wanted "$srv"; then run_idle "$srv"; fi
  done
fi
# Messages from outside threads (bench/outside.sh: its own rounds, servers
# and table, appended to the report).
if has_part outside; then
  say "outside threads -> connections (bench/outside.sh)"
  OUT=$OUT/outside ROUNDS=$ROUNDS SECS=$OUTSIDE_SECS WARM=$WARM \
    SERVERS=${OUTSIDE_SERVERS:-} bash bench/outside.sh "$B" >/dev/null ||
    say "warning: bench/outside.sh failed"
fi
# UDP echo (bench/udp_echo.sh: its own rounds, servers and table, appended
# to the report).
if has_part udp; then
  say "UDP echo (bench/udp_echo.sh)"
  OUT=$OUT/udp ROUNDS=$ROUNDS SECS=$UDP_SECS WARM=$WARM \
    SERVERS=${UDP_SERVERS:-} bash bench/udp_echo.sh "$B" >/dev/null ||
    say "warning: bench/udp_echo.sh failed"
fi
# HTTPS hello next to nginx with TLS (bench/https.sh: its own rounds and
# table, appended to the report).
if has_part tls; then
  say "HTTPS next to nginx with TLS (bench/https.sh)"
  OUT=$OUT/https ROUNDS=$ROUNDS SECS=$TLS_SECS HS_SECS=$TLS_HS_SECS \
    bash bench/https.sh "$B" >/dev/null || say "warning: bench/https.sh failed"
fi
# The hypervisor's share of the run (steal): noise no round order removes.
el=$((($(date +%s) - t0) * HZ))
if [ "$el" -gt 0 ]; then
  echo "# steal during the run: CPU 0 $(((($(steal_ticks 0) - st0) * 1000 / el)))‰, CPU 1 $(((($(steal_ticks 1) - st1) * 1000 / el)))‰ of the time (/proc/stat; the host ran other work)" >>"$OUT/header.txt"
fi
lua5.4 bench/report.lua "$RES" "$OUT/header.txt" | tee "$OUT/report.md"
if [ -s "$OUT/outside/results.tsv" ]; then
  echo | tee -a "$OUT/report.md"
  lua5.4 bench/outside_report.lua "$OUT/outside/results.tsv" |
    tee -a "$OUT/report.md"
fi
if [ -s "$OUT/udp/results.tsv" ]; then
  echo | tee -a "$OUT/report.md"
  lua5.4 bench/udp_report.lua "$OUT/udp/results.tsv" | tee -a "$OUT/report.md"
fi
if [ -s "$OUT/https/table.md" ]; then
  { echo; echo "### HTTPS hello next to nginx with TLS (bench/https.sh)"; echo
    sed "s/^# //" "$OUT/https/table.md"; } | tee -a "$OUT/report.md"
fi
echo | tee -a "$OUT/report.md"
lua5.4 bench/report.lua "$RES" --targets-only \
  --outside="$OUT/outside/results.tsv" --https="$OUT/https/results.tsv" |
  tee -a "$OUT/report.md"
say "raw results: $RES; report: $OUT/report.md"
exit 0
}
