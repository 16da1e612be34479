#!/usr/bin/env bash
# The seed's entry point, kept for people following its README: `./template.sh [--deploy]`.
# Everything happens in `ignition template`; see `ignition template --help`.
set -euo pipefail
exec ignition template "$@"
