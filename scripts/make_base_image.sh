#!/usr/bin/env bash
# Choose (and if needed make) the base image the service images build FROM.
#
#   1. ${BASE_IMAGE:-python:3.11-slim} already present locally     -> use it
#   2. the local fallback wsrig/base:bookworm already present       -> use it
#      (set WSRIG_BASE_TRY_PULL=1 to try step 3 first anyway)
#   3. `docker pull ${BASE_IMAGE}` with a short timeout succeeds   -> use it
#   4. build wsrig/base:bookworm from Debian packages: debootstrap a minbase bookworm
#      root with python3 + venv + pip, tar it (cached under .cache/base/ so the next
#      run skips debootstrap), `docker import` it.
#
# Progress goes to stderr; the last line on stdout is `BASE_IMAGE=<image>`, so
#   eval "$(scripts/make_base_image.sh | tail -n 1)"
# sets BASE_IMAGE for the caller.
#
# Settings: BASE_IMAGE, WSRIG_LOCAL_BASE (default wsrig/base:bookworm),
#   WSRIG_PULL_TIMEOUT (s, default 15), WSRIG_BASE_TRY_PULL, WSRIG_BASE_SUITE (bookworm),
#   DEBIAN_MIRROR (default: read from the host's apt sources at run time).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WANT="${BASE_IMAGE:-python:3.11-slim}"
LOCAL_BASE="${WSRIG_LOCAL_BASE:-wsrig/base:bookworm}"
PULL_TIMEOUT="${WSRIG_PULL_TIMEOUT:-15}"
SUITE="${WSRIG_BASE_SUITE:-bookworm}"
PACKAGES="python3,python3-venv,python3-pip,ca-certificates,iproute2,procps"
CACHE_DIR="${ROOT}/.cache/base"

# shellcheck source=scripts/log.sh
. "${ROOT}/scripts/log.sh"
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
choose() { log "using base image $1"; echo "BASE_IMAGE=$1"; exit 0; }

docker info >/dev/null 2>&1 || die "docker daemon not reachable; run scripts/setup_docker.sh first"

if image_exists "${WANT}"; then
    choose "${WANT}"
fi
if [ "${WANT}" != "${LOCAL_BASE}" ] && [ "${WSRIG_BASE_TRY_PULL:-0}" != 1 ] \
    && image_exists "${LOCAL_BASE}"; then
    log "${WANT} not present; local fallback ${LOCAL_BASE} exists"
    choose "${LOCAL_BASE}"
fi
if [ "${WANT}" != "${LOCAL_BASE}" ]; then
    log "${WANT} not present locally; trying docker pull (timeout ${PULL_TIMEOUT}s)"
    if timeout --kill-after=5 "${PULL_TIMEOUT}" docker pull -q "${WANT}" >/dev/null 2>&1 \
        && image_exists "${WANT}"; then
        choose "${WANT}"
    fi
    log "pull of ${WANT} failed or timed out; falling back to a local Debian base"
fi
if image_exists "${LOCAL_BASE}"; then
    choose "${LOCAL_BASE}"
fi

# --- build the local base from Debian packages ---------------------------------------
# shellcheck source=scripts/debian_mirror.sh
. "${ROOT}/scripts/debian_mirror.sh"

key="$(printf '%s|%s' "${SUITE}" "${PACKAGES}" | sha256sum | cut -c1-12)"
TARBALL="${CACHE_DIR}/${SUITE}-minbase-${key}.tar"

if [ -s "${TARBALL}" ]; then
    log "reusing cached root filesystem ${TARBALL#"${ROOT}"/}"
else
    [ "$(id -u)" -eq 0 ] || die "building the base needs root (debootstrap); run as root or provide ${WANT}"
    if ! command -v debootstrap >/dev/null 2>&1; then
        # The set-up finishes the job whichever path it takes (a Docker engine that was
        # already running skips setup_docker.sh, which would have installed it).
        command -v apt-get >/dev/null 2>&1 || die "debootstrap missing and no apt-get to install it"
        log "debootstrap missing: apt-get install debootstrap"
        apt-get update -qq >/dev/null 2>&1 || log "apt-get update failed; trying the install anyway"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
            || die "apt-get install debootstrap failed"
    fi
    MIRROR="$(debian_mirror)" || die "no Debian mirror found in the host's apt sources; set DEBIAN_MIRROR"
    mkdir -p "${CACHE_DIR}"
    WORK="$(mktemp -d "${CACHE_DIR}/rootfs.XXXXXX")"
    trap 'rm -rf "${WORK}"' EXIT
    log "debootstrap --variant=minbase ${SUITE} (packages: ${PACKAGES}); takes ~1 min"
    t0=$(date +%s)
    if ! debootstrap --variant=minbase --include="${PACKAGES}" "${SUITE}" "${WORK}/root" "${MIRROR}" \
        >"${CACHE_DIR}/debootstrap.log" 2>&1; then
        tail -n 20 "${CACHE_DIR}/debootstrap.log" >&2 || true
        die "debootstrap failed (full log: .cache/base/debootstrap.log)"
    fi
    log "debootstrap done in $(( $(date +%s) - t0 ))s; trimming"
    R="${WORK}/root"
    # The image must not point apt at the build host's mirror address, nor keep caches.
    rm -rf "${R}"/var/cache/apt/archives/*.deb "${R}"/var/lib/apt/lists/* \
        "${R}"/usr/share/doc/* "${R}"/usr/share/man/* "${R}"/usr/share/info/* \
        "${R}"/var/log/*.log "${R}"/var/cache/debconf/*-old "${R}"/tmp/* 2>/dev/null || true
    : >"${R}/etc/apt/sources.list"
    log "writing ${TARBALL#"${ROOT}"/}"
    tar --numeric-owner --xattrs -C "${R}" -cf "${TARBALL}.tmp" .
    mv "${TARBALL}.tmp" "${TARBALL}"
    rm -rf "${WORK}"
    trap - EXIT
fi

log "docker import -> ${LOCAL_BASE}"
t0=$(date +%s)
docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'LABEL wsrig.project=wsrig' \
    --change 'LABEL org.opencontainers.image.description="debootstrap minbase bookworm with python3"' \
    --change 'CMD ["python3"]' \
    "${TARBALL}" "${LOCAL_BASE}" >/dev/null \
    || die "docker import of ${TARBALL} failed"
log "imported in $(( $(date +%s) - t0 ))s"
image_exists "${LOCAL_BASE}" || die "${LOCAL_BASE} missing after import"
choose "${LOCAL_BASE}"
