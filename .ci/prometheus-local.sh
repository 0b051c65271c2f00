#!/usr/bin/env bash
# A real Prometheus for the tests: Debian's `prometheus` package. The tests start their own server
# (tests/prometheus_local.py: loopback, a free port, a temporary storage dir, a generated config);
# this script only makes sure the binary is there.
#
#   .ci/prometheus-local.sh install   install Debian's prometheus if `prometheus` is not on PATH
#   .ci/prometheus-local.sh check     print the version; exit 1 when it is missing
#
# Idempotent: a second install is a no-op. Runs apt-get as root, or through sudo otherwise.
# The package's service is not needed (and is not started where there is no init system).
set -euo pipefail

log() { echo "prometheus-local: $*" >&2; }

installed() { command -v prometheus >/dev/null 2>&1; }

cmd_install() {
  if installed; then
    log "$(prometheus --version 2>&1 | head -1) at $(command -v prometheus); nothing to do"
    return 0
  fi
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  log "installing Debian's prometheus package"
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus)
  # the package lists may be stale or missing on a fresh machine: update only when needed
  if ! "${apt[@]}" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq
    "${apt[@]}" >/dev/null
  fi
  installed || { log "ERROR: prometheus is still not on PATH after installing"; exit 1; }
  log "installed $(prometheus --version 2>&1 | head -1)"
}

cmd_check() {
  installed || { log "prometheus is not installed: run .ci/prometheus-local.sh install (make prometheus-local)"; exit 1; }
  prometheus --version 2>&1 | head -1
}

case "${1:-}" in
  install) cmd_install ;;
  check) cmd_check ;;
  *)
    echo "usage: $0 install|check" >&2
    exit 2
    ;;
esac
