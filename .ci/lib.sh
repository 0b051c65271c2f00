# shellcheck shell=bash
# Pieces the .ci scripts share (sourced, not run). The sourcing script defines log() and die();
# the process helpers keep pid files and logs/ in $STATE_DIR and watch the names in COMPONENTS.

ensure_packages() { # ensure_packages PKG...: install the missing Debian packages (needs root)
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  [[ $(id -u) -eq 0 ]] || die "needs root to install the Debian packages ${missing[*]}"
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  # daemons' maintainer scripts (etcd, containerd) try to start them; there is no init system here
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

running() { # running PID: alive and not a zombie (an orphan waits for this machine's init to reap it)
  [[ -r "/proc/$1/stat" ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

pid_alive() { [[ -f "$STATE_DIR/$1.pid" ]] && running "$(cat "$STATE_DIR/$1.pid")"; }

launch() { # launch NAME CMD...: in the background, detached, logging to $STATE_DIR/logs/NAME.log
  local name=$1
  shift
  nohup setsid "$@" >"$STATE_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/$name.pid"
}

stop_pid() { # stop_pid NAME [TIMEOUT_S]: SIGTERM, then SIGKILL after TIMEOUT_S (10); nothing if not running
  local name=$1 timeout=${2:-10} pid
  pid_alive "$name" || return 0
  pid=$(cat "$STATE_DIR/$name.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((timeout * 10))); do
    running "$pid" || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

wait_for() { # wait_for WHAT TIMEOUT CMD...: poll CMD until it succeeds; fail with the logs when a
  # component exits or TIMEOUT s pass
  local what=$1 timeout=$2 t0=$SECONDS c
  shift 2
  until "$@"; do
    for c in "${COMPONENTS[@]}"; do
      if [[ -f "$STATE_DIR/$c.pid" ]] && ! pid_alive "$c"; then
        log "$c exited while waiting for $what; its log:"
        tail -n 40 "$STATE_DIR/logs/$c.log" >&2
        return 1
      fi
    done
    if ((SECONDS - t0 > timeout)); then
      log "$what not ready after $timeout s; last log lines:"
      for c in "${COMPONENTS[@]}"; do
        [[ -f "$STATE_DIR/logs/$c.log" ]] && { echo "--- $c" >&2; tail -n 15 "$STATE_DIR/logs/$c.log" >&2; }
      done
      return 1
    fi
    sleep 0.5
  done
  log "$what ready after $((SECONDS - t0)) s"
}

first_ip() { # first_ip CIDR: its first host address (a Service range's: the "kubernetes" Service)
  local net=${1%/*}
  echo "${net%.*}.$((${net##*.} + 1))"
}
