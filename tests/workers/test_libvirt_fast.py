"""libvirt driver, fast tier: libvirt's built-in test driver (test:///default), in process."""

import logging
import uuid
from xml.etree import ElementTree

import libvirt
import pytest

from tests.workers.contract import DriverContract, wait_done
from tests.workers.libvirt_support import (
    FAST_BASE,
    FAST_POOL,
    FAST_SETTINGS,
    delete_ours,
    ensure_fast_base,
    iso_files,
    libvirt_driver,
    spec_factory,
)
from workers.drivers.base import (
    PermanentDriverError,
    PowerState,
    ResizeSpec,
    TransientDriverError,
    clear_driver_cache,
)
from workers.drivers.libvirt.client import translate
from workers.drivers.libvirt.domain import NS_URI, domain_name, domain_xml, wants_seed
from workers.drivers.libvirt.options import ImageRef, LibvirtSettings
from workers.drivers.libvirt.seed import build_iso, nocloud_files


@pytest.fixture(scope="module", autouse=True)
def _close_drivers():
    yield
    clear_driver_cache()


def fast_driver(**settings):
    driver = libvirt_driver("libvirt-fast", FAST_SETTINGS, **settings)
    ensure_fast_base(driver)
    return driver


@pytest.fixture
def driver():
    driver = fast_driver()
    yield driver
    delete_ours(driver)


@pytest.fixture
def make_spec():
    return spec_factory(f"{FAST_BASE}?kernel=/boot/vmlinuz&initrd=/boot/initrd.img")


@pytest.fixture
def unknown_backend_id():
    return str(uuid.uuid4())


class TestLibvirtTestDriverContract(DriverContract):
    poll_timeout = 10
    console_serves = False  # libvirt's test driver runs no QEMU: the VNC device never gets a port
    # ... and keeps no CPU, disk or network counters: the real tier checks them (test_libvirt_metrics.py)
    metrics_counters = False

    def test_resize_grows_and_refuses_a_smaller_disk(self, driver, make_spec):
        """libvirt's test driver has no ``blockResize``: the disk grows on the real tier
        (test_libvirt_day2_real.py); here vCPU/memory (shutdown, redefine, start) and the refusal."""
        spec = make_spec()
        vm, _ = self._create(driver, lambda: spec)
        bigger = ResizeSpec(vcpus=spec.vcpus + 1, memory_mib=spec.memory_mib * 2, disk_gib=spec.disk_gib)
        wait_done(driver, driver.resize(vm.backend_id, spec=bigger), self.poll_timeout)
        root = _domain_xml(driver, vm.backend_id)
        assert (root.findtext("vcpu"), int(root.findtext("memory"))) == (str(spec.vcpus + 1), spec.memory_mib * 2048)
        assert driver.get(vm.backend_id).power_state == PowerState.RUNNING
        with pytest.raises(PermanentDriverError) as refused:
            driver.resize(vm.backend_id, spec=ResizeSpec(vcpus=1, memory_mib=128, disk_gib=0))
        assert refused.value.code == "disk_shrink"


def _domain_xml(driver, backend_id) -> ElementTree.Element:
    return ElementTree.fromstring(driver.client.connection().lookupByUUIDString(backend_id).XMLDesc(0))


def _volumes(driver) -> set[str]:
    return set(driver.client.connection().storagePoolLookupByName(FAST_POOL).listVolumes())


# -- what create defines ------------------------------------------------------------------------


def test_domain_carries_key_plan_overlay_and_kernel_boot(driver, make_spec):
    spec = make_spec(vcpus=2, memory_mib=256, disk_gib=3, extra={"hard_stop_after_seconds": 45})
    task = driver.create(spec)
    root = _domain_xml(driver, task.backend_id)

    assert root.get("type") == "test" and root.findtext("name") == domain_name(spec)
    assert root.findtext("title") == spec.name
    instance = root.find(f"metadata/{{{NS_URI}}}instance")
    assert instance.findtext(f"{{{NS_URI}}}idempotency-key") == spec.idempotency_key
    assert instance.findtext(f"{{{NS_URI}}}hard-stop-after") == "45"
    assert root.findtext("vcpu") == "2" and int(root.findtext("memory")) == 256 * 1024
    assert root.find("features/acpi") is not None  # graceful shutdown needs it
    assert root.findtext("os/kernel") == "/boot/vmlinuz" and root.findtext("os/initrd") == "/boot/initrd.img"
    assert root.findtext("os/cmdline") == "console=ttyS0"
    source = root.find("devices/disk[@device='disk']/source")
    assert source.get("pool") == FAST_POOL and source.get("volume") == f"{domain_name(spec)}-disk.qcow2"
    assert root.find("devices/interface") is None  # neither network nor bridge configured
    assert root.find("devices/serial").get("type") == "pty"

    # the disk is a qcow2 overlay of the base volume, sized by the plan
    pool = driver.client.connection().storagePoolLookupByName(FAST_POOL)
    volume = ElementTree.fromstring(pool.storageVolLookupByName(source.get("volume")).XMLDesc(0))
    assert volume.find("target/format").get("type") == "qcow2"
    assert volume.findtext("backingStore/path") == pool.storageVolLookupByName(FAST_BASE).path()
    assert int(volume.findtext("capacity")) == 3 * 1024**3


