#!/usr/bin/env bash
# Bring up a real libvirtd with QEMU (software emulation, TCG) for the libvirt
# driver's real test tier, on a Debian 12 machine without systemd, and build a
# tiny guest for it: the Debian cloud kernel + a busybox initramfs whose /init
# prints GUEST-READY on the serial console and powers off on the ACPI power
# button (so graceful shutdown is real).
#
# Idempotent and cheap when everything is there (~0.5 s); ~25 s on a fresh machine.
#
#   bash .ci/libvirt-setup.sh         # install, build the guest, start daemons, make the pool
#   bash .ci/libvirt-setup.sh stop    # stop the libvirtd/virtlogd this script started
#
# CP_TEST_ROOT (default /var/lib/controlplane-test) holds guest/, pool/, logs/.
# FORCE_GUEST=1 rebuilds the kernel/initramfs. The tests read the same defaults
# (tests/workers/libvirt_real.py).
set -euo pipefail

CP_TEST_ROOT=${CP_TEST_ROOT:-/var/lib/controlplane-test}
GUEST_DIR=$CP_TEST_ROOT/guest
POOL_DIR=$CP_TEST_ROOT/pool
POOL_NAME=${CP_TEST_POOL:-cp-test-pool}
LIBVIRT_URI=qemu:///system
LOG_DIR=/var/log/libvirt
LIBVIRTD_PIDFILE=/run/libvirtd.pid      # written by libvirtd itself
VIRTLOGD_PIDFILE=/run/virtlogd.pid      # written by virtlogd itself
TINI_PIDFILE=/run/cp-libvirtd-tini.pid  # ours

APT_PACKAGES=(
  libvirt-daemon              # libvirtd, virtlogd (+ storage drivers)
  libvirt-daemon-driver-qemu  # the QEMU driver
  libvirt-clients             # virsh
  libvirt-dev pkg-config gcc python3-dev   # libvirt-python compiles against these
  qemu-system-x86             # qemu-system-x86_64
  qemu-utils                  # qemu-img
  tini                        # subreaper for libvirtd (reaps QEMU at once)
  busybox-static              # guest userland
  iproute2                    # ip: the tests' own bridge for the guest's NIC (tests/workers/libvirt_support.py)
)
# Not installed: libvirt-daemon-system (systemd units, polkit, firewall deps; the
# libvirt-qemu user it would create is made below) and linux-image-* (its postinst
# writes /boot; we only need vmlinuz + a few modules: `apt-get download` + extract).
KERNEL_META=linux-image-cloud-amd64
GUEST_MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk failover net_failover virtio_net button evdev"
# Bumped whenever the guest's /init or modules change: a host with an older guest rebuilds it.
# 2: a NIC (virtio_net) brought up when the domain has one, sending ARP for 192.0.2.1 each
#    second (TEST-NET-1, never routed) so its network counters move (tests/workers/test_libvirt_metrics.py).
GUEST_VERSION=2

if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null && exec sudo -E bash "$0" "$@"
  echo "ERROR: $0 must run as root (apt, daemons, /dev/kvm)" >&2; exit 1
fi

t_total=$EPOCHREALTIME
t_step=
step() { t_step=$EPOCHREALTIME; printf '==> libvirt: %s\n' "$*"; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}'; }
done_step() { echo "    done in $(elapsed "$t_step")s"; }
die() { echo "ERROR: $*" >&2; exit 1; }

# Alive = the pid file names a process that exists and is not a zombie (PID 1
# here may reap orphans late, so dead daemons linger as <defunct>).
pid_alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -r "/proc/$pid/stat" ] || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

if [ "${1:-}" = stop ]; then
  if pid_alive "$LIBVIRTD_PIDFILE"; then kill "$(cat "$LIBVIRTD_PIDFILE")"; fi
  for _ in $(seq 50); do pid_alive "$LIBVIRTD_PIDFILE" || break; sleep 0.1; done
  if pid_alive "$TINI_PIDFILE"; then kill "$(cat "$TINI_PIDFILE")" 2>/dev/null || true; fi
  if pid_alive "$VIRTLOGD_PIDFILE"; then kill "$(cat "$VIRTLOGD_PIDFILE")"; fi
  rm -f "$TINI_PIDFILE"
  echo "libvirt daemons stopped"
  exit 0
