#!/usr/bin/env bash
# The project's own tests: set up .venv, then lint (ruff), type-check (mypy) and run
# tests/unit (services' logic, the rig's checkers, the fault proxy). No Docker needed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
scripts/setup_env.sh
BIN="${ROOT}/.venv/bin"
# The HTML report's browser test (tests/unit/test_htmlreport.py) opens the page in Debian's
# chromium; as root, install it when missing. A failed install does not fail the unit run:
# that one test then skips and says why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[test_unit] chromium missing: installing it (scripts/setup_browser.sh)"
    scripts/setup_browser.sh || echo "[test_unit] chromium not installed; the HTML report's browser test will skip"
fi
echo "[test_unit] ruff check"
"${BIN}/ruff" check .
echo "[test_unit] ruff format --check"
"${BIN}/ruff" format --check .
echo "[test_unit] mypy"
"${BIN}/mypy"
echo "[test_unit] pytest tests/unit"
"${BIN}/pytest" tests/unit -q "$@"
