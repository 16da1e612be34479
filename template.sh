#!/usr/bin/env bash
# The seed's entry point, kept for people following its README: `./template.sh [--deploy]`.
# Everything happens in `ignition template`; see `ignition template --help`.
# After the README's install the command lives in this checkout's .venv, which is not on PATH.
set -euo pipefail
if command -v ignition >/dev/null 2>&1; then
    exec ignition template "$@"
fi
venv_ignition="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.venv/bin/ignition"
if [ -x "$venv_ignition" ]; then
    exec "$venv_ignition" template "$@"
fi
echo "template.sh: ignition is not installed; run: python3 -m venv .venv && .venv/bin/pip install ." >&2
exit 127
