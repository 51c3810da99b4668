#!/usr/bin/env bash
# Lab: a single-node Ceph cluster (one mon, one BlueStore OSD on a sparse file, no mgr) on
# 127.0.0.1 with pools "rbd" and "volumes" (size 1) and a client user "client.strongbox".
# Usage: ceph.sh ensure|stop
source "$(dirname "$0")/lib.sh"
DIR="$LAB_ROOT/ceph"
CONF="$DIR/ceph.conf"
MON_ADDR='[v2:127.0.0.1:3300,v1:127.0.0.1:6789]'

write_conf() {
  cat > "$CONF" <<CONF
[global]
fsid = $(cat "$DIR/fsid")
mon host = $MON_ADDR
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
osd crush chooseleaf type = 0
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
[client.admin]
keyring = $DIR/admin.keyring
[mon]
mon data = $DIR/mon/\$cluster-\$id
keyring = $DIR/mon/\$cluster-\$id/keyring
[osd]
osd data = $DIR/osd/\$cluster-\$id
keyring = $DIR/osd/\$cluster-\$id/keyring
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 10G
osd memory target = 896M
CONF
}

c() { ceph -c "$CONF" --connect-timeout 20 "$@"; }

create_cluster() {
  rm -rf "$DIR"; mkdir -p "$DIR"/{run,log,mon,osd}
  uuidgen > "$DIR/fsid"
  write_conf
  ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *'
  ceph-authtool --create-keyring "$DIR/admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *'
  ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/admin.keyring"
  monmaptool --create --addv a "$MON_ADDR" --fsid "$(cat "$DIR/fsid")" "$DIR/monmap" >/dev/null
  mkdir -p "$DIR/mon/ceph-a"
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring"
  ceph-mon -c "$CONF" -i a
  local osd_uuid; osd_uuid="$(uuidgen)"
  c osd new "$osd_uuid" >/dev/null
  mkdir -p "$DIR/osd/ceph-0"
  ceph-osd -c "$CONF" -i 0 --mkfs --mkkey --no-mon-config --osd-uuid "$osd_uuid" 2>>"$DIR/log/mkfs.log"
  c auth add osd.0 osd 'allow *' mon 'allow profile osd' -i "$DIR/osd/ceph-0/keyring"
  ceph-osd -c "$CONF" -i 0
  for pool in rbd volumes; do
    c osd pool create "$pool" 16 16 >/dev/null 2>&1
    c osd pool set "$pool" size 1 --yes-i-really-mean-it >/dev/null 2>&1
  done
  wait_ready
  for pool in rbd volumes; do rbd -c "$CONF" pool init "$pool"; done
  c auth get-or-create client.strongbox mon 'profile rbd' osd 'profile rbd' \
    -o "$DIR/client.strongbox.keyring"
  touch "$DIR/.created"
}

start_daemons() {
  alive "$DIR/run/mon.a.pid" || ceph-mon -c "$CONF" -i a
  alive "$DIR/run/osd.0.pid" || ceph-osd -c "$CONF" -i 0
}

# Without a mgr `ceph pg stat` blocks: readiness = an object write that completes.
wait_ready() {
  for _ in $(seq 120); do
    if timeout 5 rados -c "$CONF" -p rbd put strongbox-probe "$CONF" 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  log "ceph not ready"; tail -20 "$DIR/log/osd.0.log" >&2; exit 1
}

ensure() {
  # qemu-block-extra: QEMU's rbd driver, for random reads of snapshots through qemu-nbd (librbd).
  need_pkgs ceph-mon ceph-osd ceph-common uuid-runtime qemu-utils qemu-block-extra
  if [ -f "$DIR/.created" ]; then start_daemons; wait_ready; else create_cluster; fi
  echo "CEPH_CONF=$CONF"
  echo "CEPH_MON_HOST=$MON_ADDR"
  echo "CEPH_ADMIN_KEYRING=$DIR/admin.keyring"
  echo "CEPH_USER=strongbox"
  echo "CEPH_KEYRING=$DIR/client.strongbox.keyring"
  echo "CEPH_POOLS=rbd,volumes"
}

case "${1:-ensure}" in
  ensure) ensure ;;
  stop) stop_pidfile "$DIR/run/osd.0.pid"; stop_pidfile "$DIR/run/mon.a.pid" ;;
  *) echo "usage: $0 ensure|stop" >&2; exit 2 ;;
esac
