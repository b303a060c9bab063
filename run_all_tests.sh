#!/usr/bin/env bash
# Run the black-box suite against the Docker stack and write
# results/full_suite_<YYYYMMDD_HHMMSS>/ (test_summary.json, test_report.md, logs, JUnit).
#
# Does its own set-up: .venv, Docker engine (installs and starts it as root if
# missing), registry-free images, then the stack; always tears the stack down.
# Exit 0 only when every selected stage passed; 1 when one failed; 3 when none failed
# but one was invalid (the rig could not measure on this host); 2 on a usage error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "${ROOT}"

# The stages come from their registry, config/stages.toml (read with the standard
# library, before .venv exists): name, RUN_* flag, default on/off, the topologies it runs
# in (default single), what it covers.
STAGE_NAMES=(); STAGE_FLAGS=(); STAGE_DEFAULTS=(); STAGE_TOPOLOGIES=(); STAGE_ABOUT=()
while IFS=$'\t' read -r name flag default topologies about; do
    STAGE_NAMES+=("${name}"); STAGE_FLAGS+=("${flag}"); STAGE_DEFAULTS+=("${default}")
    STAGE_TOPOLOGIES+=("${topologies}"); STAGE_ABOUT+=("${about}")
done < <(python3 -c '
import sys, tomllib
for s in tomllib.load(open(sys.argv[1], "rb"))["stage"]:
    tops = ",".join(s.get("topologies", ["single"]))
    print(s["name"], s["flag"], str(s.get("default", True)).lower(), tops, s.get("about", ""), sep="\t")
' "${ROOT}/config/stages.toml")
[ ${#STAGE_NAMES[@]} -gt 0 ] || { echo "no stages in config/stages.toml" >&2; exit 2; }

usage() {
    cat <<'USAGE'
Usage: ./run_all_tests.sh [--stage NAME]... [--smoke] [--keep-up] [--fail-fast] [--profile quick|full]
                          [--topology single|cluster] [--workers N] [--help]

Runs the selected stages against the Docker stack (docker-compose.yml +
docker-compose.test.yml, settings in .env.test) and writes
results/full_suite_<timestamp>/ with test_summary.json and test_report.md
(results/latest points at the newest run).

Stages (config/stages.toml; turn one off with FLAG=false, or pick with --stage; each runs
only in the topologies listed, elsewhere it is reported not run with the reason):
USAGE
    for i in "${!STAGE_NAMES[@]}"; do
        local on="on"; [ "${STAGE_DEFAULTS[$i]}" = "true" ] || on="off"
        printf '  %-16s %-20s %-3s  %-15s %s\n' "${STAGE_NAMES[$i]}" "${STAGE_FLAGS[$i]}" "${on}" \
            "${STAGE_TOPOLOGIES[$i]}" "${STAGE_ABOUT[$i]}"
    done
    cat <<'USAGE'

Options:
  --stage NAME   run only this stage (repeatable); overrides the RUN_* flags
  --smoke        fast subset for every commit (under 2 minutes once images exist):
                 connectivity + message_flow with the [smoke] thresholds profile
                 (10/20 clients, a 6 s observation window); same as
                 --stage connectivity --stage message_flow --profile smoke
  --keep-up      leave the stack running afterwards (tear down: .venv/bin/wsrig down,
                 with the same COMPOSE_PROJECT_NAME; the last line prints the command)
  --fail-fast    stop after the first stage that does not pass
  --profile P    threshold profile from config/thresholds.toml (default quick; env RIG__PROFILE)
  --topology T   the system's shape (default single; env RIG__TOPOLOGY): single = one
                 dashboard-backend; cluster = CLUSTER_REPLICAS (3) backend replicas behind
                 HAProxy on the same port, sharing Redis (docker-compose.cluster.yml laid
                 over the two files above; also builds the Redis and HAProxy images;
                 docs/CLUSTER.md)
  --workers N    the load and performance stages' subscribers run as N load workers on a
                 Docker Swarm (env RIG__WORKERS; default 0: the rig's own processes). A
                 single-node swarm is initialised if none is active and left afterwards;
                 also builds the load-worker image (docs/DISTRIBUTED.md)
  --help         this text

Environment: BOT_IMAGE, DASHBOARD_IMAGE, PROXY_IMAGE (test another implementation;
with WSRIG_SKIP_BUILD=1 nothing is built), DASHBOARD_URL, BOT_URL, RIG__PROFILE,
RIG__KEEP_RUNS (runs kept in results/, default 20; 0 keeps all).
Exit codes: 0 every selected stage passed; 1 a stage failed (the system is broken,
or a stage errored); 3 no stage failed but one was invalid: the rig could not measure
on this host (its own event loop, generator or CPU broke its limits; the report names
the measurement); 2 usage error.
USAGE
}

KEEP_UP=0
FAIL_FAST=0
PICKED=()
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h) usage; exit 0 ;;
        --stage) [ $# -ge 2 ] || { echo "--stage needs a name" >&2; exit 2; }; PICKED+=("$2"); shift 2 ;;
        --stage=*) PICKED+=("${1#--stage=}"); shift ;;
        --smoke) PICKED+=(connectivity message_flow); export RIG__PROFILE="${RIG__PROFILE:-smoke}"; shift ;;
        --keep-up) KEEP_UP=1; shift ;;
        --fail-fast) FAIL_FAST=1; shift ;;
        --profile) export RIG__PROFILE="$2"; shift 2 ;;
        --topology) [ $# -ge 2 ] || { echo "--topology needs single or cluster" >&2; exit 2; }
            export RIG__TOPOLOGY="$2"; shift 2 ;;
        --topology=*) export RIG__TOPOLOGY="${1#--topology=}"; shift ;;
        --workers) [ $# -ge 2 ] || { echo "--workers needs a number" >&2; exit 2; }
            export RIG__WORKERS="$2"; shift 2 ;;
        --workers=*) export RIG__WORKERS="${1#--workers=}"; shift ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ ${#PICKED[@]} -gt 0 ]; then
    for flag in "${STAGE_FLAGS[@]}"; do export "${flag}=false"; done
    for name in "${PICKED[@]}"; do
        found=0
        for i in "${!STAGE_NAMES[@]}"; do
            if [ "${STAGE_NAMES[$i]}" = "${name}" ]; then export "${STAGE_FLAGS[$i]}=true"; found=1; fi
        done
        [ "${found}" = 1 ] || { echo "unknown stage '${name}'; known: ${STAGE_NAMES[*]}" >&2; exit 2; }
    done
fi
for i in "${!STAGE_FLAGS[@]}"; do
    flag="${STAGE_FLAGS[$i]}"; export "${flag}=${!flag:-${STAGE_DEFAULTS[$i]}}"
done
case "${RIG__WORKERS:-0}" in
    '' | *[!0-9]*) echo "--workers/RIG__WORKERS must be a whole number, got '${RIG__WORKERS}'" >&2; exit 2 ;;
