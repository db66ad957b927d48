#!/usr/bin/env bash
# Install what netio needs to build and test on Debian 12 (as root or via sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# clang-format and lua-check: the lint step of tools/test.sh; clang and
# libclang-rt-14-dev (libFuzzer): the fuzz targets in tests/fuzz.
# redis-server and lua-nginx-redis (OpenResty's resty.redis, which pulls in
# nginx-extras): spec/ngx_redis_spec.lua; redis-tools (redis-benchmark):
# bench/redis.sh. libssl-dev and openssl (s_server, s_client): TLS and its
# specs; curl (and the nginx lua-nginx-redis brings): the TLS peers spec;
# luarocks: the rockspec check (tools/luarocks-check.sh).
pkgs=(build-essential cmake pkg-config lua5.4 liblua5.4-dev liburing-dev
      libcmocka-dev lua-busted clang-format lua-check clang libclang-rt-14-dev
      redis-server redis-tools lua-nginx-redis libssl-dev openssl curl luarocks)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
