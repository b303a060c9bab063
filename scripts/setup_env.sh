#!/usr/bin/env bash
# Create .venv and install the rig (editable) with its dev tools. Idempotent: skips the
# install when pyproject.toml has not changed since the last successful one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
PYTHON="${PYTHON:-python3}"
VENV="${ROOT}/.venv"
# shellcheck source=scripts/log.sh
. "$(dirname "${BASH_SOURCE[0]}")/log.sh"

command -v "${PYTHON}" >/dev/null || { log "ERROR: ${PYTHON} not found; install Python 3.11+"; exit 1; }
"${PYTHON}" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || { log "ERROR: Python 3.11+ needed, found $("${PYTHON}" --version)"; exit 1; }
if [ ! -x "${VENV}/bin/python" ]; then
    log "creating ${VENV}"
    "${PYTHON}" -m venv "${VENV}" || { log "ERROR: python3 -m venv failed (Debian: apt-get install python3-venv)"; exit 1; }
fi
stamp="$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "${VENV}/.wsrig-installed" 2>/dev/null)" != "${stamp}" ]; then
    log "installing the rig and its dependencies into ${VENV}"
    "${VENV}/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip >/dev/null 2>&1 || true
    "${VENV}/bin/python" -m pip install --disable-pip-version-check -q -e '.[dev,browser]'
    echo "${stamp}" > "${VENV}/.wsrig-installed"
else
    log "${VENV} up to date"
fi

# Debian's redis-server for the backend's Redis-mode unit tests (tests/unit/test_backend_shared_log.py
# starts its own on a random 127.0.0.1 port and skips without it). Only as root with apt-get;
# installed without starting the service (a policy-rc.d for the install), so nothing takes
# port 6379 from the cluster topology's Redis.
if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing redis-server (Debian package) for the Redis-mode unit tests"
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [ ! -e "${policy}" ]; then
        printf '#!/bin/sh\nexit 101\n' >"${policy}" && chmod +x "${policy}" && own_policy=1
    fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; } \
        || log "WARNING: could not install redis-server: the Redis-mode unit tests will be skipped"
    [ "${own_policy}" = 0 ] || rm -f "${policy}"
fi
