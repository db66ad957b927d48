#!/usr/bin/env bash
# deb-src.sh: make sure `apt-get source PACKAGE` can work, adding a deb-src
# twin of the system's Debian entries once (idempotent).
#
#   tools/deb-src.sh PACKAGE
#
# Used by win-deps.sh and win-openssl.sh, which build Windows libraries from
# Debian's source packages.
set -euo pipefail
pkg=${1:?usage: deb-src.sh PACKAGE}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
have_src() { apt-get source --print-uris "$pkg" >/dev/null 2>&1; }
have_src && exit 0
# Debian 12 images list their archive in deb822 form (debian.sources,
# "Types: deb"): add a twin with deb-src.
src=/etc/apt/sources.list.d/debian.sources
if [ -f "$src" ]; then
  sed 's/^Types: deb$/Types: deb-src/' "$src" |
    $SUDO tee /etc/apt/sources.list.d/netio-deb-src.sources >/dev/null
else
  echo "deb-src http://deb.debian.org/debian bookworm main" |
    $SUDO tee /etc/apt/sources.list.d/netio-deb-src.list >/dev/null
fi
$SUDO apt-get update -qq
have_src || { echo "deb-src.sh: no source package $pkg" >&2; exit 1; }
