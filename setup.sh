#!/usr/bin/env bash
# rustkm's first command on a fresh Debian machine: installs what the host lacks (as root),
# makes a virtualenv with rustkm in it, then runs `rustkm demo`, which creates the toolchain,
# builds the kernel and the printerfact module, and prints a fact from /dev/printerfact in a VM.
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

if [ ! -x .venv/bin/python ]; then
    echo "creating .venv"
    python3 -m venv .venv
fi
echo "installing rustkm into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'

exec .venv/bin/rustkm demo
