#!/usr/bin/env bash
# A real Keystone (Debian's package, Zed) for the OpenStack client tests.
#   test/labs/keystone.sh ensure   install if missing, configure, start; print KEY=value lines
#   test/labs/keystone.sh stop     stop the server (data is kept; `ensure` restarts it fast)
# MariaDB on 127.0.0.1:3306 (root, no password) holds the database; uwsgi serves
# keystone-wsgi-public on 127.0.0.1:$KEYSTONE_LAB_PORT with `Connection: close` on every answer
# (Keystone under uwsgi resets kept-alive connections otherwise).
set -euo pipefail

LAB_DIR=${KEYSTONE_LAB_DIR:-/var/tmp/strongbox-keystone-lab}
PORT=${KEYSTONE_LAB_PORT:-15357}
DB=${KEYSTONE_LAB_DB:-strongbox_keystone_lab}
ADMIN_PASSWORD=lab-admin-secret
LAB2_PASSWORD=lab2-backup-secret
URL="http://127.0.0.1:${PORT}/v3"

mkdir -p "$LAB_DIR"
exec 9>"$LAB_DIR/.lock"
flock 9   # parallel test files: one of them sets up, the others wait and reuse

print_env() {
  cat <<OUT
KEYSTONE_URL=$URL
KEYSTONE_REGION=RegionOne
KEYSTONE_REGION2=RegionTwo
KEYSTONE_ADMIN_USER=admin
KEYSTONE_ADMIN_PASSWORD=$ADMIN_PASSWORD
KEYSTONE_ADMIN_DOMAIN=Default
KEYSTONE_ADMIN_PROJECT=admin
KEYSTONE_LAB2_DOMAIN=lab2
KEYSTONE_LAB2_USER=backup-svc
KEYSTONE_LAB2_PASSWORD=$LAB2_PASSWORD
KEYSTONE_LAB2_PROJECT=backup-proj-a
OUT
}

running() {
  [ -f "$LAB_DIR/uwsgi.pid" ] && kill -0 "$(cat "$LAB_DIR/uwsgi.pid")" 2>/dev/null \
    && curl -fsS -o /dev/null --max-time 5 "$URL"
}

stop() {
  if [ -f "$LAB_DIR/uwsgi.pid" ]; then
    local pid; pid=$(cat "$LAB_DIR/uwsgi.pid")
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$LAB_DIR/uwsgi.pid"
  fi
}

install() {
  command -v keystone-manage >/dev/null && return
  echo "keystone lab: installing keystone from Debian (takes a few minutes)" >&2
  apt-get -o DPkg::Lock::Timeout=900 update -q >&2
  # No init system here: tell invoke-rc.d not to start services during the install.
  local policy=/usr/sbin/policy-rc.d created=
  if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod +x $policy; created=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends keystone uwsgi-plugin-python3 >&2
  if [ -n "$created" ]; then rm -f $policy; fi   # a bare `[ ] &&` would end the function with 1 under set -e
}

configure() {
  [ -f "$LAB_DIR/bootstrapped" ] && return
  echo "keystone lab: configuring (database $DB on MariaDB)" >&2
  mkdir -p "$LAB_DIR/fernet-keys" "$LAB_DIR/credential-keys" "$LAB_DIR/log"
  cat > "$LAB_DIR/keystone.conf" <<CONF
[DEFAULT]
log_dir = $LAB_DIR/log
log_file = keystone.log
[database]
connection = mysql+pymysql://root@127.0.0.1:3306/$DB
[fernet_tokens]
key_repository = $LAB_DIR/fernet-keys
[credential]
key_repository = $LAB_DIR/credential-keys
[token]
provider = fernet
expiration = 3600
[catalog]
driver = sql
CONF
  mysql -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4"
  local km="keystone-manage --config-file $LAB_DIR/keystone.conf"
  $km db_sync >&2
  $km fernet_setup --keystone-user root --keystone-group root >&2
  $km credential_setup --keystone-user root --keystone-group root >&2
  $km bootstrap --bootstrap-password "$ADMIN_PASSWORD" --bootstrap-username admin --bootstrap-project-name admin \
    --bootstrap-role-name admin --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "$URL" --bootstrap-internal-url "$URL" --bootstrap-public-url "$URL" >&2
  touch "$LAB_DIR/bootstrapped"
}

