"""Shared by the libvirt driver tests: spec factories and the real tier's host.

The real tier talks to the libvirtd that ``.ci/libvirt-setup.sh`` starts (``make
test`` runs it): storage pool ``cp-test-pool`` with a 64 MiB base qcow2 and the
busybox guest's kernel and initramfs as volumes. When that is not there the
tests fail with the reason; they never skip.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pycdlib
import pytest

from tests.workers.contract import new_key
from workers.drivers.base import HypervisorConfig, VMSpec, clear_driver_cache, get_driver

CP_TEST_ROOT = Path(os.environ.get("CP_TEST_ROOT", "/var/lib/controlplane-test"))
REAL_URI = "qemu:///system"
REAL_POOL = "cp-test-pool"
SERIAL_DIR = CP_TEST_ROOT / "logs"
GUEST_VOLUMES = ("cptest-base.qcow2", "cptest-vmlinuz", "cptest-initrd.img")
GUEST_IMAGE_REF = (
    "cptest-base.qcow2?kernel=cptest-vmlinuz&initrd=cptest-initrd.img&cmdline=console=ttyS0+panic=-1+quiet"
)
REAL_SETTINGS = {
    "uri": REAL_URI,
    "pool": REAL_POOL,
    "domain_type": "qemu",  # TCG: no KVM on CI machines
    "serial_log_dir": str(SERIAL_DIR),
    "shutdown_retry_seconds": 1,
}
# Every guest this test run makes is named cpt-<pid>-...: two runs on one libvirtd (two
# checkouts, a developer and CI) never delete each other's guests. Leftovers of an
# interrupted run (its pid no longer alive) are purged too.
PREFIX = f"cpt-{os.getpid()}-"
_RUN_NAME = re.compile(r"^cpt-(\d+)-")
SETUP_HINT = "run `bash .ci/libvirt-setup.sh` as root (`make test` does)"

FAST_POOL = "default-pool"  # predefined by libvirt's test driver
FAST_BASE = "cpt-base.qcow2"
FAST_SETTINGS = {"uri": "test:///default", "pool": FAST_POOL, "domain_type": "test"}


def spec_factory(image_ref: str, **defaults):
    def make(**overrides) -> VMSpec:
        values = {
            "name": f"{PREFIX}{uuid.uuid4().hex[:6]}",
            "idempotency_key": new_key(),
            "vcpus": 1,
            "memory_mib": 128,
            "disk_gib": 1,
            "image_ref": image_ref,
            "extra": {"hard_stop_after_seconds": 60},
            **defaults,
        }
        values.update(overrides)
        return VMSpec(**values)

    return make


def libvirt_driver(name: str, base: dict, **settings):
    return get_driver(HypervisorConfig(name=name, kind="libvirt", settings={**base, **settings}))


def ensure_fast_base(driver) -> None:
    """The test driver keeps state only while a connection is open: recreate the base when needed."""
    pool = driver.client.connection().storagePoolLookupByName(FAST_POOL)
    if FAST_BASE not in pool.listVolumes():
        pool.createXML(
            f"<volume><name>{FAST_BASE}</name><capacity>{64 << 20}</capacity>"
            "<target><format type='qcow2'/></target></volume>"
        )


def delete_ours(driver) -> None:
    """Delete every guest the tests made (by the name prefix), through the driver."""
    for vm in driver.list_all():
        if vm.name.startswith(PREFIX):
            driver.delete(vm.backend_id)


def require_real_libvirt() -> libvirt.virConnect:
    """A connection to the real libvirtd with the guest's volumes, or a test failure saying why."""
    problem = None
    try:
        conn = libvirt.open(REAL_URI)
    except libvirt.libvirtError as exc:
        problem = f"{REAL_URI} unreachable ({exc})"
    else:
        try:
            pool = conn.storagePoolLookupByName(REAL_POOL)
            if not pool.isActive():
                pool.create(0)
            pool.refresh(0)
            missing = [name for name in GUEST_VOLUMES if name not in pool.listVolumes()]
            if missing:
                problem = f"storage pool {REAL_POOL} lacks {missing}"
        except libvirt.libvirtError as exc:
            problem = f"storage pool {REAL_POOL}: {exc}"
    if problem:
        pytest.fail(f"real libvirt tier cannot run: {problem}; {SETUP_HINT}", pytrace=False)
    return conn