def test_interfaces_firmware_serial_and_seed_rendering(make_spec):
    # Given settings asking for a bridge, q35, EFI and serial logs to a directory
    settings = LibvirtSettings.from_config(
        {**FAST_SETTINGS, "bridge": "br0", "machine": "q35", "firmware": "efi", "serial_log_dir": "/var/log/guests"}
    )
    image = ImageRef.parse(FAST_BASE)
    xml = domain_xml(make_spec(), image, settings, name="web", disk="web-disk.qcow2", seed="web-seed.iso", hard_stop=0)
    root = ElementTree.fromstring(xml)
    assert root.find("os").get("firmware") == "efi" and root.find("os/type").get("machine") == "q35"
    assert root.find("os/boot").get("dev") == "hd" and root.find("os/kernel") is None
    interface = root.find("devices/interface")
    assert interface.get("type") == "bridge" and interface.find("source").get("bridge") == "br0"
    assert root.find("devices/serial/source").get("path") == "/var/log/guests/web.log"
    cdrom = root.find("devices/disk[@device='cdrom']")
    assert cdrom.find("source").get("volume") == "web-seed.iso" and cdrom.find("target").get("bus") == "sata"
    volumes = [v.text for v in root.iter(f"{{{NS_URI}}}volume")]
    assert volumes == ["web-disk.qcow2", "web-seed.iso"]

    # A network instead, and text that needs escaping stays data
    settings = LibvirtSettings.from_config({**FAST_SETTINGS, "network": "default"})
    xml = domain_xml(make_spec(name="a'b<c>"), image, settings, name="n", disk="d", seed=None, hard_stop=1)
    root = ElementTree.fromstring(xml)
    assert root.find("devices/interface/source").get("network") == "default"
    assert root.findtext("title") == "a'b<c>"


def test_running_guest_reports_addresses_on_a_network(make_spec):
    driver = fast_driver(network="default")
    status = wait_done(driver, driver.create(make_spec()))
    assert status.vm.ip_addresses  # the test driver hands out 192.168.122.x leases
    delete_ours(driver)


def test_delete_removes_our_volumes_and_never_the_base(driver, make_spec):
    spec = make_spec()
    task = driver.create(spec)
    disk = f"{domain_name(spec)}-disk.qcow2"
    assert disk in _volumes(driver)
    wait_done(driver, driver.delete(task.backend_id))
    assert disk not in _volumes(driver) and FAST_BASE in _volumes(driver)
    assert driver.get(task.backend_id) is None


def test_create_redoes_an_attempt_interrupted_before_define(driver, make_spec):
    # Given a disk left by a create that died before defining the domain
    spec = make_spec()
    wait_done(driver, driver.create(spec))
    backend_id = driver.find_by_key(spec.idempotency_key).backend_id
    dom = driver.client.connection().lookupByUUIDString(backend_id)
    dom.destroy()
    dom.undefineFlags(0)
    assert f"{domain_name(spec)}-disk.qcow2" in _volumes(driver)
    # When the create runs again, then it succeeds with a fresh disk and one domain
    status = wait_done(driver, driver.create(spec))
    assert status.vm.power_state == PowerState.RUNNING
    assert [g.backend_id for g in driver.list_all() if g.idempotency_key == spec.idempotency_key] == [
        status.vm.backend_id
    ]


