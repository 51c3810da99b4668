#!/usr/bin/env bash
# Lab: an OpenSSH server on 127.0.0.1:${SSH_LAB_PORT:-22922} standing in for a KVM hypervisor.
# root logs in with a generated key; user "sbpass" logs in with a generated password.
# Usage: sshd.sh ensure|stop
source "$(dirname "$0")/lib.sh"
DIR="$LAB_ROOT/sshd"
PORT="${SSH_LAB_PORT:-22922}"

ensure() {
  need_pkgs openssh-server qemu-utils socat netcat-openbsd
  mkdir -p "$DIR" /run/sshd
  chmod 0755 "$DIR"
  [ -f "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/host_ed25519" -C strongbox-lab-host
  [ -f "$DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/id_ed25519" -C strongbox-lab-client
  [ -f "$DIR/password" ] || (head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$DIR/password")
  id sbpass >/dev/null 2>&1 || useradd -m -s /bin/bash sbpass
  echo "sbpass:$(cat "$DIR/password")" | chpasswd
  # UsePAM no refuses locked accounts ("!") even for keys: make sure root's is "*" or a hash.
  if getent shadow root | cut -d: -f2 | grep -q '^!'; then usermod -p '*' root; fi
  mkdir -p "$DIR/keys"
  cp "$DIR/id_ed25519.pub" "$DIR/keys/root"
  # SHLVL=1: bash run by sshd skips ~/.bashrc (it sources it only at shell level 1), so a slow
  # root .bashrc on the machine (pyenv init: seconds under load) does not cost every exec channel.
  cat > "$DIR/sshd_config.new" <<CONF
ListenAddress 127.0.0.1
Port $PORT
HostKey $DIR/host_ed25519
PidFile $DIR/sshd.pid
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication yes
KbdInteractiveAuthentication no
AuthorizedKeysFile $DIR/keys/%u
StrictModes no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
MaxSessions 64
MaxStartups 64
Subsystem sftp internal-sftp
SetEnv SHLVL=1
CONF
  if cmp -s "$DIR/sshd_config.new" "$DIR/sshd_config"; then rm -f "$DIR/sshd_config.new"; else
    mv "$DIR/sshd_config.new" "$DIR/sshd_config"
    alive "$DIR/sshd.pid" && kill -HUP "$(cat "$DIR/sshd.pid")" && sleep 0.5
  fi
  if ! alive "$DIR/sshd.pid"; then
    /usr/sbin/sshd -f "$DIR/sshd_config" -E "$DIR/sshd.log"
    for _ in $(seq 50); do alive "$DIR/sshd.pid" && break; sleep 0.1; done
  fi
  alive "$DIR/sshd.pid" || { log "sshd did not start"; cat "$DIR/sshd.log" >&2; exit 1; }
  echo "SSH_HOST=127.0.0.1"
  echo "SSH_PORT=$PORT"
  echo "SSH_USER=root"
  echo "SSH_KEY=$DIR/id_ed25519"
  echo "SSH_PASSWORD_USER=sbpass"
  echo "SSH_PASSWORD=$(cat "$DIR/password")"
  echo "SSH_HOST_KEY_SHA256=$(ssh-keygen -l -E sha256 -f "$DIR/host_ed25519.pub" | awk '{print $2}')"
  echo "SSH_WORK_DIR=$DIR/work"
  mkdir -p "$DIR/work"
}

case "${1:-ensure}" in
  ensure) ensure ;;
  stop) stop_pidfile "$DIR/sshd.pid" ;;
  *) echo "usage: $0 ensure|stop" >&2; exit 2 ;;
esac
