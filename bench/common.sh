# shellcheck shell=bash
# bench/common.sh: the shell helpers the benchmark scripts share (run.sh,
# outside.sh, udp_echo.sh, https.sh), sourced from the repository's root:
#   . bench/common.sh
# SAY_PREFIX (optional) starts every message of say().

say() { printf '%s%s\n' "${SAY_PREFIX:-}" "$*" >&2; }

# TERM, then KILL after 1 s; reaps it. Only a pid this script started.
stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 20); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# field NAME TEXT: the number after " NAME=" in TEXT, or $3 (default "").
field() {
  local v
  v=$(sed -nE "s/.* $1=([0-9]+).*/\\1/p" <<<" $2" | head -1)
  echo "${v:-${3:-}}"
}

# rotate ROUND LIST...: the list shifted by the round number, so no server
# always goes first.
rotate() {
  local r=$1
  shift
  local a=("$@") n=$# i
  for ((i = 0; i < n; i++)); do printf '%s ' "${a[(i + r) % n]}"; done
}

# Busy ticks of CPU $1 (/proc/stat: user+nice+system+irq+softirq).
busy_ticks() { awk -v c="cpu$1" '$1 == c { print $2+$3+$4+$7+$8 }' /proc/stat; }

# Steal ticks of CPU $1 (/proc/stat: time the hypervisor ran something else
# while this CPU had work; a VM that shares its host shows it as noise).
steal_ticks() { awk -v c="cpu$1" '$1 == c { print $9 }' /proc/stat; }

# utime+stime ticks of the comma-separated pids.
pid_ticks() {
  local p s=0
  for p in ${1//,/ }; do
    [ -r "/proc/$p/stat" ] || continue
    s=$((s + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
  done
  echo "$s"
}

# The pids whose parent is $1, comma separated.
children() {
  local f pid ppid out=""
  for f in /proc/[0-9]*/stat; do
    read -r pid _ _ ppid _ <"$f" 2>/dev/null || continue
    [ "$ppid" = "$1" ] && out=${out:+$out,}$pid
  done
  echo "$out"
}

# wait_port PORT PID: 0 once 127.0.0.1:PORT accepts (5 s at most), 1 when
# PID ended first or the time is up.
wait_port() {
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}
