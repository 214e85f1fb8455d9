#!/usr/bin/env bash
# Sets up everything from nothing, then runs lint and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-osmesa}"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
