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
# Two worker processes (the 2-core target machine; WATCHER_TEST_WORKERS to change), each
# running whole test files, so a file's fixtures are set up once and its tests keep their order.
.venv/bin/pytest -n "${WATCHER_TEST_WORKERS:-2}" --dist loadfile "$@"
