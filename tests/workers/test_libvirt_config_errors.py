"""libvirt: a connection that can never work is a configuration error (permanent, not retried);
one that cannot work *now* is an outage (transient). libvirt's real client decides both locally,
without a daemon: the URI's transport is parsed and the TLS files are read before any connect."""

import uuid

import pytest

from tests.workers.libvirt_support import FAST_SETTINGS, libvirt_driver
from workers.drivers.base import PermanentDriverError, TransientDriverError


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("qemu+sssh://kvm1.example/system", "transport in URL not recognised"),
        ("qemu+tls://127.0.0.1/system?pkipath={pki}", "Cannot read CA certificate '{pki}/cacert.pem'"),
    ],
)
def test_a_misspelt_transport_or_missing_tls_ca_is_permanent(tmp_path, uri, says):
    pki = tmp_path / "pki-without-files"
    pki.mkdir()
    driver = libvirt_driver(f"libvirt-misconfigured-{uuid.uuid4().hex[:6]}", FAST_SETTINGS, uri=uri.format(pki=pki))

    with pytest.raises(PermanentDriverError) as failure:
        driver.get(str(uuid.uuid4()))
    assert failure.value.code == "misconfigured"
    assert says.format(pki=pki) in failure.value.message


def test_a_daemon_that_does_not_answer_is_still_transient():
    driver = libvirt_driver("libvirt-refused", FAST_SETTINGS, uri="qemu+tcp://127.0.0.1:1/system")

    with pytest.raises(TransientDriverError) as failure:
        driver.get(str(uuid.uuid4()))
    assert failure.value.code == "connection_lost"
