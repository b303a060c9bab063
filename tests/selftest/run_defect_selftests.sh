#!/usr/bin/env bash
# System-level self-tests of the stages (fault tolerance, load, integration, security, cluster): do they catch real defects?
#
# For each defect under tests/selftest/defects/<name>/ this script
#   1. builds a variant image FROM a clean service image, with one function of the
#      installed service code rewritten by the defect's patch.py (the build fails
#      loudly when the patch target is not found); tag wsrig/<service>:defect-<name>
#   2. starts the stack with that image under a separate compose project and ports
#      (project wsrigdefect, 127.0.0.1:18000/18081/19001; never the default `wsrig`)
#   3. runs the one relevant fault scenario of tests/probes/test_fault_tolerance.py
#   4. asserts from <results>/fault_tolerance.record.json that the scenario FAILED
#      and that a finding names the defect
#   5. tears the stack down (also on error / Ctrl-C)
# A control run (default on) first runs every scenario used here against the clean
# images and requires it to PASS, so a "caught" defect is not just a flaky scenario.
#
# The clean images are built from `git archive HEAD` (not the working tree, not the
# shared :dev tags, which other work may rebuild at any moment) and tagged
# wsrig/<service>:selftest-base. The shipped Dockerfiles and services have no defect
# switch; the defects exist only in these throw-away images.
#
# Usage: tests/selftest/run_defect_selftests.sh [DEFECT ...]   (default: all)
# Env:   SELFTEST_CONTROL=0      skip the control run
#        SELFTEST_BASE=dev       use wsrig/ai-trading-bot:dev and wsrig/dashboard-backend:dev
#                                as the clean images instead of building them from HEAD
#        SELFTEST_RESULTS=DIR    results directory (default results/selftest_<ts>)
#        SELFTEST_KEEP_IMAGES=1  keep the defect images afterwards
#        SELFTEST_PROJECT, SELFTEST_DASHBOARD_PORT, SELFTEST_BOT_PORT, SELFTEST_PROXY_PORT,
#        SELFTEST_CLEAN_TAG      compose project, host ports and clean-image tag
#                                (defaults wsrigdefect, 18000, 18081, 19001, selftest-base)
# Exit:  0 every defect caught (and the control passed); 1 otherwise; 2 setup error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${ROOT}"
HERE="${ROOT}/tests/selftest"
PY="${ROOT}/.venv/bin/python"
WSRIG="${ROOT}/.venv/bin/wsrig"
TS="$(date +%Y%m%d_%H%M%S)"
RESULTS="${SELFTEST_RESULTS:-${ROOT}/results/selftest_${TS}}"
SCENARIO_TIMEOUT_S=240

LOG_TAG=selftest DIE_CODE=2
# shellcheck source=scripts/log.sh
. "${ROOT}/scripts/log.sh"

