#!/usr/bin/env bash
# The project's own tests: set up .venv, then lint (ruff), type-check (mypy) and run
# tests/unit (services' logic, the rig's checkers, the fault proxy). No Docker needed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
scripts/setup_env.sh
BIN="${ROOT}/.venv/bin"
echo "[test_unit] ruff check"
"${BIN}/ruff" check .
echo "[test_unit] ruff format --check"
"${BIN}/ruff" format --check .
echo "[test_unit] mypy"
"${BIN}/mypy"
echo "[test_unit] pytest tests/unit"
"${BIN}/pytest" tests/unit -q "$@"
