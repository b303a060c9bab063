#!/usr/bin/env bash
# Run Docker Compose on the rig's stack from the repository root:
#   docker compose (v2) when present, else docker-compose (v1, 1.25+ for --env-file),
#   always with -p ${COMPOSE_PROJECT_NAME:-wsrig} -f docker-compose.yml
#   -f docker-compose.test.yml --env-file ${WSRIG_ENV_FILE:-.env.test}.
# Usage: scripts/compose.sh up -d | ps | logs ... | down -v
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

ENV_FILE="${WSRIG_ENV_FILE:-.env.test}"
args=(-p "${COMPOSE_PROJECT_NAME:-wsrig}" -f docker-compose.yml -f docker-compose.test.yml
      --env-file "${ENV_FILE}")

if docker compose version >/dev/null 2>&1; then
    exec docker compose "${args[@]}" "$@"
elif command -v docker-compose >/dev/null 2>&1; then
    exec docker-compose "${args[@]}" "$@"
else
    echo "[compose] ERROR: neither 'docker compose' (v2) nor 'docker-compose' (v1) found;" \
         "run scripts/setup_docker.sh" >&2
    exit 127
fi