def test_a_foreign_domain_with_our_name_is_left_alone(driver, make_spec):
    spec = make_spec()
    name = domain_name(spec)
    conn = driver.client.connection()
    pool = conn.storagePoolLookupByName(FAST_POOL)
    pool.createXML(f"<volume><name>{name}-disk.qcow2</name><capacity>1024</capacity></volume>")
    conn.defineXML(f"<domain type='test'><name>{name}</name><memory>1024</memory><os><type>hvm</type></os></domain>")
    with pytest.raises(PermanentDriverError, match="already exists") as failure:
        driver.create(spec)
    assert failure.value.code == "name_taken"
    assert f"{name}-disk.qcow2" in _volumes(driver)  # its disk untouched
    conn.lookupByName(name).undefineFlags(0)
    pool.storageVolLookupByName(f"{name}-disk.qcow2").delete(0)


# -- stop, reboot ----------------------------------------------------------------------------------


@pytest.fixture
def deaf_guest(monkeypatch):
    """Guests that ignore ACPI shutdown (the press is lost); counts the presses."""
    presses = []
    monkeypatch.setattr(libvirt.virDomain, "shutdown", lambda self: presses.append(self.name()) or 0)
    return presses


def test_graceful_stop_resends_shutdown_then_powers_off_at_the_deadline(make_spec, deaf_guest, monkeypatch):
    driver = fast_driver(shutdown_retry_seconds=1)
    status = wait_done(driver, driver.create(make_spec(extra={"hard_stop_after_seconds": 5})))
    backend_id = status.vm.backend_id
    clock = [1_000_000.0]
    monkeypatch.setattr("workers.drivers.libvirt.driver.time.time", lambda: clock[0])

    # When a stop is submitted, one press is sent and the handle waits
    task = driver.stop(backend_id)
    assert not task.done and len(deaf_guest) == 1
    # Then each poll a retry interval later presses again and hands back a new handle
    clock[0] += 1.2
    status = driver.poll(task)
    assert not status.done and status.task is not None and len(deaf_guest) == 2
    assert status.poll_after == pytest.approx(1.0) and 0 < status.progress < 99
    task = status.task
    clock[0] += 0.3
    status = driver.poll(task)  # too soon to press again
    assert not status.done and status.task is None and len(deaf_guest) == 2
    # And past the plan's hard-stop time it powers off
    clock[0] += 4
    status = driver.poll(task)
    assert status.done and status.vm.power_state == PowerState.STOPPED
    assert "without a clean shutdown" in status.message
    delete_ours(driver)


def test_the_stop_callers_hard_stop_wins_and_zero_never_forces(make_spec, deaf_guest, monkeypatch):
    driver = fast_driver()
    status = wait_done(driver, driver.create(make_spec(extra={"hard_stop_after_seconds": 60})))
    task = driver.stop(status.vm.backend_id, hard_stop_after=0)
    assert task.data["deadline"] is None
    monkeypatch.setattr("workers.drivers.libvirt.driver.time.time", lambda: task.data["started_at"] + 10**6)
    status = driver.poll(task)
    assert not status.done and status.progress is None
    delete_ours(driver)


def test_reboot_repolled_after_the_restart_is_done(driver, make_spec):
    status = wait_done(driver, driver.create(make_spec()))
    task = driver.reboot(status.vm.backend_id)
    first = driver.poll(task)
    assert first.done and first.vm.power_state == PowerState.RUNNING
    # a worker that died after the restart polls the same handle again: no second reboot
    dom_id = driver.client.connection().lookupByUUIDString(status.vm.backend_id).ID()
    again = driver.poll(task)
    assert again.done and driver.client.connection().lookupByUUIDString(status.vm.backend_id).ID() == dom_id


def test_force_stop_and_reboot_of_a_stopped_guest(driver, make_spec):
    status = wait_done(driver, driver.create(make_spec()))
    task = driver.stop(status.vm.backend_id, force=True)
    assert task.done and driver.get(status.vm.backend_id).power_state == PowerState.STOPPED
    with pytest.raises(PermanentDriverError, match="not running"):
        driver.reboot(status.vm.backend_id)


# -- listing -----------------------------------------------------------------------------------------


def test_list_all_is_one_call_and_keys_are_read_once(driver, make_spec, monkeypatch):
    for _ in range(3):
        wait_done(driver, driver.create(make_spec()))
    calls = {"stats": 0, "metadata": 0}
    stats, metadata = libvirt.virConnect.getAllDomainStats, libvirt.virDomain.metadata

    def counting_stats(self, *args, **kwargs):
        calls["stats"] += 1
        return stats(self, *args, **kwargs)

    def counting_metadata(self, *args, **kwargs):
        calls["metadata"] += 1
        return metadata(self, *args, **kwargs)

    monkeypatch.setattr(libvirt.virConnect, "getAllDomainStats", counting_stats)
    monkeypatch.setattr(libvirt.virDomain, "metadata", counting_metadata)
    driver._instances.clear()
    first = driver.list_all()
    assert calls == {"stats": 1, "metadata": len(first)}
    second = driver.list_all()
    assert calls == {"stats": 2, "metadata": len(first)}  # keys are cached: one call per listing
    assert sum(1 for vm in second if vm.idempotency_key) >= 3