fi

# ---------------------------------------------------------------- packages
step "apt packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "    installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "    all present"
fi
done_step

# ---------------------------------------------------------------- guest
step "guest kernel + busybox initramfs in $GUEST_DIR"
mkdir -p "$GUEST_DIR"
if [ "${FORCE_GUEST:-0}" = 1 ] || [ ! -s "$GUEST_DIR/vmlinuz" ] || [ ! -s "$GUEST_DIR/initrd.img" ] \
   || [ "$(cat "$GUEST_DIR/VERSION" 2>/dev/null)" != "$GUEST_VERSION" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  chmod 755 "$work"; chown _apt "$work" 2>/dev/null || true   # apt-get download runs as _apt
  kpkg=$(apt-cache depends "$KERNEL_META" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
  if [ -z "$kpkg" ]; then
    apt-get update -qq
    kpkg=$(apt-cache depends "$KERNEL_META" | awk '/Depends: linux-image-/{print $2; exit}')
  fi
  [ -n "$kpkg" ] || die "cannot resolve $KERNEL_META"
  (cd "$work" && apt-get download -qq "$kpkg" >/dev/null)
  dpkg-deb -x "$work"/linux-image-*.deb "$work/k"
  kver=$(ls "$work/k/lib/modules")
  kmod=$work/k/lib/modules/$kver/kernel
  root=$work/root
  mkdir -p "$root"/{bin,proc,sys,dev,tmp,run,etc/acpi/PWRF,lib/modules}
  cp /bin/busybox "$root/bin/busybox"
  # Load order matters (no modprobe in the guest). button+evdev: the ACPI power
  # button becomes an input event for busybox acpid; virtio*: the disk shows as /dev/vda;
  # failover, net_failover, virtio_net: a NIC, when the domain has one, is eth0.
  for m in $GUEST_MODULES; do
    f=$(find "$kmod" -name "$m.ko" -o -name "$m.ko.xz" | head -1)
    [ -n "$f" ] || die "module $m not found in $kpkg"
    case $f in *.xz) xz -dc "$f" > "$root/lib/modules/$m.ko" ;; *) cp "$f" "$root/lib/modules/$m.ko" ;; esac
  done
  cat > "$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $GUEST_MODULES; do insmod /lib/modules/\$m.ko 2>/dev/null; done
echo "GUEST-DISKS \$(ls /dev/vd* 2>/dev/null | tr '\n' ' ')"
if ip link set eth0 up 2>/dev/null; then
  ip addr add 192.0.2.2/24 dev eth0
  (while :; do ping -c 1 -W 1 192.0.2.1 >/dev/null 2>&1; sleep 1; done) &
  echo "GUEST-NIC eth0 \$(cat /sys/class/net/eth0/address)"
fi
acpid -d -c /etc/acpi &
echo "GUEST-READY uptime=\$(cut -d' ' -f1 /proc/uptime)"
while :; do sleep 3600; done
INIT
  cat > "$root/etc/acpi/PWRF/00000080" <<'PWRF'
