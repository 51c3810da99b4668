#!/usr/bin/env bash
# A real OpenStack Swift all-in-one (Debian's packages) for the destination tests and CI:
# proxy with tempauth + s3api, one account/container/object server each, memcached, all bound
# to 127.0.0.1 on fixed uncommon ports, all state under one lab folder.
#
#   bash test/labs/swift.sh ensure   # install if missing, start if not running, wait until healthy
#   bash test/labs/swift.sh stop     # stop what this lab started (by PID)
#   bash test/labs/swift.sh env      # print the endpoint and credentials (KEY=value lines)
#   bash test/labs/swift.sh wipe     # stop and delete the stored data (tests leave their containers)
#
# `ensure` is idempotent and serialised with flock, so parallel test files may all call it.
# Facts behind the choices: ../shared/notes/labs.md (Swift section).
set -euo pipefail

LAB="${STRONGBOX_LAB_DIR:-/tmp/strongbox-labs}/swift"
PROXY_PORT="${STRONGBOX_SWIFT_PORT:-28180}"
ACCOUNT_PORT=28112
CONTAINER_PORT=28111
OBJECT_PORT=28110
MEMCACHED_PORT=28121
SWIFT_USER="test:tester"
SWIFT_KEY="testing"
PACKAGES=(swift swift-proxy swift-object swift-container swift-account memcached python3-lxml curl eatmydata)

log() { printf 'swift-lab: %s\n' "$*" >&2; }

print_env() {
  cat <<EOF
SWIFT_LAB_DIR=$LAB
SWIFT_PROXY_URL=http://127.0.0.1:$PROXY_PORT
SWIFT_AUTH_URL=http://127.0.0.1:$PROXY_PORT/auth/v1.0
SWIFT_STORAGE_URL=http://127.0.0.1:$PROXY_PORT/v1/AUTH_test
ST_USER=$SWIFT_USER
ST_KEY=$SWIFT_KEY
S3_ENDPOINT=http://127.0.0.1:$PROXY_PORT
S3_REGION=us-east-1
AWS_ACCESS_KEY_ID=$SWIFT_USER
AWS_SECRET_ACCESS_KEY=$SWIFT_KEY
EOF
}

install_missing() {
  # shellcheck source=lib.sh
  ( source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" && need_pkgs "${PACKAGES[@]}" )
}

# The packages ship /etc/swift/swift.conf (always read from that path); make sure it has the
# hash settings every server insists on, without overwriting an operator's values.
ensure_swift_conf() {
  mkdir -p /etc/swift
  if [ ! -f /etc/swift/swift.conf ] || ! grep -q '^swift_hash_path_suffix' /etc/swift/swift.conf; then
    cat >/etc/swift/swift.conf <<'EOF'
[swift-hash]
swift_hash_path_suffix = strongbox-lab
swift_hash_path_prefix = strongbox-lab

[storage-policy:0]
name = Policy-0
default = yes
EOF
  fi
}

write_configs() {
  mkdir -p "$LAB/etc" "$LAB/srv/d1" "$LAB/run" "$LAB/log" "$LAB/cache"
  local common="[DEFAULT]
bind_ip = 127.0.0.1
workers = 0
user = root
swift_dir = $LAB/etc
devices = $LAB/srv
mount_check = false
log_udp_host = 127.0.0.1
log_udp_port = 28199
log_level = WARNING
"
  local s
  for s in account container object; do
    local port_var="${s^^}_PORT"
    cat >"$LAB/etc/$s-server.conf" <<EOF
$common
bind_port = ${!port_var}

[pipeline:main]
pipeline = healthcheck recon $s-server

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:recon]
use = egg:swift#recon
recon_cache_path = $LAB/cache

[app:$s-server]
use = egg:swift#$s
EOF
  done
  cat >"$LAB/etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
workers = 0
user = root
swift_dir = $LAB/etc
log_udp_host = 127.0.0.1
log_udp_port = 28199
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = $SWIFT_KEY .admin

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
[filter:symlink]
use = egg:swift#symlink
EOF
}

