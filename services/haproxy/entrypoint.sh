#!/bin/sh
# Start HAProxy with one `server` line per replica appended to /etc/haproxy/haproxy.cfg's
# last section (the `replicas` backend). HAPROXY_SERVERS: the replicas' host names,
# separated by spaces or commas (their compose service names); HAPROXY_SERVER_PORT: the
# port they listen on (8000). The result goes to /tmp (the root file system is read-only).
set -eu
servers="$(echo "${HAPROXY_SERVERS:-}" | tr ',' ' ')"
[ -n "${servers}" ] || { echo "[haproxy] ERROR: HAPROXY_SERVERS is empty" >&2; exit 2; }
cfg=/tmp/haproxy.cfg
cp /etc/haproxy/haproxy.cfg "${cfg}"
for name in ${servers}; do
    echo "    server ${name} ${name}:${HAPROXY_SERVER_PORT:-8000}" >>"${cfg}"
done
echo "[haproxy] replicas: ${servers}" >&2
haproxy -c -q -f "${cfg}"
exec haproxy -db -f "${cfg}"
