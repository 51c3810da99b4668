#!/usr/bin/env bash
# Lab: a real libvirtd (QEMU/KVM, TCG when /dev/kvm is missing) with one tiny domain that looks like
# a Nova instance: name instance-00000001, the Nova UUID as <uuid>, disks in
# instances/<uuid>/{disk,disk.eph0} as qcow2 on a raw _base image, no NIC, no OS (it idles in the
# firmware, which is enough for live snapshots and block jobs).
# Usage: libvirt.sh ensure|reset-domain|stop
source "$(dirname "$0")/lib.sh"
DIR="$LAB_ROOT/libvirt"
DOMAIN=instance-00000001
UUID=6c4f8f0e-2b1a-4c1e-9a55-5b1f0e2d7a01
DISK_MIB=64

install() {
  # Never libvirt-daemon-system / -config-network: they bring up a NAT bridge.
  need_pkgs qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
  id libvirt-qemu >/dev/null 2>&1 || useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
}

configure() {
  mkdir -p "$DIR" /etc/libvirt
  cat > /etc/libvirt/qemu.conf <<CONF
# Written by strongbox test/labs/libvirt.sh: root, no security driver, no cgroups (no systemd here).
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
CONF
  cat > "$DIR/libvirtd.conf" <<CONF
listen_tls = 0
listen_tcp = 0
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$DIR/libvirtd.log"
CONF
}

start_daemon() {
  if ! alive "$DIR/libvirtd.pid"; then
    libvirtd -d -f "$DIR/libvirtd.conf" -p "$DIR/libvirtd.pid"
  fi
  for _ in $(seq 100); do virsh -c qemu:///system version >/dev/null 2>&1 && return 0; sleep 0.1; done
  log "libvirtd did not answer"; tail -20 "$DIR/libvirtd.log" >&2; exit 1
}

make_disks() {
  local inst="$DIR/instances/$UUID"
  mkdir -p "$DIR/instances/_base" "$inst"
  local base="$DIR/instances/_base/4e2d1a9c0b7f3e5d6a8c1b2e9f0d7c3a5b6e8f10"
  if [ ! -f "$base" ]; then
    # A raw "Glance image": patterned data in the first half, holes in the rest.
    qemu-img create -q -f raw "$base.tmp" ${DISK_MIB}M
    qemu-io -f raw -c "write -P 0x5a 0 8M" -c "write -P 0x3c 16M 4M" "$base.tmp" >/dev/null
    mv "$base.tmp" "$base"
  fi
  rm -f "$inst"/disk* "$inst"/*.sb-*
  qemu-img create -q -f qcow2 -F raw -b "$base" "$inst/disk" ${DISK_MIB}M
  qemu-io -f qcow2 -c "write -P 0x77 4M 2M" -c "write -P 0x78 40M 1M" "$inst/disk" >/dev/null
  qemu-img create -q -f qcow2 "$inst/disk.eph0" 32M
  qemu-io -f qcow2 -c "write -P 0x21 0 1M" "$inst/disk.eph0" >/dev/null
}

define_domain() {
  local inst="$DIR/instances/$UUID" type=kvm
  [ -c /dev/kvm ] || type=qemu
  cat > "$DIR/domain.xml" <<XML
<domain type='$type'>
  <name>$DOMAIN</name>
  <uuid>$UUID</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <cpu mode='custom' match='exact' check='none'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='$inst/disk'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='$inst/disk.eph0'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <graphics type='vnc' listen='127.0.0.1' autoport='yes'/>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
XML
  virsh -q define "$DIR/domain.xml" >/dev/null
  virsh -q start "$DOMAIN" >/dev/null
}

domain_running() { [ "$(virsh domstate "$DOMAIN" 2>/dev/null)" = "running" ]; }

remove_domain() {
  virsh -q destroy "$DOMAIN" >/dev/null 2>&1 || true
  virsh -q undefine "$DOMAIN" --checkpoints-metadata >/dev/null 2>&1 || true
}

print_env() {
  echo "LIBVIRT_DOMAIN=$DOMAIN"
  echo "LIBVIRT_UUID=$UUID"
  echo "LIBVIRT_DIR=$DIR"
  echo "LIBVIRT_ROOT_DISK=$DIR/instances/$UUID/disk"
  echo "LIBVIRT_EPHEMERAL_DISK=$DIR/instances/$UUID/disk.eph0"
  echo "LIBVIRT_VIRT_TYPE=$([ -c /dev/kvm ] && echo kvm || echo qemu)"
}

case "${1:-ensure}" in
  ensure)
    install; configure; start_daemon
    if ! domain_running; then remove_domain; make_disks; define_domain; fi
    print_env ;;
  reset-domain)
    install; configure; start_daemon; remove_domain; make_disks; define_domain; print_env ;;
  stop)
    remove_domain; stop_pidfile "$DIR/libvirtd.pid" ;;
  *) echo "usage: $0 ensure|reset-domain|stop" >&2; exit 2 ;;
esac