build_rings() {
  [ -f "$LAB/etc/object.ring.gz" ] && return 0
  local s port_var
  for s in account container object; do
    port_var="${s^^}_PORT"
    ( cd "$LAB/etc" &&
      swift-ring-builder "$s.builder" create 10 1 1 >/dev/null &&
      swift-ring-builder "$s.builder" add --region 1 --zone 1 --ip 127.0.0.1 --port "${!port_var}" --device d1 --weight 100 >/dev/null &&
      swift-ring-builder "$s.builder" rebalance >/dev/null )
  done
}

running() { [ -f "$LAB/run/$1.pid" ] && kill -0 "$(cat "$LAB/run/$1.pid")" 2>/dev/null; }

# Background daemons detached from our stdout (a caller reading our output is not held open)
# and from the lock on fd 9 (or they would hold it for ever).
start_daemon() {
  local name=$1; shift
  running "$name" && return 0
  setsid nohup "$@" </dev/null >>"$LAB/log/$name.log" 2>&1 9>&- &
  echo $! >"$LAB/run/$name.pid"
}

healthy() {
  local headers token url
  curl -fsS -m 3 "http://127.0.0.1:$PROXY_PORT/healthcheck" >/dev/null 2>&1 || return 1
  headers=$(curl -fsS -m 5 -D - -o /dev/null -H "X-Auth-User: $SWIFT_USER" -H "X-Auth-Key: $SWIFT_KEY" \
    "http://127.0.0.1:$PROXY_PORT/auth/v1.0" 2>/dev/null) || return 1
  token=$(printf '%s' "$headers" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-auth-token"{print $2}')
  url=$(printf '%s' "$headers" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-storage-url"{print $2}')
  [ -n "$token" ] && [ -n "$url" ] || return 1
  # A container PUT proves the account and container servers answer, not only the proxy.
  curl -fsS -m 5 -o /dev/null -X PUT -H "X-Auth-Token: $token" "$url/lab-health" 2>/dev/null || return 1
}

ensure() {
  if healthy; then print_env; return 0; fi
  install_missing
  ensure_swift_conf
  write_configs
  build_rings
  start_daemon memcached memcached -u root -l 127.0.0.1 -p "$MEMCACHED_PORT" -m 64 -U 0
  # eatmydata makes the storage servers' fsync() a no-op: a test lab needs no durability, and
  # small PUTs go from ~36 to ~14 ms each (sequential; ~13 → ~7 ms with 4–8 in flight).
  start_daemon account eatmydata swift-account-server "$LAB/etc/account-server.conf"
  start_daemon container eatmydata swift-container-server "$LAB/etc/container-server.conf"
  start_daemon object eatmydata swift-object-server "$LAB/etc/object-server.conf"
  start_daemon proxy swift-proxy-server "$LAB/etc/proxy-server.conf"
  local i
  for i in $(seq 1 120); do
    if healthy; then log "up after ${i} probe(s)"; print_env; return 0; fi
    for s in memcached account container object proxy; do
      running "$s" || { log "$s exited; last log lines:"; tail -n 20 "$LAB/log/$s.log" >&2; return 1; }
    done
    sleep 0.5
  done
  log "not healthy after 60 s (logs in $LAB/log)"
  return 1
}

stop() {
  local s pid
  for s in proxy object container account memcached; do
    if [ -f "$LAB/run/$s.pid" ]; then
      pid=$(cat "$LAB/run/$s.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$LAB/run/$s.pid"
    fi
  done
}

mkdir -p "$LAB"
exec 9>"$LAB/.lock"
flock 9
case "${1:-ensure}" in
  ensure) ensure ;;
  stop) stop ;;
  env) print_env ;;
  wipe) stop; rm -rf "$LAB/srv" "$LAB/cache" ;;
  *) echo "usage: $0 ensure|stop|env|wipe" >&2; exit 2 ;;
esac
