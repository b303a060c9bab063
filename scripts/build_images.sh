#!/usr/bin/env bash
# Build the rig's four images with no registry and no network inside `docker build`:
#   1. the base image: scripts/make_base_image.sh (python:3.11-slim if present/pullable,
#      else the local debootstrap base wsrig/base:bookworm)
#   2. the wheelhouse .cache/wheelhouse from services/requirements.txt (`pip download` on
#      the host, cp311 manylinux wheels; skipped when already complete)
#   3. docker build, context = repo root:
#        ${BOT_IMAGE:-wsrig/ai-trading-bot:dev}         services/Dockerfile (SERVICE=trading_bot)
#        ${DASHBOARD_IMAGE:-wsrig/dashboard-backend:dev} services/Dockerfile (SERVICE=dashboard_backend)
#        ${PROXY_IMAGE:-wsrig/fault-proxy:dev}          services/fault_proxy/Dockerfile
#        ${REFERENCE_IMAGE:-wsrig/reference-server:dev} services/Dockerfile (SERVICE=reference_server)
#          (the load stage's yardstick: a minimal broadcast server of the same contract)
#      and, for the cluster topology only (RIG__TOPOLOGY=cluster, docs/CLUSTER.md), two
#      images of Debian packages, apt-get installed from the host's own Debian archive
#      (scripts/debian_mirror.sh; the one step that needs the network):
#        ${REDIS_IMAGE:-wsrig/redis:dev}                 services/redis/Dockerfile
#        ${HAPROXY_IMAGE:-wsrig/haproxy:dev}             services/haproxy/Dockerfile
#      and, for distributed load only (RIG__WORKERS > 0, --workers N; docs/DISTRIBUTED.md),
#      the rig's load worker (the wsrig package; its own wheels in .cache/wheelhouse-worker):
#        ${LOAD_WORKER_IMAGE:-wsrig/load-worker:dev}     services/load_worker/Dockerfile
# WSRIG_SKIP_BUILD=1 skips everything (use images that already exist, e.g. another
# implementation of the contract). WSRIG_BUILD_ONLY="bot dashboard proxy reference" picks
# a subset (add "redis haproxy" to build those whatever the topology, "worker" for the load worker).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

BOT_IMAGE="${BOT_IMAGE:-wsrig/ai-trading-bot:dev}"
DASHBOARD_IMAGE="${DASHBOARD_IMAGE:-wsrig/dashboard-backend:dev}"
PROXY_IMAGE="${PROXY_IMAGE:-wsrig/fault-proxy:dev}"
REFERENCE_IMAGE="${REFERENCE_IMAGE:-wsrig/reference-server:dev}"
REDIS_IMAGE="${REDIS_IMAGE:-wsrig/redis:dev}"
HAPROXY_IMAGE="${HAPROXY_IMAGE:-wsrig/haproxy:dev}"
LOAD_WORKER_IMAGE="${LOAD_WORKER_IMAGE:-${RIG__LOAD_WORKER_IMAGE:-wsrig/load-worker:dev}}"
DEFAULT_BUILD="bot dashboard proxy reference"
[ "${RIG__TOPOLOGY:-single}" != cluster ] || DEFAULT_BUILD="${DEFAULT_BUILD} redis haproxy"
[ "${RIG__WORKERS:-0}" = 0 ] || DEFAULT_BUILD="${DEFAULT_BUILD} worker"
BUILD_ONLY="${WSRIG_BUILD_ONLY:-${DEFAULT_BUILD}}"
WHEELHOUSE="${ROOT}/.cache/wheelhouse"
REQS="${ROOT}/services/requirements.txt"

# shellcheck source=scripts/log.sh
. "${ROOT}/scripts/log.sh"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if [ "${WSRIG_SKIP_BUILD:-0}" = 1 ]; then
    log "WSRIG_SKIP_BUILD=1: not building; using ${BOT_IMAGE}, ${DASHBOARD_IMAGE}, ${PROXY_IMAGE}, ${REFERENCE_IMAGE}"
    exit 0
fi
docker info >/dev/null 2>&1 || die "docker daemon not reachable; run scripts/setup_docker.sh first"

