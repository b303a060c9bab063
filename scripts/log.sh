# shellcheck shell=bash
# The progress and error lines of every script here, sourced (one place): LOG_TAG names the
# script in each line (default: its file name), DIE_CODE is die's exit code (default 1).
log() { printf '[%s] %s\n' "${LOG_TAG:-$(basename "$0" .sh)}" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "${LOG_TAG:-$(basename "$0" .sh)}" "$*" >&2; exit "${DIE_CODE:-1}"; }
