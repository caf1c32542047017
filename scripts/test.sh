#!/bin/sh
# Sets up and runs the whole test suite: system packages, venv, lint, format, types, layers, tests.
set -eu
cd "$(dirname "$0")/.."
sh scripts/system-deps.sh
python3 -m venv .venv
.venv/bin/pip install -q -e '.[dev]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/pytest "$@"
