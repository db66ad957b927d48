#!/usr/bin/env bash
# test-win.sh: the Windows suite under Wine -- Lua and cmocka for Windows from
# Debian sources (tools/win-deps.sh), OpenSSL too (tools/win-openssl.sh,
# cached outside the clone), the MinGW cross build (-Werror), then
# every cmocka test with NETIO_BACKEND=iocp under wine64 via ctest.
#   bash tools/test-win.sh [build-dir]     (default: build-win)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-win}
# Relative to the top of the clone; made absolute for Wine and CMake.
case $dir in /*) ;; *) dir="$(pwd)/$dir" ;; esac
jobs=$(nproc)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in mingw-w64 wine64 dpkg-dev cmake; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

echo "=== ${1:-build-win}: MinGW cross build, tests under Wine (iocp) ==="
bash tools/win-deps.sh "$dir/deps"
# OpenSSL's static libraries for Windows, built once into a cache outside
# the clone (minutes the first time, seconds after): tools/win-openssl.sh.
openssl=$(bash tools/win-openssl.sh)
cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNETIO_WERROR=ON \
  -DNETIO_TLS=ON -DNETIO_TESTS=ON -DNETIO_WIN_SPECS=ON \
  -DNETIO_WIN_DEPS="$dir/deps" -DOPENSSL_ROOT_DIR="$openssl" >/dev/null
cmake --build "$dir" -j"$jobs"

# One Wine prefix per build directory, made before the tests start so that
# parallel tests do not race to create it.
export WINEPREFIX="$dir/wineprefix" WINEDEBUG=-all
wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
"$wine" wineboot -i >/dev/null 2>&1 || true
# Every test once; only those that died as a failed wine64 start (no output,
# exit within milliseconds) once more: tools/ctest-wine.sh.
bash tools/ctest-wine.sh "$dir" "$jobs"
tmp="$dir/Testing/Temporary"
# Per-binary cmocka counts (ctest counts binaries only).
awk '/^[0-9]+\/[0-9]+ Test: c\./ { name = $3 }
     /^\[  PASSED  \] [0-9]+ test/ && name { p[name] = $4 }
     /^\[  SKIPPED \] [0-9]+ test/ && name { k[name] = $4 }
     END { for (n in p) { printf "  %-32s %3d passed %d skipped\n", n, p[n], k[n] + 0;
                          tp += p[n]; tk += k[n] }
           printf "cmocka iocp: %d passed, %d skipped\n", tp, tk }' \
  "$tmp/AllRuns.log" | sort
if [ -f tools/spec-counts.sh ]; then bash tools/spec-counts.sh "$dir" || true; fi
"$(dirname "$wine")/wineserver" -k 2>/dev/null || wineserver -k 2>/dev/null || true
echo "=== Windows suite passed ==="
