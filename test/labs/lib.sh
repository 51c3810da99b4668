# Shared helpers for the lab scripts (sourced). Labs print KEY=value lines on stdout; progress
# and package manager output go to stderr.
set -euo pipefail
LAB_ROOT="${STRONGBOX_LAB_DIR:-/tmp/strongbox-labs}"

log() { echo "[lab] $*" >&2; }

# Install Debian packages only when missing. The dpkg lock is shared with other jobs on the machine:
# wait for it instead of failing.
need_pkgs() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=900 update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q \
    --no-install-recommends "${missing[@]}" >&2
}

# True when the pid in file $1 is a live process.
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pidfile() {
  if alive "$1"; then
    local pid; pid="$(cat "$1")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}
