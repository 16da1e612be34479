#!/usr/bin/env bash
# The project's whole check: lint, types, shell scripts, tests. Run from a venv with '.[dev]'.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ] && [ -z "${VIRTUAL_ENV:-}" ]; then
    export PATH="$PWD/.venv/bin:$PATH"
fi

ruff check src tests benchmarks
ruff format --check src tests benchmarks
mypy
git ls-files -z -- '*.sh' '.ci/run' | xargs -0 --no-run-if-empty shellcheck
hadolint Dockerfile
actionlint .github/workflows/*.yml
python -m pytest "$@"