serve() {
  running && return
  stop
  OS_KEYSTONE_CONFIG_FILES="$LAB_DIR/keystone.conf" uwsgi --plugin python3 \
    --http-socket "127.0.0.1:$PORT" --wsgi-file /usr/bin/keystone-wsgi-public \
    --processes 2 --threads 1 --master --die-on-term --add-header "Connection: close" \
    --env "OS_KEYSTONE_CONFIG_FILES=$LAB_DIR/keystone.conf" \
    --pidfile "$LAB_DIR/uwsgi.pid" --daemonize "$LAB_DIR/log/uwsgi.log" >&2 9>&-
  for _ in $(seq 120); do curl -fsS -o /dev/null --max-time 2 "$URL" 2>/dev/null && return; sleep 0.5; done
  echo "keystone lab: server did not come up; see $LAB_DIR/log" >&2
  tail -20 "$LAB_DIR/log/uwsgi.log" >&2
  exit 1
}

# A second region and domain, a fake compute service, and roles for domain-scoped tokens.
populate() {
  [ -f "$LAB_DIR/configured" ] && return
  echo "keystone lab: creating lab2 domain, user, projects, compute endpoints" >&2
  export OS_AUTH_URL="$URL" OS_IDENTITY_API_VERSION=3 OS_USERNAME=admin OS_PASSWORD="$ADMIN_PASSWORD" \
    OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_INTERFACE=public
  local os="openstack"
  $os region create RegionTwo >&2
  $os service create --name nova compute >&2
  $os endpoint create --region RegionOne compute public "http://127.0.0.1:18774/public/v2.1" >&2
  $os endpoint create --region RegionOne compute internal "http://127.0.0.1:18774/internal/v2.1" >&2
  $os endpoint create --region RegionOne compute admin "http://127.0.0.1:18774/admin/v2.1" >&2
  $os endpoint create --region RegionTwo compute public "http://127.0.0.2:18774/public/v2.1" >&2
  $os endpoint create --region RegionTwo compute internal "http://127.0.0.2:18774/internal/v2.1" >&2
  $os service create --name swift object-store >&2
  $os endpoint create --region RegionOne object-store public "http://127.0.0.1:18080/v1/AUTH_%(project_id)s" >&2
  $os role add --user admin --user-domain Default --domain default admin >&2
  $os domain create --description lab lab2 >&2
  $os project create --domain lab2 backup-proj-a >&2
  $os project create --domain lab2 backup-proj-b >&2
  $os user create --domain lab2 --password "$LAB2_PASSWORD" backup-svc >&2
  $os role add --user backup-svc --user-domain lab2 --project backup-proj-a --project-domain lab2 admin >&2
  $os role add --user backup-svc --user-domain lab2 --project backup-proj-b --project-domain lab2 member >&2
  $os role add --user backup-svc --user-domain lab2 --domain lab2 admin >&2
  touch "$LAB_DIR/configured"
}

case "${1:-ensure}" in
  ensure)
    if [ -f "$LAB_DIR/configured" ] && running; then print_env; exit 0; fi
    install
    if [ ! -f "$LAB_DIR/bootstrapped" ]; then rm -f "$LAB_DIR/configured"; configure; fi
    serve
    populate
    print_env
    ;;
  stop) stop ;;
  reset) stop; rm -rf "$LAB_DIR"; mysql -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $DB" ;;
  *) echo "usage: $0 ensure|stop|reset" >&2; exit 2 ;;
esac
