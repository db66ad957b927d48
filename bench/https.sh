#!/usr/bin/env bash
# bench/https.sh [build-dir]: HTTPS hello world -- netio (uring, epoll) next
# to nginx with TLS (one worker) in the same run: requests/s and server CPU
# per request with keep-alive, handshakes/s and server CPU per handshake
# with a new TLS connection per request; prints a markdown table with the
# ratios to nginx.
#
#   bash bench/https.sh                     (~2 min: 3 rounds x 3 servers)
#   ROUNDS=1 SECS=2 HS_SECS=2 bash bench/https.sh build-bench  (smoke run)
#
# It builds netio in build-dir (default: build; configured as Release when
# it has no CMakeCache.txt) and makes a throw-away CA with tools/test-ca.sh:
# both servers present server.pem (ECDSA P-256) from it, and the loaders
# trust ca.pem. Same OpenSSL library, same defaults on both sides (TLS 1.3,
# X25519, the first cipher the client offers).
#
# Servers (pinned to SERVER_CPU):
#   netio-uring  netio bench/https_netio.lua, NETIO_BACKEND=uring (the
#   netio-epoll  request handling of bench/http_netio.lua, over TLS)
#   nginx        Debian's nginx, `worker_processes 1`, `return 200
#                "hello world"`, no access log, keepalive_requests 1000000,
#                its own prefix under OUT (never the system's nginx)
#
# Keep-alive: `wrk -t1 -c CONNS` on LOAD_CPU for SECS seconds after a
# 1-second warm-up run; requests/s from wrk; CPU per request: the server's
# utime+stime (/proc/<pid>/stat, nginx: master + worker) over the run ÷
# requests ("proc"), and the busy time of SERVER_CPU from /proc/stat
# (user+nice+system+irq+softirq: adds the kernel's TCP work and whatever
# else ran there) ÷ requests ("CPU0"), as bench/run.sh measures.
# Handshakes: HS_PAR `openssl s_time -new -www /` processes on LOAD_CPU for
# HS_SECS seconds: one full handshake (no resumption), one HTTP/1.0 GET and
# a close per connection; handshakes/s = their connections ÷ wall time, and
# the server's utime+stime ÷ connections. The loaders share one core, so
# the rate is bounded by the clients' handshake work as well; the CPU
# figure is the server's own. Both servers allow TLS 1.2 and 1.3 (nginx
# 1.22's default has no 1.3: set), so both negotiate 1.3.
# Within a round the servers take turns (the order rotates each round); the
# table gives medians over rounds, and "× nginx" is the median of the
# per-round ratios to nginx.
#
# Knobs (environment):
#   ROUNDS=3 SECS=5 HS_SECS=5 CONNS=50 HS_PAR=4 (s_time processes at once)
#   SERVERS="netio-uring netio-epoll nginx"
#   SERVER_CPU=0 LOAD_CPU=1     taskset lists
#   OUT=/tmp/netio-https.XXXX   where results.tsv, table.md, logs and the CA go
# The whole script is one brace group, parsed before it runs.
{
set -euo pipefail
B=${1:-build}
[[ $B == /* ]] || B=$PWD/$B
cd "$(dirname "$0")/.."
. bench/common.sh
SAY_PREFIX="https.sh: "
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
HS_SECS=${HS_SECS:-5}
CONNS=${CONNS:-50}
HS_PAR=${HS_PAR:-4}
SERVERS=${SERVERS:-netio-uring netio-epoll nginx}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT=${OUT:-$(mktemp -d /tmp/netio-https.XXXX)}
mkdir -p "$OUT"

for p in wrk openssl nginx; do
  command -v "$p" >/dev/null || { say "$p missing (apt-get install wrk openssl nginx-light)"; exit 1; }
done
if [ ! -f "$B/CMakeCache.txt" ]; then
  cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$B" --target netio -j2 >/dev/null
bash tools/test-ca.sh "$OUT/ca"
CA=$OUT/ca
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
HZ=$(getconf CLK_TCK)
PORT=$((21000 + RANDOM % 8000)) # below the ephemeral range (32768-)
SRV_PID="" SRV_PIDS=""

nginx_conf() {
  local P=$OUT/nginx
  mkdir -p "$P"
  cat >"$P/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $P/nginx.pid;
lock_file $P/nginx.lock;
error_log $P/error.log warn;
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
    listen 127.0.0.1:$PORT ssl backlog=65535;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $CA/server.pem;
    ssl_certificate_key $CA/server.key;
    location / { return 200 "hello world"; }
  }
}
EOF
}



start_server() { # name; returns 1 when it cannot run here
  local name=$1 log=$OUT/server.log
  SRV_PID="" SRV_PIDS=""
  case $name in
  netio-uring | netio-epoll)
    NETIO_BACKEND=${name#netio-} taskset -c "$SERVER_CPU" "$B/netio" \
      bench/https_netio.lua "127.0.0.1:$PORT" "$CA/server.pem" "$CA/server.key" \
      >"$log" 2>&1 &
    ;;
  nginx)
    nginx_conf
    taskset -c "$SERVER_CPU" nginx -p "$OUT/nginx" -e "$OUT/nginx/error.log" \
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
  if [ "$name" = nginx ]; then
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
trap 'stop_server' EXIT

now() { date +%s.%N; }
per() { awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }'; }

# Keep-alive requests: prints "rps proc_us cpu0_us".
keepalive() {
  local url="https://127.0.0.1:$PORT/" out p0 p1 c0 c1 n secs
  taskset -c "$LOAD_CPU" wrk -t1 -c "$CONNS" -d 1s "$url" >/dev/null 2>&1 || true
  p0=$(pid_ticks "$SRV_PIDS") c0=$(busy_ticks "$SERVER_CPU")
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c "$CONNS" -d "${SECS}s" "$url" 2>&1)
  p1=$(pid_ticks "$SRV_PIDS") c1=$(busy_ticks "$SERVER_CPU")
  echo "$out" >>"$OUT/wrk.log"
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    say "  wrk trouble: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | head -2)"
  fi
  n=$(awk '/requests in/ { print $1 }' <<<"$out")
  secs=$(awk '/requests in/ { sub(/s,$/, "", $4); print $4 }' <<<"$out")
  [ -n "$n" ] && [ "$n" -gt 0 ] || { say "  wrk: no requests: $out"; echo "0 0 0"; return; }
  echo "$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') $(per $((p1 - p0)) "$n") $(per $((c1 - c0)) "$n")"
}

# New connections: prints "handshakes_per_s proc_us". HS_PAR s_time
# processes at once (one alone leaves the server idle while it works).
handshakes() {
  local out p0 p1 t0 t1 n=0 k i
  p0=$(pid_ticks "$SRV_PIDS") t0=$(now)
  for i in $(seq "$HS_PAR"); do
    taskset -c "$LOAD_CPU" openssl s_time -connect "127.0.0.1:$PORT" -new \
      -www / -CAfile "$CA/ca.pem" -time "$HS_SECS" >"$OUT/s_time.$i" 2>&1 &
  done
  wait
  p1=$(pid_ticks "$SRV_PIDS") t1=$(now)
  for i in $(seq "$HS_PAR"); do
    out=$(cat "$OUT/s_time.$i")
    echo "$out" >>"$OUT/s_time.log"
    k=$(awk '/connections in .* real seconds/ { print $1 }' <<<"$out")
    if [ -z "$k" ] || [ "$k" -eq 0 ] || grep -q ' 0 bytes read per connection' <<<"$out"; then
      say "  s_time trouble: $(tail -3 <<<"$out")"
      echo "0 0"
      return
    fi
    n=$((n + k))
  done
  echo "$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }') $(per $((p1 - p0)) "$n")"
}


TSV=$OUT/results.tsv
: >"$TSV"
for r in $(seq "$ROUNDS"); do
  for srv in $(rotate "$r" $SERVERS); do
    if ! start_server "$srv"; then
      say "round $r: $srv skipped"
      continue
    fi
    read -r rps us c0us < <(keepalive)
    read -r hs hsus < <(handshakes)
    stop_server
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$srv" "$rps" "$us" "$c0us" "$hs" "$hsus" >>"$TSV"
    say "round $r: $srv: $rps req/s, $us µs/req (CPU0 $c0us), $hs handshakes/s, $hsus µs/handshake"
  done
done

{
  echo "# $(uname -sr), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "# $(nginx -v 2>&1), $(openssl version), wrk -t1 -c $CONNS ${SECS}s, s_time -new ${HS_SECS}s, $ROUNDS rounds (medians)"
  echo
  echo '| server | keep-alive req/s | CPU µs/req (proc) | × nginx | CPU0 µs/req | handshakes/s | CPU µs/handshake | × nginx |'
  echo '|---|--:|--:|--:|--:|--:|--:|--:|'
  awk -F'\t' '
    function median(arr, key, cnt,    i, j, t, v) {
      for (i = 1; i <= cnt; i++) v[i] = arr[key, i]
      for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++)
        if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2 }
    { row[NR] = $0 }
    $2 == "nginx" { nu[$1] = $4; nh[$1] = $7 }
    END {
      for (i = 1; i <= NR; i++) {
        split(row[i], f, "\t"); k = f[2]
        if (!(k in seen)) { seen[k] = 1; order[++n] = k }
        c = ++cnt[k]
        rps[k, c] = f[3]; us[k, c] = f[4]; c0[k, c] = f[5]; hs[k, c] = f[6]; hu[k, c] = f[7]
        ru[k, c] = (nu[f[1]] > 0) ? f[4] / nu[f[1]] : 0
        rh[k, c] = (nh[f[1]] > 0) ? f[7] / nh[f[1]] : 0
      }
      for (i = 1; i <= n; i++) {
        k = order[i]
        printf "| %s | %d | %.1f | %.2f | %.1f | %d | %.0f | %.2f |\n", k,
          median(rps, k, cnt[k]), median(us, k, cnt[k]), median(ru, k, cnt[k]),
          median(c0, k, cnt[k]), median(hs, k, cnt[k]), median(hu, k, cnt[k]),
          median(rh, k, cnt[k])
      }
    }' "$TSV"
  echo
  echo "Target (issue 11): netio's CPU per keep-alive request ≤ 1.1 × nginx's (the first × nginx column)."
} | tee "$OUT/table.md"
say "results in $OUT"
exit 0
}
