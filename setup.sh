#!/usr/bin/env bash
# rustkm's first command on a fresh Debian machine: installs what the host lacks (as root),
# makes a virtualenv with rustkm in it, creates the toolchain, then runs `rustkm demo`, which
# prints a fact from /dev/printerfact in a VM as soon as it can: on Debian's stock kernel (no
# kernel build; the self-built kernel if that lane cannot be prepared). Then it builds the
# self-built kernel, so that the README's test command finds it ready.
#
# Run with sudo, only the host packages and the toolchain's root filesystem (mmdebstrap) are
# made as root; the virtualenv, the kernel, the modules and the VMs are the invoking user's, in
# that user's cache, so the README's next command works as that user.
set -euo pipefail
cd "$(dirname "$0")"

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "rustkm needs Python 3.11 or newer; this python3 is $(python3 --version)" >&2; exit 1; }

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v bwrap >/dev/null || need+=(bubblewrap)
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "the host lacks: ${need[*]}. Run this script as root (sudo $0), or install them." >&2
        exit 1
    fi
    echo "installing on the host: ${need[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# Under sudo, everything but the root filesystem belongs to the user who ran sudo.
as_user() { "$@"; }
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    export RUSTKM_CACHE="${RUSTKM_CACHE:-$user_home/.cache/rustkm}"
    echo "running as root for $SUDO_USER: the cache is $RUSTKM_CACHE, owned by $SUDO_USER"
    as_user() { runuser -u "$SUDO_USER" -- env HOME="$user_home" RUSTKM_CACHE="$RUSTKM_CACHE" "$@"; }
    as_user mkdir -p "$RUSTKM_CACHE"
fi

if [ ! -x .venv/bin/python ]; then
    echo "creating .venv"
    as_user python3 -m venv .venv
fi
echo "installing rustkm into .venv"
as_user .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'

if [ "$(id -u)" -eq 0 ]; then
    .venv/bin/rustkm setup
    # The demo's lane: its toolchain (another Debian suite's root filesystem) is made as root.
    .venv/bin/rustkm kernel build --kernel debian:latest ||
        echo "setup: Debian's stock kernel could not be prepared (above); the demo will use the self-built kernel"
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        # The root filesystem stays root's (read-only to the user); the rest is the user's.
        find "$RUSTKM_CACHE" -path "$RUSTKM_CACHE/toolchain/*/root" -prune -o \
            -exec chown -h "$SUDO_USER:" {} +
        # The sandbox mounts the user's folders at their own paths: their mount points in the
        # root filesystem must be the user's to make (the home, holding the cache, and this
        # checkout).
        for rootfs in "$RUSTKM_CACHE"/toolchain/*/root; do
            for dir in "$user_home" "$PWD"; do
                mkdir -p "$rootfs$dir"
                chown "$SUDO_USER:" "$rootfs$dir"
            done
        done
    fi
fi
as_user .venv/bin/rustkm demo
echo "building the self-built kernel for the tests (once; later runs find it ready)"
as_user .venv/bin/rustkm kernel build
