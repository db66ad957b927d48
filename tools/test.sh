#!/usr/bin/env bash
# Install, build, and run every test: the C tests and the busted specs, once
# per backend (uring, epoll), in a release build with -Werror and again under
# ASan+UBSan; the threaded tests once more under TSan; then the Windows build
# (MinGW cross build, tests under Wine with the iocp backend).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
jobs=$(nproc)

# Lint first, so that a formatting slip fails in seconds: every C file
# tracked by git against .clang-format, the Lua against .luacheckrc, and
# docs/api.md against the calls the module exports.
echo "=== lint: clang-format, luacheck ==="
{ git ls-files -z '*.c' '*.h' 2>/dev/null ||
  find csrc tests bench examples -name '*.[ch]' -print0; } |
  xargs -0 clang-format --dry-run -Werror
luacheck -q lua spec bench examples tests/win/shims tools/docs-check.lua tools/echo-check.lua
# The documents stand alone: none names a file outside the repository.
if git grep -nE '\.\./shared|DESIGN\.md|STYLE\.md|/work/' -- '*.md' 2>/dev/null; then
  echo "lint: a document above refers to a file outside the repository" >&2
  exit 1
fi
# Every public call has an entry in docs/api.md. The check loads the module,
# so it builds netio.core first, in the build directory the first suite
# below reuses (with the same options).
echo "=== lint: docs check ==="
cmake -S . -B build -DNETIO_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DNETIO_URING=ON -DNETIO_TLS=ON -DNETIO_TESTS=ON -DNETIO_BENCH=ON >/dev/null
cmake --build build -j"$jobs" --target netio_core
lua5.4 tools/docs-check.lua build

run_suite() { # build-dir, cmake args..., then -- ctest args...
  local dir=$1; shift
  local cargs=() targs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do cargs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  targs=("$@")
  echo "=== $dir: ${cargs[*]:-default} ==="
  cmake -S . -B "$dir" -DNETIO_WERROR=ON "${cargs[@]}" >/dev/null
  cmake --build "$dir" -j"$jobs"
  ctest --test-dir "$dir" -j"$jobs" --output-on-failure "${targs[@]}"
}

# Every optional part asked for by name, so that a missing dependency
# fails here instead of being skipped (a plain configure builds what it
# finds: tools/minimal-build.sh below).
all=(-DNETIO_URING=ON -DNETIO_TLS=ON -DNETIO_TESTS=ON -DNETIO_BENCH=ON)
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo "${all[@]}"
run_suite build-asan -DCMAKE_BUILD_TYPE=Debug "-DNETIO_SANITIZE=address;undefined" "${all[@]}"
run_suite build-tsan -DCMAKE_BUILD_TYPE=Debug -DNETIO_SANITIZE=thread "${all[@]}"
# A user's configure: only lua5.4 visible (no liburing, cmocka, OpenSSL,
# busted): epoll-only, no tests, and still a working module and install.
echo "=== build-minimal: plain configure with only Lua 5.4 ==="
timeout 900 bash tools/minimal-build.sh build-minimal
# The LuaRocks install: luarocks make into a scratch tree, loaded from it.
echo "=== luarocks make ==="
timeout 900 bash tools/luarocks-check.sh
# The libFuzzer targets (tests/fuzz), built with clang in their own
# directory, each for a bounded time from its seed corpus; what they find
# new goes to build-fuzz/corpus, not into the tree.
echo "=== build-fuzz: libFuzzer targets (${NETIO_FUZZ_TIME:=60} s each) ==="
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DNETIO_FUZZ=ON -DNETIO_TESTS=OFF -DNETIO_BENCH=OFF -DNETIO_WERROR=ON >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_addr fuzz_line
for f in addr line; do
  mkdir -p "build-fuzz/corpus/$f"
  rc=0
  build-fuzz/"fuzz_$f" -max_total_time="$NETIO_FUZZ_TIME" -print_final_stats=1 \
    -artifact_prefix=build-fuzz/ "build-fuzz/corpus/$f" "tests/fuzz/corpus/$f" \
    >"build-fuzz/fuzz_$f.log" 2>&1 || rc=$?
  grep -E '^Done|stat::number_of_executed_units|ERROR|SUMMARY' "build-fuzz/fuzz_$f.log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "build-fuzz/fuzz_$f.log" >&2
    echo "fuzz_$f failed ($rc); the input is in build-fuzz/crash-*" >&2
    exit 1
  fi
done
# Windows: the MinGW cross build, its tests under Wine (iocp).
bash tools/test-win.sh build-win
echo "=== all suites passed ==="
