#!/bin/sh
# install-deps.sh - installs the Debian packages nextframe needs, if missing.
# Called by `make run` and `make test`; safe to run again. Uses sudo when
# not root. Set NF_NO_INSTALL=1 to only check.
set -eu

PKGS="build-essential pkg-config libuv1-dev libwebsockets-dev
libwebsockets-evlib-uv libturbojpeg0-dev libjansson-dev ffmpeg opencv-doc
python3 clang-format cppcheck curl bc libobs-dev libsimde-dev obs-studio
xvfb python3-websockets python3-pil libdnnl-dev chromium haproxy clang libclang-rt-14-dev"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# Node.js and npm (the browser test's playwright-core) by command, not by
# package: a machine may have them from elsewhere (nodesource's nodejs
# bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
if [ "${NF_NO_INSTALL:-0}" = 1 ]; then
    echo "install-deps: NF_NO_INSTALL=1, not installing; install them by hand" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || {
        echo "install-deps: not root and no sudo: install$missing by hand" >&2
        exit 1
    }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update"
$SUDO apt-get update -q
echo "install-deps: apt-get install (this can take a few minutes)"
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
echo "install-deps: done"