# --- the defects: name | service | pytest test | scenario name | expected finding (ERE) | what it is | stage
# (stage defaults to fault_tolerance; scenario "-" judges the whole stage's findings)
DEFECTS=(
    "bot-no-resend|bot|test_dashboard_crash|dashboard_crash|did not settle|bot resends nothing it holds after a reconnect"
    "bot-resend-reversed|bot|test_network_partition|network_partition|LOST|bot resends its backlog newest first after a reconnect"
    "backend-ack-before-commit|dashboard|test_acked_means_durable|acked_durable|ACKED BUT|backend acks critical envelopes on receipt, before their commit"
    "backend-one-write-lock|dashboard|test_slow_subscriber|slow_subscriber|SLOW CLIENT HARMED THE OTHERS|every client write goes through one lock, held while that client's socket drains"
    "backend-no-snapshot-on-resume|dashboard|test_page_across_a_backend_restart|page_across_a_backend_restart|THE PAGE DID NOT RECOVER|a resuming client gets the stream but never the snapshot that says whether it is whole|browser"
    "backend-forwards-bad-schema|dashboard|test_every_frame_validates|-|seq [0-9]+ \\(trade, run [0-9a-f]+\\): schema_violation: trade: data/quantity: '[^']*' is not of type 'number'|a forwarded trade's quantity is re-encoded as a string (breaks the schema on the client stream)|message_flow"
    "backend-resume-lies|dashboard|test_resume_is_honest|resume_after_restart|RESUME LIED|a resume is answered complete whenever the ring reaches back to the resume point, holes or not"
    "bot-no-ping|bot|test_network_partition|network_partition|CUT NOT NOTICED: the bot|the bot sends no keepalive pings: a cut link looks alive"
    "bot-reuses-run-id|bot|test_bot_crash|bot_crash|RUN ID REUSED|every bot process publishes the same run_id from seq 1"
    "backend-unlettered-rejects|dashboard|test_invalid_input_gets_error_frames|invalid_input|DEAD LETTERS do not account|schema violations are answered and counted but not dead-lettered|security"
    "backend-duplicates|dashboard|test_backend_hang|backend_hang|DUPLICATED|a resume replays from the client's last seq inclusive (off-by-one)"
    "bot-silent-drop|bot|test_queue_overflow|queue_overflow|queue never overflowed|bot drops from its full queue without declaring a gap"
    "backend-slow-fanout|dashboard|test_sustained_rate|sustained|sustained P99 = [0-9.]+ms breaks the threshold|backend waits 200 ms before each write to a client (deliberate slowdown)|load"
    "backend-keeps-closed-clients|dashboard|test_memory_back_to_baseline|stability|backend memory growth on a repeated round = [0-9.]+MB breaks the threshold|backend keeps a reference to every closed client (memory leak)|load"
    "backend-no-origin-check|dashboard|test_origin_check|origin_check|origin check|backend accepts any Origin (allow-list not enforced)|security"
    "backend-no-size-limit|dashboard|test_frame_size_limit|size_limit|size limit|backend has no maximum frame size|security"
    "backend-wrong-trade-qty|dashboard|test_reconciliation|-|sum of trades = position: [A-Z]+: backend /api/trades = [-0-9.]+ but backend /api/state position = [-0-9.]+|backend stores one trade with 3x its quantity|integration"
    "backend-acks-before-append|dashboard|test_acked_durable_across_redis_kills|acked_durable_redis|ACKED BUT|a replica acks an envelope before Redis acknowledged its append (cluster topology)|cluster"
    "backend-serves-without-redis|dashboard|test_replica_partition|replica_partition|REPLICA SERVES WITHOUT REDIS|a replica that lost Redis stays ready, acks and serves from its own state (cluster topology)|cluster"
)

# --- an isolated stack: never the default project or ports --------------------------
# (SELFTEST_PROJECT / SELFTEST_*_PORT move it aside when another self-test shares the engine)
export COMPOSE_PROJECT_NAME="${SELFTEST_PROJECT:-wsrigdefect}"
export DASHBOARD_PORT="${SELFTEST_DASHBOARD_PORT:-18000}" BOT_HTTP_PORT="${SELFTEST_BOT_PORT:-18081}"
export PROXY_CONTROL_PORT="${SELFTEST_PROXY_PORT:-19001}" REFERENCE_PORT="${SELFTEST_REFERENCE_PORT:-18010}"
export REFERENCE_WS_URL="ws://127.0.0.1:${REFERENCE_PORT}"
export DASHBOARD_URL="http://127.0.0.1:${DASHBOARD_PORT}" DASHBOARD_WS_URL="ws://127.0.0.1:${DASHBOARD_PORT}"
export BOT_URL="http://127.0.0.1:${BOT_HTTP_PORT}" PROXY_CONTROL_URL="http://127.0.0.1:${PROXY_CONTROL_PORT}"
export PROXY_IMAGE="${PROXY_IMAGE:-wsrig/fault-proxy:dev}"
# the cluster topology's own host ports (a stage that runs only there brings it up: run_scenario)
export HAPROXY_STATS_PORT="${SELFTEST_HAPROXY_STATS_PORT:-18404}" REDIS_PORT="${SELFTEST_REDIS_PORT:-16379}"
export HAPROXY_STATS_URL="http://127.0.0.1:${HAPROXY_STATS_PORT}/stats" RIG_REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"
export WSRIG_RUN_ID="selftest_${TS}"
export DOCKER_BUILDKIT=0  # the classic builder, as scripts/build_images.sh

[ -x "${WSRIG}" ] || die "no ${WSRIG}; run scripts/setup_env.sh (or ./run_all_tests.sh) first"
docker info >/dev/null 2>&1 || die "docker daemon not reachable"
docker image inspect "${PROXY_IMAGE}" >/dev/null 2>&1 || die "no ${PROXY_IMAGE}; run scripts/build_images.sh"

