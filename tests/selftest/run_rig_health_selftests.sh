#!/usr/bin/env bash
# Live self-tests of the rig's own-health verdicts (issue 14, shared/DESIGN.md section 9):
#   control       the load stage's fan-out scenario as is            -> must PASS   (exit 0)
#   slow-backend  the backend container capped at SELFTEST_SYSTEM_CPUS cores, the rig
#                 healthy                                             -> must FAIL   (exit 1)
#   starved-rig   SELFTEST_HOG busy processes on each of the rig's
#                 pinned cores, the backend untouched                 -> must be INVALID (exit 3)
# Each case runs `wsrig stage load -k fanout` into its own folder and `wsrig summarize`s
# it; the expected exit code and the reason in test_report.md are asserted.
#
# Usage: tests/selftest/run_rig_health_selftests.sh [control|slow-backend|starved-rig ...]
# Env:   SELFTEST_SYSTEM_CPUS (default 0.15), SELFTEST_HOG (default 4),
#        SELFTEST_RESULTS (default results/righealth_<ts>)
# Exit:  0 every case ended as expected; 1 otherwise; 2 setup error.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${ROOT}"
TS="$(date -u +%Y%m%d_%H%M%S)"
RESULTS="${SELFTEST_RESULTS:-${ROOT}/results/righealth_${TS}}"
WSRIG="${ROOT}/.venv/bin/wsrig"
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(control slow-backend starved-rig)
LOG_TAG=righealth-selftest
# shellcheck source=scripts/log.sh
. "${ROOT}/scripts/log.sh"

scripts/setup_env.sh
scripts/setup_docker.sh >/dev/null || { log "no Docker engine"; exit 2; }
scripts/build_images.sh
export WSRIG_RUN_ID="righealth_${TS}"
"${WSRIG}" cleanup
trap '"${WSRIG}" down >/dev/null 2>&1 || true' EXIT
"${WSRIG}" up

# Only the load stage is selected for the summaries.
for flag in $(.venv/bin/python -c 'from wsrig.stages import STAGES; print(*(s.flag for s in STAGES))'); do
    export "${flag}=false"
done
export "$(.venv/bin/python -c 'from wsrig.stages import stage_by_name; print(stage_by_name("load").flag)')=true"

failures=0
run_case() {  # run_case NAME WANT_EXIT WANT_REPORT_ERE [ENV=VALUE ...]
    local name="$1" want="$2" ere="$3"; shift 3
    local dir="${RESULTS}/${name}" code=0
    mkdir -p "${dir}"
    log "${name}: $* wsrig stage load -k fanout"
    env "$@" "${WSRIG}" stage load --results "${dir}" -k fanout >/dev/null 2>&1 || true
    "${WSRIG}" summarize "${dir}" >"${dir}/summarize.out" 2>&1 || code=$?
    if [ "${code}" != "${want}" ]; then
        log "${name}: NOT AS EXPECTED: exit ${code}, wanted ${want} (${dir}/test_report.md)"
        failures=$((failures + 1)); return
    fi
    if ! grep -Eq "${ere}" "${dir}/test_report.md"; then
        log "${name}: exit ${code} as expected, but the report does not say /${ere}/"
        failures=$((failures + 1)); return
    fi
    log "${name}: as expected (exit ${code}; report says /${ere}/)"
}

for c in "${CASES[@]}"; do
    case "${c}" in
        control) run_case control 0 "PASS" ;;
        slow-backend) run_case slow-backend 1 "fan-out P99 = [0-9.]+ms breaks|deliveries never arrived|closed by the backend" \
            RIG__SELFTEST_SYSTEM_CPUS="${SELFTEST_SYSTEM_CPUS:-0.15}" ;;
        starved-rig) run_case starved-rig 3 "the rig could not measure on this host.*(event-loop lag|schedule slip|µs per delivery)" \
            RIG__SELFTEST_HOG_RIG="${SELFTEST_HOG:-4}" ;;
        *) log "unknown case ${c}"; exit 2 ;;
    esac
done
log "results in ${RESULTS}"
[ "${failures}" = 0 ] && log "all cases as expected" || log "${failures} case(s) not as expected"
exit $(( failures > 0 ))