# -- errors --------------------------------------------------------------------------------------------


def test_missing_image_is_permanent_and_leaves_nothing(driver, make_spec):
    before = _volumes(driver)
    with pytest.raises(PermanentDriverError, match="'nope.qcow2' is not in storage pool") as failure:
        driver.create(make_spec(image_ref="nope.qcow2"))
    assert failure.value.code == "no_image" and _volumes(driver) == before


def test_missing_kernel_volume_is_permanent_and_cleans_up(driver, make_spec):
    before = _volumes(driver)
    with pytest.raises(PermanentDriverError) as failure:
        driver.create(make_spec(image_ref=f"{FAST_BASE}?kernel=no-such-kernel"))
    assert failure.value.code == "no_image" and _volumes(driver) == before


def test_missing_pool_is_permanent():
    driver = libvirt_driver("libvirt-nopool", FAST_SETTINGS, pool="no-such-pool")
    with pytest.raises(PermanentDriverError, match="'no-such-pool' does not exist") as failure:
        driver.check()
    assert failure.value.code == "no_pool"


def test_invalid_xml_is_permanent(driver):
    conn = driver.client.connection()
    with pytest.raises(libvirt.libvirtError) as raised:
        conn.defineXML("<domain type='test'><name>x</name>")
    error = translate(raised.value, "define x")
    assert isinstance(error, PermanentDriverError) and error.code == "invalid_xml"


def _libvirt_error(code: int, domain: int, message: str) -> libvirt.libvirtError:
    error = libvirt.libvirtError(message)
    error.err = (code, domain, message, libvirt.VIR_ERR_ERROR, None, None, None, 0, 0)
    return error


@pytest.mark.parametrize(
    ("code", "domain", "message", "kind", "mapped"),
    [
        (libvirt.VIR_ERR_OPERATION_TIMEOUT, libvirt.VIR_FROM_QEMU, "cannot acquire state change lock", "t", "timeout"),
        (libvirt.VIR_ERR_OPERATION_FAILED, libvirt.VIR_FROM_LOCKING, "Failed to acquire lock: busy", "t", "locked"),
        (libvirt.VIR_ERR_RESOURCE_BUSY, libvirt.VIR_FROM_QEMU, "resource busy", "t", "locked"),
        (
            libvirt.VIR_ERR_SYSTEM_ERROR,
            libvirt.VIR_FROM_RPC,
            "Cannot recv data: Connection reset",
            "t",
            "connection_lost",
        ),
        (libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_RPC, "client socket is closed", "t", "connection_lost"),
        (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_FROM_REMOTE, "no connection", "t", "connection_lost"),
        (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_FROM_NONE, "no connection driver available", "p", "no_driver"),
        (libvirt.VIR_ERR_XML_ERROR, libvirt.VIR_FROM_DOMAIN, "bad XML", "p", "invalid_xml"),
        (libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_FROM_STORAGE, "no vol", "p", "no_image"),
        (libvirt.VIR_ERR_AUTH_FAILED, libvirt.VIR_FROM_RPC, "authentication failed", "p", "auth_failed"),
        (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_STORAGE, "Permission denied", "p", "libvirt_38"),
    ],
)
def test_error_mapping(code, domain, message, kind, mapped):
    error = translate(_libvirt_error(code, domain, message), "do it")
    assert isinstance(error, TransientDriverError if kind == "t" else PermanentDriverError)
    assert error.code == mapped and message in error.message


