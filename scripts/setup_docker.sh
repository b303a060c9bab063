#!/usr/bin/env bash
# Make sure a Docker engine and Docker Compose are usable on this machine.
#
# Idempotent. When `docker info` already works it only reports versions.
# Otherwise, as root: install docker.io / docker-compose / debootstrap / tini from the
# distribution's packages if missing (apt-get update once first), remove a stale
# /var/run/docker.pid, start `dockerd` in the background (log: $WSRIG_DOCKERD_LOG) and
# wait until `docker info` answers (deadline: $WSRIG_DOCKERD_WAIT seconds). A dockerd that
# was killed leaves containers and networks in its state; dockerd copes with those, and
# the rig removes its own leftovers by label (wsrig.project=wsrig).
# The dockerd it starts runs with --userland-proxy=false (published ports through kernel
# NAT instead of a docker-proxy process copying every byte: a third of a core during the
# load stage on a 2-core host); WSRIG_USERLAND_PROXY=true keeps Docker's default. A daemon
# that is already running is left as it is; each report says which path it used.
# Open files: the dockerd it starts gets WSRIG_DOCKERD_NOFILE (default 1048576) as its
# soft and hard RLIMIT_NOFILE when this shell may raise it (root with CAP_SYS_RESOURCE),
# else the most it may have; containers inherit the daemon's limit, and HAProxy sizes its
# maxconn from it (two sockets per client: 20,000 files hold about 10,000 clients; the
# cluster stage's connections_10k needs more, docs/CLUSTER.md). The report prints the
# daemon's limit either way.
# Not root and no usable daemon: print exactly what is missing and exit 1.
set -euo pipefail

DOCKERD_LOG="${WSRIG_DOCKERD_LOG:-/var/log/wsrig-dockerd.log}"
DOCKERD_WAIT="${WSRIG_DOCKERD_WAIT:-60}"
PIDFILE="${WSRIG_DOCKERD_PIDFILE:-/var/run/docker.pid}"
USERLAND_PROXY="${WSRIG_USERLAND_PROXY:-false}"
NOFILE="${WSRIG_DOCKERD_NOFILE:-1048576}"

# shellcheck source=scripts/log.sh
. "$(dirname "${BASH_SOURCE[0]}")/log.sh"

is_root() { [ "$(id -u)" -eq 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }
docker_ok() { have docker && docker info >/dev/null 2>&1; }
compose_v2() { have docker && docker compose version >/dev/null 2>&1; }
compose_v1() { have docker-compose && docker-compose version >/dev/null 2>&1; }

report() {
    local server client compose
    client="$(docker version --format '{{.Client.Version}}' 2>/dev/null || echo '?')"
    server="$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo '?')"
    if compose_v2; then
        compose="docker compose (v2) $(docker compose version --short 2>/dev/null || echo '?')"
    elif compose_v1; then
        compose="docker-compose (v1) $(docker-compose version --short 2>/dev/null || echo '?')"
    else
        compose="none"
    fi
    echo "docker client: ${client}"
    local pid files
    pid="$(pgrep -o -x dockerd 2>/dev/null || true)"
    if [ -n "${pid}" ] && [ -r "/proc/${pid}/limits" ]; then
        files="$(awk '/^Max open files/ {print $4 " soft, " $5 " hard"}' "/proc/${pid}/limits")"
        echo "dockerd open files: ${files} (containers inherit it; WSRIG_DOCKERD_NOFILE=${NOFILE} asked when this script starts dockerd)"
    fi
    echo "docker engine: ${server}"
    echo "compose: ${compose}"
    if [ "${compose}" = none ]; then
        die "no Docker Compose found (neither 'docker compose' nor 'docker-compose')"
    fi
}

apt_updated=0
apt_install() {
    # apt_install PKG... : install the packages that are not installed yet
    local missing=() p
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "${apt_updated}" -eq 0 ]; then
        log "apt-get update"
        apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

if docker_ok && { compose_v2 || compose_v1; }; then
    log "docker daemon is running"
    report
    exit 0
fi

if ! is_root; then
    missing=()
    have docker || missing+=("the docker CLI (Debian package docker.io)")
    have dockerd || missing+=("the Docker engine dockerd (Debian package docker.io)")
    if have docker && ! docker info >/dev/null 2>&1; then
        missing+=("a running Docker daemon reachable by $(id -un) (start 'dockerd' as root, or join group 'docker')")
    fi
    compose_v2 || compose_v1 || missing+=("Docker Compose: 'docker compose' plugin or 'docker-compose' (Debian package docker-compose)")
    have debootstrap || missing+=("debootstrap (only needed when no base image can be pulled)")
    log "not root, cannot install or start Docker. Missing:"
    for m in "${missing[@]}"; do log "  - ${m}"; done
    exit 1
fi

# --- root from here on -------------------------------------------------------------
if ! have apt-get; then
    have dockerd || die "dockerd missing and no apt-get to install it"
fi
pkgs=()
have dockerd || pkgs+=(docker.io)
have docker || pkgs+=(docker.io)
compose_v2 || compose_v1 || pkgs+=(docker-compose)
have debootstrap || pkgs+=(debootstrap)
# docker-init (tini) backs `init: true` in the compose files
[ -x /usr/bin/docker-init ] || [ -x /usr/libexec/docker/docker-init ] || pkgs+=(tini)
if [ "${#pkgs[@]}" -gt 0 ]; then
    # shellcheck disable=SC2207
    pkgs=($(printf '%s\n' "${pkgs[@]}" | sort -u))
    apt_install "${pkgs[@]}"
fi
have dockerd || die "dockerd still missing after installing docker.io"

if ! docker info >/dev/null 2>&1; then
    if [ -f "${PIDFILE}" ]; then
        oldpid="$(cat "${PIDFILE}" 2>/dev/null || true)"
        if [ -n "${oldpid}" ] && kill -0 "${oldpid}" 2>/dev/null \
            && grep -q dockerd "/proc/${oldpid}/comm" 2>/dev/null; then
            log "dockerd (pid ${oldpid}) is alive but not answering yet; waiting for it"
        else
            log "removing stale ${PIDFILE} (pid '${oldpid}' not alive)"
            rm -f "${PIDFILE}"
        fi
    fi
    if [ ! -f "${PIDFILE}" ]; then
        mkdir -p "$(dirname "${DOCKERD_LOG}")"
        log "starting dockerd (log: ${DOCKERD_LOG})"
        dargs=()
        [ "${PIDFILE}" = /var/run/docker.pid ] || dargs+=(--pidfile "${PIDFILE}")
        dargs+=("--userland-proxy=${USERLAND_PROXY}")
        # Raise the open-files limit dockerd (and so every container) starts with.
        if ulimit -Hn "${NOFILE}" 2>/dev/null && ulimit -Sn "${NOFILE}" 2>/dev/null; then
            log "dockerd open files: ${NOFILE}"
        else
            ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
            log "WARNING: cannot raise open files to ${NOFILE} here (no CAP_SYS_RESOURCE): dockerd keeps $(ulimit -Hn)"
        fi
        nohup dockerd "${dargs[@]}" >>"${DOCKERD_LOG}" 2>&1 </dev/null &
        disown || true
    fi
    deadline=$(( $(date +%s) + DOCKERD_WAIT ))
    until docker info >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "${deadline}" ]; then
            log "dockerd did not answer within ${DOCKERD_WAIT}s; last log lines:"
            tail -n 20 "${DOCKERD_LOG}" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 1
    done
    log "docker daemon is up"
fi

report
