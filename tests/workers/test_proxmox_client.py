"""The Proxmox client's error mapping: what is worth retrying and what is not, against fakepve."""

import socket

import pytest

from tests.fakepve_server import TOKEN_ID
from tests.workers.contract import wait_done
from workers.drivers.base import PermanentDriverError, TransientDriverError
from workers.drivers.proxmox.client import Code, ProxmoxClient, classify


@pytest.fixture
def client(pve, proxmox_config):
    def make(settings=None, creds=None) -> ProxmoxClient:
        config = proxmox_config(settings, creds)
        return ProxmoxClient(config.settings, config.credentials, name=config.name)

    return make


@pytest.mark.parametrize(
    "message, code, transient",
    [
        ("can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout", Code.LOCK_TIMEOUT, True),
        ("cluster not ready - no quorum?", Code.NO_QUORUM, True),
        ("VM quit/powerdown failed - got timeout", Code.TIMEOUT, True),
        ("VM is locked (backup)", Code.LOCKED, True),
        ("unable to create VM 101: config file already exists", Code.VMID_TAKEN, False),
        ("CT 101 already exists on node 'pve1'", Code.VMID_TAKEN, False),
        ("Configuration file 'nodes/pve1/qemu-server/7.conf' does not exist", Code.NOT_FOUND, False),
        ("VM 100 not running", Code.NOT_RUNNING, False),
        ("VM 100 already running", Code.ALREADY_RUNNING, False),
        ("QEMU exited with code 1", Code.TASK_FAILED, False),
    ],
)
def test_task_messages_are_classified(message, code, transient):
    assert classify(message) == (code, transient)


def test_unknown_5xx_is_transient_but_an_unknown_task_error_is_not():
    assert classify("proxy loop detected", 500) == (Code.SERVER_ERROR, True)
    assert classify("proxy loop detected") == (Code.TASK_FAILED, False)


def test_validation_error_is_permanent_with_the_parameter_message(pve, proxmox_driver, proxmox_spec):
    # A plan with 0 vCPUs: the clone works, Proxmox's schema refuses the config step
    driver = proxmox_driver()
    task = driver.create(proxmox_spec(vcpus=0))
    with pytest.raises(PermanentDriverError) as raised:
        wait_done(driver, task)
    assert raised.value.code == Code.INVALID
    assert raised.value.message == (
        "Proxmox rejected the request: Parameter verification failed: cores: value must have a minimum value of 1"
    )


def test_5xx_and_proxy_pages_are_transient(client, pve):
    pve.fail("GET", "/cluster/resources", 500, "proxy loop detected", times=1)
    with pytest.raises(TransientDriverError, match="proxy loop detected") as raised:
        client().get("cluster/resources", type="vm")
    assert raised.value.code == Code.SERVER_ERROR
    pve.fail("GET", "/version", 502, "<html><body>Bad Gateway</body></html>", html=True, times=1)
    with pytest.raises(TransientDriverError):
        client().get("version")
    assert client().get("version")["version"] == "9.0.10"


def test_got_timeout_answer_is_transient(client, pve):
    pve.fail("POST", "/nodes/pve1/qemu/9000/config", error="config_lock_timeout", times=1)
    with pytest.raises(TransientDriverError, match="got timeout") as raised:
        client().post("nodes/pve1/qemu/9000/config", cores=2)
    assert raised.value.code == Code.LOCK_TIMEOUT


def test_unreachable_and_slow_are_transient(client, pve):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with pytest.raises(TransientDriverError) as raised:
        client({"port": closed_port}).get("version")
    assert raised.value.code == Code.UNREACHABLE

    pve.flaky_network(hang_rate=1.0, hang_secs=1)
    with pytest.raises(TransientDriverError, match="did not answer within 0.2s") as raised:
        client({"timeout": 0.2}).get("version")
    assert raised.value.code == Code.TIMEOUT
    pve.flaky_network()


def test_tls_is_verified_by_default(client):
    # Without the CA bundle, fakepve's self-signed certificate is refused: a permanent, explained error
    with pytest.raises(PermanentDriverError, match="set settings.ca_bundle") as raised:
        client({"ca_bundle": None}).get("version")
    assert raised.value.code == Code.TLS


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verification_can_only_be_turned_off_explicitly(client, caplog):
    insecure = client({"ca_bundle": None, "verify_ssl": "false"})
    assert insecure.get("version")["version"] == "9.0.10" and insecure.tls_verified is False
    assert "TLS verification is OFF" in caplog.text


def test_bad_credentials_are_permanent(client):
    with pytest.raises(PermanentDriverError, match="refused the credentials") as raised:
        client(creds={"token_id": TOKEN_ID, "token_secret": "wrong"}).get("version")
    assert raised.value.code == Code.AUTH
    with pytest.raises(PermanentDriverError, match="refused the login") as raised:
        client(creds={"user": "root@pam", "password": "wrong"}).get("version")
    assert raised.value.code == Code.AUTH
    assert client(creds={"user": "root@pam", "password": "secret"}).get("version")["version"] == "9.0.10"


def test_missing_privilege_is_permanent(client, pve):
    pve.grant(TOKEN_ID, "/vms", "VM.Audit")
    with pytest.raises(PermanentDriverError, match="lacks a privilege") as raised:
        client().post("nodes/pve1/qemu/9000/status/start")
    assert raised.value.code == Code.FORBIDDEN


@pytest.mark.parametrize(
    "creds, message",
    [
        ({"token_id": "controlplane@pve", "token_secret": "x"}, "user@realm!tokenid"),
        ({"user": "root@pam"}, r"token_id \+ token_secret, or user \+ password"),
    ],
)
def test_incomplete_credentials_are_reported_before_connecting(client, creds, message):
    with pytest.raises(PermanentDriverError, match=message) as raised:
        client(creds=creds)
    assert raised.value.code == Code.MISCONFIGURED
