#!/bin/sh
# Install Debian packages inside `docker build` (the Redis and HAProxy images), then leave
# no trace of the build host: the local base image (scripts/make_base_image.sh) has an
# empty sources.list on purpose, so the archive comes in as build arguments
# (DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR: the host's own, from scripts/debian_mirror.sh)
# and the list is removed again with apt's caches. A base with its own sources
# (python:3.11-slim) needs neither argument.
# Usage (in a Dockerfile):  RUN sh /tmp/apt_install.sh PACKAGE...
set -eu
. /etc/os-release
list=/etc/apt/sources.list.d/wsrig-build.list
if [ -n "${DEBIAN_MIRROR:-}" ]; then
    echo "deb ${DEBIAN_MIRROR} ${VERSION_CODENAME} main" >"${list}"
    if [ -n "${DEBIAN_SECURITY_MIRROR:-}" ]; then
        echo "deb ${DEBIAN_SECURITY_MIRROR} ${VERSION_CODENAME}-security main" >>"${list}"
    fi
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
rm -f "${list}"
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /tmp/apt_install.sh