# Pick the defects to run.
selected=()
if [ "$#" -eq 0 ]; then
    selected=("${DEFECTS[@]}")
else
    for want in "$@"; do
        found=""
        for row in "${DEFECTS[@]}"; do
            [ "${row%%|*}" = "${want}" ] && found="${row}"
        done
        [ -n "${found}" ] || die "unknown defect '${want}' (known: $(printf '%s ' "${DEFECTS[@]%%|*}"))"
        selected+=("${found}")
    done
fi

mkdir -p "${RESULTS}"
log "results in ${RESULTS}"

stack_down() {
    "${WSRIG}" down >/dev/null 2>&1 || true
}
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local code=$?
    log "tearing down compose project ${COMPOSE_PROJECT_NAME}"
    stack_down
    if [ "${SELFTEST_KEEP_IMAGES:-0}" != 1 ]; then
        for row in "${selected[@]}"; do
            IFS='|' read -r name service _ <<<"${row}"
            docker image rm -f "$(image_name "${service}"):defect-${name}" >/dev/null 2>&1 || true
        done
    fi
    [ -n "${SNAP:-}" ] && rm -rf "${SNAP}"
    exit "${code}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

image_name() {  # bot|dashboard -> repository
    case "$1" in
        bot) echo wsrig/ai-trading-bot ;;
        dashboard) echo wsrig/dashboard-backend ;;
        *) die "unknown service $1" ;;
    esac
}

# --- 1. clean images -------------------------------------------------------------------
if [ "${SELFTEST_BASE:-head}" = dev ]; then
    CLEAN_BOT=wsrig/ai-trading-bot:dev
    CLEAN_DASHBOARD=wsrig/dashboard-backend:dev
    for img in "${CLEAN_BOT}" "${CLEAN_DASHBOARD}"; do
        docker image inspect "${img}" >/dev/null 2>&1 || die "no ${img}; run scripts/build_images.sh"
    done
    log "clean images: the shared :dev tags (SELFTEST_BASE=dev)"
else
    CLEAN_BOT="wsrig/ai-trading-bot:${SELFTEST_CLEAN_TAG:-selftest-base}"
    CLEAN_DASHBOARD="wsrig/dashboard-backend:${SELFTEST_CLEAN_TAG:-selftest-base}"
    [ -f .cache/wheelhouse/.wsrig-complete ] || die "no wheelhouse in .cache/wheelhouse; run scripts/build_images.sh once"
    base_out="$(scripts/make_base_image.sh 2>/dev/null)" || die "no base image; run scripts/build_images.sh once"
    BASE_IMAGE="$(printf '%s\n' "${base_out}" | sed -n 's/^BASE_IMAGE=//p' | tail -n 1)"
    SNAP="$(mktemp -d /tmp/wsrig-selftest.XXXXXX)"
    git archive HEAD | tar -x -C "${SNAP}"
    mkdir -p "${SNAP}/.cache"
    cp -r .cache/wheelhouse "${SNAP}/.cache/wheelhouse"
    log "clean images from git HEAD $(git rev-parse --short=12 HEAD) on ${BASE_IMAGE}"
    # shellcheck source=scripts/service_args.sh
    . scripts/service_args.sh
    for pair in "bot ${CLEAN_BOT}" "dashboard ${CLEAN_DASHBOARD}"; do
        read -r what tag <<<"${pair}"
        # shellcheck disable=SC2046  # build arguments, word-split on purpose
        if ! docker build --pull=false -f "${SNAP}/services/Dockerfile" --build-arg "BASE_IMAGE=${BASE_IMAGE}" \
            $(service_args "${what}") \
            --label wsrig.project=wsrig-selftest -t "${tag}" "${SNAP}" >"${RESULTS}/build_clean_${what}.log" 2>&1; then
            tail -n 30 "${RESULTS}/build_clean_${what}.log" >&2
            die "building the clean ${what} image failed"
        fi
    done
fi