def test_unreachable_daemon_is_transient_never_gone(make_spec):
    driver = libvirt_driver("libvirt-down", FAST_SETTINGS, uri="qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    with pytest.raises(TransientDriverError) as failure:
        driver.get(str(uuid.uuid4()))
    assert failure.value.code == "connection_lost" and "/nonexistent/libvirt-sock" in failure.value.message
    with pytest.raises(TransientDriverError):
        driver.list_all()


def test_a_lost_connection_is_reopened(driver, make_spec):
    status = wait_done(driver, driver.create(make_spec()))
    keep_state = libvirt.open("test:///default")  # the test driver forgets everything when all close
    try:
        driver.client.connection().close()  # behind the driver's back
        assert driver.get(status.vm.backend_id).power_state == PowerState.RUNNING
    finally:
        keep_state.close()


def test_libvirt_errors_go_to_logging_not_stderr(driver, capfd, caplog):
    conn = driver.client.connection()
    with caplog.at_level(logging.DEBUG, logger="workers.drivers.libvirt.client"):
        assert driver.get(str(uuid.uuid4())) is None
    assert "Domain not found" in caplog.text
    assert "libvirt: Test Driver error" not in capfd.readouterr().err  # libvirt's own stderr format
    # the control: without the handler, libvirt writes the same error to stderr
    from workers.drivers.libvirt import client

    libvirt.registerErrorHandler(None, None)
    try:
        with pytest.raises(libvirt.libvirtError):
            conn.lookupByUUIDString(str(uuid.uuid4()))
        assert "libvirt: Test Driver error : Domain not found" in capfd.readouterr().err
    finally:
        libvirt.registerErrorHandler(client._log_libvirt_error, None)


# -- settings and image references ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connection", "message"),
    [
        ({"pool": "x"}, "needs settings.uri"),
        ({"uri": "test:///default", "pol": "x"}, "Unknown libvirt settings: pol"),
        ({"uri": "test:///default", "disk_mode": "thin"}, "disk_mode must be one of overlay, copy"),
        ({"uri": "test:///default", "network": "default", "bridge": "br0"}, "either libvirt network or bridge"),
        ({"uri": "test:///default", "cloud_init": "maybe"}, "cloud_init must be true or false"),
        ({"uri": "test:///default", "shutdown_timeout": "soon"}, "must be numbers"),
    ],
)
def test_bad_settings_are_refused(connection, message):
    with pytest.raises(PermanentDriverError, match=message) as failure:
        libvirt_driver("libvirt-bad", connection)
    assert failure.value.code == "misconfigured"


def test_image_reference_syntax():
    assert ImageRef.parse("debian-12.qcow2") == ImageRef(volume="debian-12.qcow2")
    ref = ImageRef.parse("tiny.qcow2?kernel=vmlinuz&initrd=/srv/initrd.img&cmdline=console=ttyS0+quiet&cloud_init=0")
    assert (ref.volume, ref.kernel, ref.initrd) == ("tiny.qcow2", "vmlinuz", "/srv/initrd.img")
    assert ref.cmdline == "console=ttyS0 quiet" and ref.cloud_init is False
    for bad in ("", "?kernel=x", "a.qcow2?colour=red", "a.qcow2?initrd=x", "a.qcow2?firmware=uefi"):
        with pytest.raises(PermanentDriverError):
            ImageRef.parse(bad)


# -- cloud-init seed -----------------------------------------------------------------------------------


def test_nocloud_seed_iso_contents():
    files = nocloud_files(
        instance_id="key-1", hostname="web-1", ssh_public_key="ssh-ed25519 AAAAC3 me@laptop", user_data=""
    )
    label, read = iso_files(build_iso(files))
    assert label == "cidata" and set(read) == {"meta-data", "user-data", "network-config"}
    assert b'"instance-id": "key-1"' in read["meta-data"] and b'"local-hostname": "web-1"' in read["meta-data"]
    assert read["user-data"].startswith(b"#cloud-config\n") and b"ssh-ed25519 AAAAC3 me@laptop" in read["user-data"]
    assert b'"dhcp4": true' in read["network-config"]


def test_seed_with_user_data_is_multipart_keeping_both():
    files = nocloud_files(instance_id="k", hostname="h", ssh_public_key="ssh-rsa AAA", user_data="#!/bin/sh\necho hi\n")
    user_data = files["user-data"].decode()
    assert user_data.startswith("Content-Type: multipart/mixed")
    assert "text/cloud-config" in user_data and "ssh-rsa AAA" in user_data and "#!/bin/sh\necho hi" in user_data


def test_seed_is_only_made_when_enabled_and_needed(make_spec):
    off = LibvirtSettings.from_config(FAST_SETTINGS)
    on = LibvirtSettings.from_config({**FAST_SETTINGS, "cloud_init": "true"})
    with_key, image = make_spec(ssh_public_key="ssh-ed25519 AAA"), ImageRef.parse(FAST_BASE)
    assert not wants_seed(with_key, image, off)
    assert wants_seed(with_key, image, on)
    assert not wants_seed(make_spec(), image, on)  # nothing to seed
    assert not wants_seed(with_key, ImageRef.parse(f"{FAST_BASE}?cloud_init=0"), on)
