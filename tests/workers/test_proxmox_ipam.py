"""Pool addresses reach Proxmox guests (fakepve): QEMU cloud-init ``ipconfig0`` + ``nameserver``,
LXC ``net0 ip=/ip6=`` at creation from an OS template and on a cloned container."""

from tests.fakepve_server import OSTEMPLATE
from tests.workers.contract import wait_done

NETWORK = {
    "ipv4": {"address": "192.0.2.7", "prefix_length": 24, "gateway": "192.0.2.1"},
    "ipv6": {"address": "2001:db8:10::7", "prefix_length": 64, "gateway": "2001:db8:10::1"},
    "dns": ["192.0.2.53", "2001:db8::53"],
    "network": "vmbr2",
}

WANTED_NET0 = ("192.0.2.7/24", "192.0.2.1", "2001:db8:10::7/64", "2001:db8:10::1", "vmbr2")


def _net0(config) -> tuple:
    net0 = dict(part.split("=", 1) for part in config["net0"].split(","))
    return (net0["ip"], net0["gw"], net0["ip6"], net0["gw6"], net0["bridge"])


def test_a_qemu_guest_gets_its_pool_address_through_cloud_init(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver(ci_user="debian")
    vm = wait_done(driver, driver.create(proxmox_spec(network=NETWORK))).vm
    config = pve.vm(int(vm.backend_id)).config
    assert config["ipconfig0"] == "ip=192.0.2.7/24,gw=192.0.2.1,ip6=2001:db8:10::7/64,gw6=2001:db8:10::1"
    assert config["nameserver"] == "192.0.2.53 2001:db8::53"
    assert config["net0"].endswith(",bridge=vmbr2")
    assert vm.ip_addresses == ("192.0.2.7", "2001:db8:10::7")


def test_without_a_pool_the_hypervisors_own_setting_applies(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    vm = wait_done(driver, driver.create(proxmox_spec())).vm
    config = pve.vm(int(vm.backend_id)).config
    assert config["ipconfig0"] == "ip=dhcp" and "nameserver" not in config


def test_a_cloned_container_gets_its_pool_address_on_net0(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    vm = wait_done(driver, driver.create(proxmox_spec(guest_type="container", network=NETWORK))).vm
    config = pve.ct(int(vm.backend_id)).config
    assert _net0(config) == WANTED_NET0
    assert config["nameserver"] == "192.0.2.53 2001:db8::53"


def test_a_container_from_an_os_template_is_created_with_its_pool_address(pve, proxmox_driver, proxmox_spec):
    driver = proxmox_driver()
    spec = proxmox_spec(guest_type="container", image_ref=OSTEMPLATE, network=NETWORK)
    vm = wait_done(driver, driver.create(spec)).vm
    config = pve.ct(int(vm.backend_id)).config
    assert _net0(config) == WANTED_NET0
    assert config["nameserver"] == "192.0.2.53 2001:db8::53"
    assert vm.ip_addresses == ("192.0.2.7", "2001:db8:10::7")