# --- 1. base image -------------------------------------------------------------------
t0="$(now)"
base_out="$("${ROOT}/scripts/make_base_image.sh")" || die "no base image (see messages above)"
BASE_IMAGE="$(printf '%s\n' "${base_out}" | sed -n 's/^BASE_IMAGE=//p' | tail -n 1)"
[ -n "${BASE_IMAGE}" ] || die "make_base_image.sh printed no BASE_IMAGE= line"
log "base image ${BASE_IMAGE} ($(since "${t0}")s)"

# --- 2. wheelhouse -------------------------------------------------------------------
find_pip() {
    local py
    for py in python3 "${ROOT}/.venv/bin/python" /usr/bin/python3; do
        if command -v "${py}" >/dev/null 2>&1 && "${py}" -m pip --version >/dev/null 2>&1; then
            echo "${py}"; return 0
        fi
    done
    return 1
}

arch="$(uname -m)"
# Wheels for the images' interpreter (CPython 3.11 in bookworm and python:3.11-slim),
# whatever Python the host runs.
PIP_TARGET=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311
            --platform "manylinux2014_${arch}" --platform "manylinux_2_17_${arch}"
            --platform "manylinux_2_28_${arch}")
stamp="$( { cat "${REQS}"; echo "${PIP_TARGET[*]}"; } | sha256sum | cut -c1-16)"
if [ -f "${WHEELHOUSE}/.wsrig-complete" ] && [ "$(cat "${WHEELHOUSE}/.wsrig-complete")" = "${stamp}" ]; then
    log "wheelhouse up to date ($(find "${WHEELHOUSE}" -name '*.whl' | wc -l) wheels)"
else
    t0="$(now)"
    if ! PY="$(find_pip)"; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            log "no pip on the host; apt-get install python3-pip"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
        fi
        PY="$(find_pip)" || die "no pip on the host to build the wheelhouse (install python3-pip)"
    fi
    log "building wheelhouse from services/requirements.txt with ${PY} -m pip download"
    rm -rf "${WHEELHOUSE}.tmp"
    mkdir -p "${WHEELHOUSE}.tmp"
    "${PY}" -m pip download --disable-pip-version-check --quiet --dest "${WHEELHOUSE}.tmp" \
        "${PIP_TARGET[@]}" -r "${REQS}" || die "pip download failed"
    echo "${stamp}" >"${WHEELHOUSE}.tmp/.wsrig-complete"
    rm -rf "${WHEELHOUSE}"
    mv "${WHEELHOUSE}.tmp" "${WHEELHOUSE}"
    log "wheelhouse: $(find "${WHEELHOUSE}" -name '*.whl' | wc -l) wheels ($(since "${t0}")s)"
fi

# The load worker's wheels (services/load_worker/requirements.txt), only when it is built.
WORKER_WHEELS="${ROOT}/.cache/wheelhouse-worker"
WORKER_REQS="${ROOT}/services/load_worker/requirements.txt"
case " ${BUILD_ONLY} " in
    *" worker "*)
        wstamp="$( { cat "${WORKER_REQS}"; echo "${PIP_TARGET[*]}"; } | sha256sum | cut -c1-16)"
        if [ ! -f "${WORKER_WHEELS}/.wsrig-complete" ] || [ "$(cat "${WORKER_WHEELS}/.wsrig-complete")" != "${wstamp}" ]; then
            PY="$(find_pip)" || die "no pip on the host to build the worker's wheelhouse (install python3-pip)"
            rm -rf "${WORKER_WHEELS}.tmp" && mkdir -p "${WORKER_WHEELS}.tmp"
            "${PY}" -m pip download --disable-pip-version-check --quiet --dest "${WORKER_WHEELS}.tmp" \
                "${PIP_TARGET[@]}" -r "${WORKER_REQS}" || die "pip download of the worker's wheels failed"
            echo "${wstamp}" >"${WORKER_WHEELS}.tmp/.wsrig-complete"
            rm -rf "${WORKER_WHEELS}" && mv "${WORKER_WHEELS}.tmp" "${WORKER_WHEELS}"
        fi
        log "worker wheelhouse: $(find "${WORKER_WHEELS}" -name '*.whl' | wc -l) wheels" ;;
