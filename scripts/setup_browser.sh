#!/usr/bin/env bash
# The browser stage's browser: Debian's chromium package, driven by Playwright for Python
# (installed into .venv by scripts/setup_env.sh) with executable_path, so nothing ever
# downloads a browser. Idempotent: does nothing when chromium is already on PATH.
# Exit 0 when chromium runs; 1 (with the reason) when it cannot be installed.
set -euo pipefail
# shellcheck source=scripts/log.sh
. "$(dirname "${BASH_SOURCE[0]}")/log.sh"

if ! command -v chromium >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || { log "ERROR: chromium missing and no apt-get to install it (install Chromium, or RUN_BROWSER=false)"; exit 1; }
    [ "$(id -u)" = 0 ] || { log "ERROR: chromium missing; installing it needs root (apt-get install chromium), or RUN_BROWSER=false"; exit 1; }
    log "installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null; }
fi
log "$(chromium --version 2>/dev/null | head -1)"