esac
case "${RIG__TOPOLOGY:-single}" in
    single | cluster) ;;
    *) echo "unknown topology '${RIG__TOPOLOGY}' (single or cluster)" >&2; exit 2 ;;
esac
# A stage runs only in the topologies its registry entry lists (a single-node stage
# addresses the one dashboard-backend container): elsewhere it is off, and the summary
# says why (wsrig summarize reads the same registry).
for i in "${!STAGE_FLAGS[@]}"; do
    flag="${STAGE_FLAGS[$i]}"
    case ",${STAGE_TOPOLOGIES[$i]}," in
        *",${RIG__TOPOLOGY:-single},"*) ;;
        *)
            if [ "${!flag}" = true ] && [ ${#PICKED[@]} -gt 0 ]; then
                echo "WARNING: stage ${STAGE_NAMES[$i]} runs in the ${STAGE_TOPOLOGIES[$i]} topology only: not run in ${RIG__TOPOLOGY:-single}" >&2
            fi
            export "${flag}=false" ;;
    esac
done

say() { printf '\n==> %s\n' "$*"; }
TS="$(date -u +%Y%m%d_%H%M%S)"
RESULTS="${ROOT}/results/full_suite_${TS}"
mkdir -p "${RESULTS}"
ln -sfn "full_suite_${TS}" "${ROOT}/results/latest"
export WSRIG_RUN_ID="${TS}"
export RIG__STARTED_AT
RIG__STARTED_AT="$(date -u +%Y-%m-%dT%H:%M:%S+00:00)"
export RIG__RESULTS_DIR="${RESULTS}"

say "run ${TS}: results in ${RESULTS} (topology ${RIG__TOPOLOGY:-single}, load workers ${RIG__WORKERS:-0})"
for i in "${!STAGE_NAMES[@]}"; do
    flag="${STAGE_FLAGS[$i]}"; printf '    %-16s %s=%s\n' "${STAGE_NAMES[$i]}" "${flag}" "${!flag}"
done

say "set-up: Python environment"
scripts/setup_env.sh
WSRIG="${ROOT}/.venv/bin/wsrig"
"${WSRIG}" config
# Keep the last RIG__KEEP_RUNS runs (default 20; 0 keeps all): oldest full_suite_* only.
"${WSRIG}" prune-results "${ROOT}/results" || true

say "set-up: Docker engine"
scripts/setup_docker.sh

if [ "${RUN_BROWSER:-false}" = true ]; then
    say "set-up: Chromium for the browser stage"
    if ! scripts/setup_browser.sh; then
        echo "WARNING: Chromium cannot run here: the browser stage is skipped (RUN_BROWSER=false)" >&2
        export RUN_BROWSER=false
    fi
fi

say "set-up: images (no registry needed)"
scripts/build_images.sh

STACK_STARTED=0
LOGS_DONE=0
finish() {
    local code=$?
    trap - EXIT INT TERM
    set +e
    if [ "${STACK_STARTED}" = 1 ]; then
        [ "${LOGS_DONE}" = 1 ] || "${WSRIG}" collect-logs "${RESULTS}"
        if [ "${KEEP_UP}" = 1 ]; then
            say "--keep-up: the stack (compose project ${COMPOSE_PROJECT_NAME:-wsrig}) stays up; tear it down with: COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-wsrig} RIG__TOPOLOGY=${RIG__TOPOLOGY:-single} .venv/bin/wsrig down"
        else
            say "tearing the stack down"
            "${WSRIG}" down
        fi
    fi
    if [ ! -f "${RESULTS}/test_summary.json" ]; then
        "${WSRIG}" summarize "${RESULTS}" >/dev/null 2>&1
    fi
    exit "${code}"
}
CHILD=""
# Long steps run in the background and are waited for, so a signal is handled at once
# (bash defers traps while a foreground child runs).
run_child() {
    "$@" &
    CHILD=$!
    local rc=0
    wait "${CHILD}" || rc=$?
    CHILD=""
    return "${rc}"
}
on_signal() {
    echo; echo "interrupted: stopping the current step, then cleaning up" >&2
    if [ -n "${CHILD}" ]; then
        pkill -TERM -P "${CHILD}" 2>/dev/null || true
        kill -TERM "${CHILD}" 2>/dev/null || true
        wait "${CHILD}" 2>/dev/null || true
    fi
    exit 130
}
trap finish EXIT
trap on_signal INT TERM

say "starting the stack"
"${WSRIG}" cleanup
"${WSRIG}" check-ports
STACK_STARTED=1
run_child "${WSRIG}" up

ALL_OK=1
for i in "${!STAGE_NAMES[@]}"; do
    name="${STAGE_NAMES[$i]}"; flag="${STAGE_FLAGS[$i]}"
    [ "${!flag}" = "true" ] || continue
    say "stage ${name}"
    if ! run_child "${WSRIG}" stage "${name}" --results "${RESULTS}"; then
        ALL_OK=0
        echo "stage ${name} did not pass (see ${RESULTS}/${name}.log)"
        if [ "${FAIL_FAST}" = 1 ]; then echo "--fail-fast: stopping"; break; fi
    fi
done

say "collecting container logs"
"${WSRIG}" collect-logs "${RESULTS}" || true
LOGS_DONE=1

say "summary"
set +e
"${WSRIG}" summarize "${RESULTS}"
VERDICT=$?
set -e
echo "report: ${RESULTS}/test_report.md"
# A stage command that failed outright (its pytest crashed) is a failure whatever the
# summary says; an invalid verdict (3) stands only when every stage command succeeded.
[ "${ALL_OK}" = 1 ] || VERDICT=1
exit "${VERDICT}"