# --- helpers -------------------------------------------------------------------------
# stage_probe STAGE -> "module marker topology", from the stage registry (config/stages.toml);
# topology: single when the stage runs there, else the first it runs in (cluster)
stage_probe() {
    python3 -c '
import sys, tomllib
for s in tomllib.load(open(sys.argv[1], "rb"))["stage"]:
    if s["name"] == sys.argv[2]:
        tops = s.get("topologies", ["single"])
        print("tests/probes/" + s["module"], s["marker"], "single" if "single" in tops else tops[0])
        break
else:
    sys.exit(1)
' "${ROOT}/config/stages.toml" "$1" || die "stage $1 is not in config/stages.toml"
}

# run_scenario DIR TEST BOT_IMAGE DASHBOARD_IMAGE [STAGE]: stack up, one scenario, logs, stack down.
# (the integration stage restarts the stack fresh by itself and restores it afterwards)
run_scenario() {
    local dir="$1" test="$2" stage="${5:-fault_tolerance}" code=0 module marker topology
    read -r module marker topology <<<"$(stage_probe "${stage}")"
    mkdir -p "${dir}"
    export BOT_IMAGE="$3" DASHBOARD_IMAGE="$4"
    stack_down  # volumes too: no outbox or store carried over from the previous run
    export RIG__TOPOLOGY="${topology}"  # the stack and the probe in the stage's topology (down removes the other's orphans)
    if ! "${WSRIG}" up >"${dir}/up.log" 2>&1; then
        tail -n 20 "${dir}/up.log" >&2
        return 3
    fi
    RIG__STAGE="${stage}" RIG__RESULTS_DIR="${dir}" timeout "${SCENARIO_TIMEOUT_S}" \
        "${ROOT}/.venv/bin/pytest" "${module}" -m "${marker}" -k "${test}" \
        -o testpaths=tests/probes -p no:cacheprovider -v -rA --tb=short \
        >"${dir}/${stage}.log" 2>&1 || code=$?
    "${WSRIG}" collect-logs "${dir}" >/dev/null 2>&1 || true
    stack_down
    return "${code}"
}

# judge DIR SCENARIO EXPECT_RE WANT(pass|fail) [STAGE]: prints "verdict<TAB>first finding<TAB>OK|NOT CAUGHT"
# SCENARIO "-": the stage as a whole (passed = no error finding; findings of the stage).
judge() {
    "${PY}" - "$@" <<'EOF'
import json, re, sys
from pathlib import Path

stage = sys.argv[5] if len(sys.argv) > 5 else "fault_tolerance"
rec_path, scenario, expect, want = Path(sys.argv[1]) / f"{stage}.record.json", *sys.argv[2:5]
try:
    rec = json.loads(rec_path.read_text())
except (OSError, ValueError) as exc:
    print(f"no record\t{type(exc).__name__}: {exc}"[:160] + "\tNOT CAUGHT")
    sys.exit(0)
if scenario == "-":
    whole = rec.get("findings", [])
    rows = [{"name": stage, "passed": not any(f.get("severity") == "error" for f in whole), "findings": whole}]
else:
    rows = [s for s in rec.get("scenarios", []) if s.get("name") == scenario]
if not rows:
    print(f"no scenario\t{scenario} missing from the record (scenario crashed? see the log)\tNOT CAUGHT")
    sys.exit(0)
row = rows[-1]
errors = [f["message"] for f in row.get("findings", []) if f.get("severity") == "error"]
verdict = "PASS" if row.get("passed") else "FAIL"
first = errors[0] if errors else "-"
if want == "pass":
    ok = row.get("passed") is True and not errors
    print(f"{verdict}\t{first}\t{'OK' if ok else 'CONTROL FAILED'}")
else:
    named = [m for m in errors if re.search(expect, m)]
    ok = row.get("passed") is False and bool(named)
    shown = named[0] if named else first
    counts = f" lost={row.get('lost')} dup={row.get('duplicated')}" if "lost" in row else ""
    print(f"{verdict}{counts}\t{shown}\t{'OK' if ok else 'NOT CAUGHT'}")
EOF
}

trim() { local s="$1" n="$2"; [ "${#s}" -le "${n}" ] && printf '%s' "${s}" || printf '%s...' "${s:0:n-3}"; }

t_start=$(date +%s)
failures=0
declare -a table=()