def real_host() -> Iterator[libvirt.virConnect]:
    """For a fixture: the real libvirtd (or a failure saying why), cleared of earlier runs'
    guests before and after; the cached drivers' connections are closed at the end."""
    conn = require_real_libvirt()
    purge_leftovers(conn)
    yield conn
    purge_leftovers(conn)
    conn.close()
    clear_driver_cache()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_ours_or_orphaned(name: str) -> bool:
    """A name this run made, or one a run that is no longer alive made; never another live run's."""
    if name.startswith(PREFIX):
        return True
    match = _RUN_NAME.match(name)
    return bool(match) and not _pid_alive(int(match.group(1)))


def purge_leftovers(conn: libvirt.virConnect) -> None:
    """Remove this run's guests and volumes, and those of earlier, interrupted runs."""
    for dom in conn.listAllDomains(0):
        if is_ours_or_orphaned(dom.name()):
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    pool = conn.storagePoolLookupByName(REAL_POOL)
    for volume in pool.listAllVolumes(0):
        if is_ours_or_orphaned(volume.name()):
            volume.delete(0)
    for log in SERIAL_DIR.glob("cpt-*.log"):
        if is_ours_or_orphaned(log.name):
            log.unlink()


def serial_text(domain_name: str) -> str:
    path = SERIAL_DIR / f"{domain_name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def wait_serial(domain_name: str, needle: str, count: int = 1, timeout: float = 60) -> float:
    """Wait until the guest printed ``needle`` ``count`` times on its serial console; seconds waited."""
    start = time.monotonic()
    while serial_text(domain_name).count(needle) < count:
        if time.monotonic() - start > timeout:
            raise AssertionError(
                f"{domain_name} did not print {needle!r} x{count} in {timeout}s:\n{serial_text(domain_name)[-2000:]}"
            )
        time.sleep(0.05)
    return time.monotonic() - start


def iso_files(data: bytes) -> tuple[str, dict[str, bytes]]:
    """(volume label, files by Rock Ridge name) of an ISO image."""
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    try:
        files = {}
        for child in iso.list_children(rr_path="/"):
            if child.is_file():
                name = child.rock_ridge.name().decode()
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, rr_path=f"/{name}")
                files[name] = out.getvalue()
        return iso.pvd.volume_identifier.decode().strip(), files
    finally:
        iso.close()


# -- a network for the guest's NIC ----------------------------------------------------------
# libvirt's own networks need iptables (even isolated ones), which this host lacks; a Linux
# bridge of the run's own name (cpt<pid>, no address, no route) is what the driver's ``bridge``
# setting attaches guests to. The test guest brings eth0 up and sends ARP for 192.0.2.1 every
# second (tx); the host sends raw broadcast frames onto the bridge (rx). Nothing is routed.
BRIDGE = f"cpt{os.getpid()}"[:15]
_RUN_BRIDGE = re.compile(r"^cpt(\d+)$")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def make_bridge() -> str:
    """This run's bridge, up (created if missing; bridges of runs no longer alive removed)."""
    for path in Path("/sys/class/net").glob("cpt*"):
        match = _RUN_BRIDGE.match(path.name)
        if match and path.name != BRIDGE and not _pid_alive(int(match.group(1))):
            _ip("link", "del", path.name)
    if not Path(f"/sys/class/net/{BRIDGE}").exists():
        _ip("link", "add", "name", BRIDGE, "type", "bridge", "forward_delay", "0", "stp_state", "0")
    _ip("link", "set", BRIDGE, "up")
    return BRIDGE


def remove_bridge() -> None:
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        _ip("link", "del", BRIDGE)


def send_frames(count: int, size: int = 1000) -> int:
    """Broadcast ``count`` raw Ethernet frames (local experimental EtherType) onto the bridge;
    the bytes sent."""
    frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + b"\x00" * (size - 14)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((BRIDGE, 0))
        for _ in range(count):
            sock.send(frame)
    return count * size
