# shellcheck shell=bash
# The Debian archives this host's apt already uses, read at run time (never hard-coded);
# sourced by scripts/make_base_image.sh (debootstrap) and scripts/build_images.sh (the
# images that apt-get install a Debian package: services/apt_install.sh). DEBIAN_MIRROR
# and DEBIAN_SECURITY_MIRROR, when set, win.

_apt_uris() {  # every URI of the host's Debian sources (deb822 .sources files, then sources.list)
    if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
        awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' /etc/apt/sources.list.d/*.sources
    fi
    if [ -f /etc/apt/sources.list ]; then
        awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
            /etc/apt/sources.list
    fi
}

debian_mirror() {  # the main archive, or status 1
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "${DEBIAN_MIRROR}"; return; fi
    local uri
    uri="$(_apt_uris | grep -v -- '-security' | head -n 1 || true)"
    [ -n "${uri}" ] || return 1
    echo "${uri}"
}

debian_security_mirror() {  # the security archive, or nothing (status 0: it is optional)
    if [ -n "${DEBIAN_SECURITY_MIRROR:-}" ]; then echo "${DEBIAN_SECURITY_MIRROR}"; return; fi
    _apt_uris | grep -- '-security' | head -n 1 || true
}