esac

# --- 3. images -----------------------------------------------------------------------
# Debian's engine has no BuildKit by default and a newer CLI may lack buildx: the classic
# builder is enough (no RUN --mount, no remote syntax frontend in the Dockerfiles).
export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}"

build() {  # build NAME IMAGE DOCKERFILE [--build-arg K=V ...]
    local name="$1" image="$2" dockerfile="$3" t0 logf
    shift 3
    t0="$(now)"
    logf="$(mktemp)"
    log "building ${image} from ${dockerfile}"
    if ! docker build --pull=false -f "${dockerfile}" \
        --build-arg "BASE_IMAGE=${BASE_IMAGE}" "$@" \
        --label "wsrig.project=wsrig" \
        --label "wsrig.base_image=${BASE_IMAGE}" \
        -t "${image}" . >"${logf}" 2>&1; then
        tail -n 40 "${logf}" >&2
        rm -f "${logf}"
        die "docker build of ${name} (${image}) failed"
    fi
    rm -f "${logf}"
    log "built ${image} in $(since "${t0}")s ($(docker image inspect -f '{{.Size}}' "${image}" \
        | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
}

# shellcheck source=scripts/service_args.sh
. scripts/service_args.sh
# shellcheck source=scripts/debian_mirror.sh
. scripts/debian_mirror.sh
apt_args() {  # the host's Debian archives for services/apt_install.sh (word-split by the caller)
    local main security
    main="$(debian_mirror)" || die "no Debian mirror in the host's apt sources; set DEBIAN_MIRROR"
    security="$(debian_security_mirror)"
    echo "--build-arg DEBIAN_MIRROR=${main}${security:+ --build-arg DEBIAN_SECURITY_MIRROR=${security}}"
}
APT_ARGS=""
case " ${BUILD_ONLY} " in *" redis "* | *" haproxy "*) APT_ARGS="$(apt_args)" ;; esac
# shellcheck disable=SC2046  # service_args prints build arguments meant to be word-split
for what in ${BUILD_ONLY}; do
    case "${what}" in
        bot)       build bot "${BOT_IMAGE}" services/Dockerfile $(service_args bot) ;;
        dashboard) build dashboard "${DASHBOARD_IMAGE}" services/Dockerfile $(service_args dashboard) ;;
        proxy)     build proxy "${PROXY_IMAGE}" services/fault_proxy/Dockerfile ;;
        reference) build reference "${REFERENCE_IMAGE}" services/Dockerfile $(service_args reference) ;;
        redis)     build redis "${REDIS_IMAGE}" services/redis/Dockerfile ${APT_ARGS} \
                       --build-arg "APPENDFSYNC=${REDIS_APPENDFSYNC:-always}" ;;
        haproxy)   build haproxy "${HAPROXY_IMAGE}" services/haproxy/Dockerfile ${APT_ARGS} ;;
        worker)    build worker "${LOAD_WORKER_IMAGE}" services/load_worker/Dockerfile ;;
        *) die "unknown image '${what}' in WSRIG_BUILD_ONLY (bot, dashboard, proxy, reference, redis, haproxy, worker)" ;;
    esac
done
# A rebuild under the same tag leaves the previous image untagged; drop ours only.
docker image prune -f --filter "label=wsrig.project=wsrig" >/dev/null 2>&1 || true
echo "BASE_IMAGE=${BASE_IMAGE}"
echo "BOT_IMAGE=${BOT_IMAGE}"
echo "DASHBOARD_IMAGE=${DASHBOARD_IMAGE}"
echo "PROXY_IMAGE=${PROXY_IMAGE}"
echo "REFERENCE_IMAGE=${REFERENCE_IMAGE}"
case " ${BUILD_ONLY} " in *" redis "*) echo "REDIS_IMAGE=${REDIS_IMAGE}" ;; esac
case " ${BUILD_ONLY} " in *" haproxy "*) echo "HAPROXY_IMAGE=${HAPROXY_IMAGE}" ;; esac
case " ${BUILD_ONLY} " in *" worker "*) echo "LOAD_WORKER_IMAGE=${LOAD_WORKER_IMAGE}" ;; esac
