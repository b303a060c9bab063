# shellcheck shell=bash
# The build arguments of services/Dockerfile for each of its images; sourced by
# scripts/build_images.sh and tests/selftest/run_defect_selftests.sh (one place).
service_args() {  # service_args bot|dashboard|reference -> --build-arg ... (word-split by the caller)
    case "$1" in
        bot)       echo "--build-arg SERVICE=trading_bot --build-arg TITLE=ai-trading-bot --build-arg PORT=8081" ;;
        dashboard) echo "--build-arg SERVICE=dashboard_backend --build-arg TITLE=dashboard-backend --build-arg PORT=8000" ;;
        reference) echo "--build-arg SERVICE=reference_server --build-arg TITLE=reference-server --build-arg PORT=8010" ;;
        *) echo "service_args: unknown image '$1'" >&2; return 2 ;;
    esac
}