# --- 2. control: the scenarios pass against the clean images ------------------------
if [ "${SELFTEST_CONTROL:-1}" = 1 ]; then
    tests=() names=() stages=()
    for row in "${selected[@]}"; do
        IFS='|' read -r _ _ test scenario _ _ stage <<<"${row}"
        case " ${tests[*]} " in *" ${test} "*) continue ;; esac
        tests+=("${test}") names+=("${scenario}") stages+=("${stage:-fault_tolerance}")
    done
    for i in "${!tests[@]}"; do
        label="${names[$i]}"
        [ "${label}" = "-" ] && label="${stages[$i]}"
        log "control: ${label} against the clean images"
        dir="${RESULTS}/control_${label}"
        rc=0
        run_scenario "${dir}" "${tests[$i]}" "${CLEAN_BOT}" "${CLEAN_DASHBOARD}" "${stages[$i]}" || rc=$?
        [ "${rc}" -eq 3 ] && die "control stack did not come up (see ${dir}/up.log)"
        IFS=$'\t' read -r verdict finding status <<<"$(judge "${dir}" "${names[$i]}" "" pass "${stages[$i]}")"
        [ "${status}" = OK ] || failures=$((failures + 1))
        table+=("(control: clean images)|${label}|PASS|${verdict}|${finding}|${status}")
        log "control ${label}: ${verdict} -> ${status}"
    done
fi

# --- 3. the defects ---------------------------------------------------------------------
for row in "${selected[@]}"; do
    IFS='|' read -r name service test scenario expect what stage <<<"${row}"
    stage="${stage:-fault_tolerance}"
    repo="$(image_name "${service}")"
    image="${repo}:defect-${name}"
    dir="${RESULTS}/${name}"
    mkdir -p "${dir}"
    if [ "${service}" = bot ]; then
        base="${CLEAN_BOT}" check="trading_bot.publisher_core, trading_bot.app"
    else
        base="${CLEAN_DASHBOARD}" check="dashboard_backend.server"
    fi
    log "${name}: ${what}; building ${image} FROM ${base}"
    if ! docker build --pull=false --build-arg "BASE=${base}" --build-arg "DEFECT=${name}" \
        --build-arg "CHECK_IMPORT=${check}" -t "${image}" -f "${HERE}/defects/Dockerfile" "${HERE}/defects" \
        >"${dir}/build.log" 2>&1; then
        tail -n 20 "${dir}/build.log" >&2
        table+=("${name}|${scenario}|${expect}|build failed|see ${dir}/build.log|NOT CAUGHT")
        failures=$((failures + 1))
        continue
    fi
    log "${name}: running ${scenario} against ${image}"
    bot="${CLEAN_BOT}" dashboard="${CLEAN_DASHBOARD}"
    if [ "${service}" = bot ]; then bot="${image}"; else dashboard="${image}"; fi
    rc=0
    run_scenario "${dir}" "${test}" "${bot}" "${dashboard}" "${stage}" || rc=$?
    if [ "${rc}" -eq 3 ]; then
        table+=("${name}|${scenario}|${expect}|stack did not come up|see ${dir}/up.log|NOT CAUGHT")
        failures=$((failures + 1))
        continue
    fi
    IFS=$'\t' read -r verdict finding status <<<"$(judge "${dir}" "${scenario}" "${expect}" fail "${stage}")"
    [ "${status}" = OK ] || failures=$((failures + 1))
    table+=("${name}|${scenario}|${expect}|${verdict}|${finding}|${status}")
    log "${name}: ${verdict} -> ${status}"
done

# --- 4. the table ------------------------------------------------------------------------
{
    printf '| defect | scenario | expected finding | observed verdict | first matching finding | result |\n'
    printf '|---|---|---|---|---|---|\n'
    for row in "${table[@]}"; do
        IFS='|' read -r d s e v f r <<<"${row}"
        printf '| %s | %s | %s | %s | %s | %s |\n' "${d}" "${s}" "${e}" "${v}" "$(trim "${f//|//}" 220)" "${r}"
    done
} | tee "${RESULTS}/selftest_table.md"
elapsed=$(( $(date +%s) - t_start ))
if [ "${failures}" -eq 0 ]; then
    echo "selftest: every defect caught (${#selected[@]} defect(s), ${elapsed}s); results in ${RESULTS}"
    exit 0
fi
echo "selftest: ${failures} problem(s) (defect not caught or control failed), ${elapsed}s; results in ${RESULTS}"
exit 1