#!/bin/sh
echo "GUEST-POWEROFF uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
PWRF
  chmod 755 "$root/init" "$root/etc/acpi/PWRF/00000080"
  (cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$work/initrd.img")
  install -m 0644 "$work/k/boot/vmlinuz-$kver" "$GUEST_DIR/vmlinuz.new"
  install -m 0644 "$work/initrd.img" "$GUEST_DIR/initrd.img.new"
  mv -f "$GUEST_DIR/vmlinuz.new" "$GUEST_DIR/vmlinuz"
  mv -f "$GUEST_DIR/initrd.img.new" "$GUEST_DIR/initrd.img"
  echo "$kpkg" > "$GUEST_DIR/KERNEL"
  echo "$GUEST_VERSION" > "$GUEST_DIR/VERSION"
  rm -rf "$work"; trap - EXIT
  echo "    built from $kpkg: $(du -h "$GUEST_DIR/vmlinuz" | cut -f1) vmlinuz, $(du -h "$GUEST_DIR/initrd.img" | cut -f1) initrd"
else
  echo "    present ($(cat "$GUEST_DIR/KERNEL" 2>/dev/null || echo '?'))"
fi
done_step

# ---------------------------------------------------------------- users, /dev/kvm
step "users/groups + /dev/kvm"
# Debian's libvirt runs QEMU as libvirt-qemu:libvirt-qemu; libvirt-daemon-system
# would create them. Without them the QEMU driver does not load.
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null || \
  useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -M -s /usr/sbin/nologin -c "Libvirt Qemu" libvirt-qemu
if [ -e /dev/kvm ]; then
  # root:root 0600 makes libvirt think its cached QEMU capabilities are stale and
  # re-probe QEMU on connection calls (seconds each). Guests still use TCG.
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi
mkdir -p "$CP_TEST_ROOT/logs" "$LOG_DIR"
done_step

# ---------------------------------------------------------------- daemons
step "virtlogd"
if pid_alive "$VIRTLOGD_PIDFILE"; then
  echo "    already running (pid $(cat $VIRTLOGD_PIDFILE))"
else
  /usr/sbin/virtlogd -d
  for _ in $(seq 50); do pid_alive "$VIRTLOGD_PIDFILE" && break; sleep 0.05; done
  pid_alive "$VIRTLOGD_PIDFILE" || die "virtlogd did not start"
fi
done_step

step "libvirtd (under tini -s)"
if pid_alive "$LIBVIRTD_PIDFILE"; then
  echo "    already running (pid $(cat $LIBVIRTD_PIDFILE))"
else
  # No -d: tini stays the parent and, as subreaper, reaps the double-forked QEMU
  # processes at once instead of leaving them to PID 1 (~1.5 s per guest otherwise).
  setsid /usr/bin/tini -s -- /usr/sbin/libvirtd >>"$LOG_DIR/libvirtd.log" 2>&1 </dev/null &
  echo $! > "$TINI_PIDFILE"
fi
ok=0
for _ in $(seq 300); do
  if virsh -c "$LIBVIRT_URI" version >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.1
done
[ $ok = 1 ] || { tail -20 "$LOG_DIR/libvirtd.log" >&2; die "libvirtd does not answer on $LIBVIRT_URI"; }
virsh -c "$LIBVIRT_URI" version | grep -E 'library|hypervisor' | sed 's/^/    /'
done_step

# ---------------------------------------------------------------- pool + images
# What an operator does once per host (docs/LIBVIRT.md): a storage pool holding
# the base images. Here: a 64 MiB base qcow2 and the guest kernel/initrd as volumes.
step "storage pool $POOL_NAME + base volumes"
V="virsh -q -c $LIBVIRT_URI"
if ! $V pool-info "$POOL_NAME" >/dev/null 2>&1; then
  $V pool-define-as "$POOL_NAME" dir --target "$POOL_DIR" >/dev/null
  $V pool-build "$POOL_NAME" >/dev/null
fi
case $($V pool-info "$POOL_NAME") in *"State:"*running*) ;; *) $V pool-start "$POOL_NAME" >/dev/null ;; esac
$V pool-autostart "$POOL_NAME" >/dev/null
changed=0
for f in vmlinuz initrd.img; do
  cmp -s "$GUEST_DIR/$f" "$POOL_DIR/cptest-$f" || { install -m 0644 "$GUEST_DIR/$f" "$POOL_DIR/cptest-$f"; changed=1; }
done
if [ $changed = 1 ]; then $V pool-refresh "$POOL_NAME" >/dev/null; fi
$V vol-info --pool "$POOL_NAME" cptest-base.qcow2 >/dev/null 2>&1 || \
  $V vol-create-as "$POOL_NAME" cptest-base.qcow2 64M --format qcow2 >/dev/null
$V vol-list "$POOL_NAME" | awk '/cptest-(base|vmlinuz|initrd)/{print "    " $1}'
done_step

echo "libvirt set-up done in $(elapsed "$t_total")s"
