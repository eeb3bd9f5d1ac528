"""The OpenStack driver's settings, connections and error mapping, on openstacksdk's
ConnectionFixture behind requests-mock (fast tier)."""

import json

import pytest
import requests
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as os_exc

from tests.fixtures.openstack import COMPUTE, IDENTITY, QUIET_SDK
from workers.drivers.base import HypervisorConfig, PermanentDriverError, TransientDriverError, get_driver
from workers.drivers.openstack.client import Code, driver_error
from workers.drivers.openstack.settings import OpenStackSettings

pytestmark = QUIET_SDK


def token_requests(cloud) -> list[dict]:
    return [json.loads(call.body)["auth"] for call in cloud.calls("POST", "/v3/auth/tokens")]


# -- settings ------------------------------------------------------------------------------


def test_clouds_yaml_settings_and_credentials_make_one_login():
    settings = OpenStackSettings.from_config(
        "os-1",
        {
            "auth": {"auth_url": IDENTITY, "project_name": "admin", "user_domain_name": "Default", "password": "x"},
            "region_name": "RegionTwo",
            "interface": "internal",
            "cacert": "/etc/ssl/cloud-ca.pem",
            "network_endpoint_override": "https://neutron.internal:9696",
            "flavors": {"small": "m1.small"},
        },
        {"username": "controlplane", "password": "s3cret"},
    )
    # the password comes from the (encrypted) credentials, never from the plain settings
    assert settings.auth_type == "password"
    assert settings.auth == {
        "auth_url": IDENTITY,
        "project_name": "admin",
        "user_domain_name": "Default",
        "username": "controlplane",
        "password": "s3cret",
    }
    assert settings.cloud == {
        "region_name": "RegionTwo",
        "interface": "internal",
        "cacert": "/etc/ssl/cloud-ca.pem",
        "network_endpoint_override": "https://neutron.internal:9696",
    }
    assert settings.flavors == {"small": "m1.small"} and settings.tenant_projects == "create"


@pytest.mark.parametrize(
    "values, credentials, message",
    [
        ({}, {"username": "u", "password": "p"}, "auth.auth_url is required"),
        ({"auth": {"auth_url": IDENTITY}}, {"username": "u"}, "need username and password"),
        ({"auth_type": "token", "auth": {"auth_url": IDENTITY}}, {}, "auth_type must be one of"),
        ({"auth_type": "none"}, {}, "needs compute_endpoint_override"),
        (
            {"auth": {"auth_url": IDENTITY}},
            {"application_credential_id": "ac", "application_credential_secret": "s"},
            "application credentials are bound to one project",
        ),
        ({"auth": {"auth_url": IDENTITY}, "tenant_projects": "some"}, {"username": "u", "password": "p"}, "create or"),
        ({"auth": {"auth_url": IDENTITY}, "poll_seconds": "soon"}, {"username": "u", "password": "p"}, "invalid"),
    ],
)
def test_misconfigured_settings_fail_with_the_reason(values, credentials, message):
    with pytest.raises(PermanentDriverError, match=message) as raised:
        OpenStackSettings.from_config("os-1", values, credentials)
    assert raised.value.code == Code.MISCONFIGURED


def test_application_credentials_work_with_a_shared_project(fake_cloud, openstack_driver):
    driver = openstack_driver(
        credentials={"application_credential_id": "ac-1", "application_credential_secret": "s"},
        tenant_projects="shared",
    )
    assert driver.settings.auth_type == "v3applicationcredential"
    driver.client.own_project_id()
    [auth] = token_requests(fake_cloud)
    assert auth["identity"] == {
        "methods": ["application_credential"],
        "application_credential": {"id": "ac-1", "secret": "s"},
    }


# -- connections ---------------------------------------------------------------------------


def test_one_connection_per_process_and_one_per_tenant_project(fake_cloud, openstack_driver):
    fake_cloud.mock.get(f"{COMPUTE}/servers/detail", json={"servers": []})
    fake_cloud.mock.get(f"{COMPUTE}/os-keypairs/cp-x", status_code=404)
    driver = openstack_driver()

    # Many calls through the login's connection authenticate once
    for _ in range(3):
        driver.list_all()
    assert len(token_requests(fake_cloud)) == 1
    assert driver.client.for_project(None) is driver.client.conn

    # A tenant's project gets its own connection, scoped by id, also made once
    scoped = driver.client.for_project("tenant-project")
    assert driver.client.for_project("tenant-project") is scoped
    scoped.compute.get_endpoint_data()
    auths = token_requests(fake_cloud)
    assert len(auths) == 2
    assert auths[0]["scope"] == {"project": {"name": "admin", "domain": {"name": "Default"}}}
    assert auths[1]["scope"] == {"project": {"id": "tenant-project"}}
    assert auths[1]["identity"]["password"]["user"] == {
        "name": "controlplane",
        "password": "s3cret",
        "domain": {"name": "Default"},
    }


def test_the_worker_keeps_one_driver_per_configuration(fake_cloud):
    config = fake_cloud.config()
    assert get_driver(config) is get_driver(HypervisorConfig(**vars(config)))
    rotated = fake_cloud.config(credentials={"username": "controlplane", "password": "rotated"})
    assert get_driver(rotated) is not get_driver(config)


# -- error mapping ---------------------------------------------------------------------------


def nova_error(status: int, kind: str, message: str) -> dict:
    return {"status_code": status, "json": {kind: {"code": status, "message": message}}}


@pytest.mark.parametrize(
    "response, error, code, text",
    [
        (nova_error(503, "computeFault", "Service Unavailable"), TransientDriverError, Code.SERVER_ERROR, "HTTP 503"),
        (nova_error(500, "computeFault", "Unexpected API Error."), TransientDriverError, Code.SERVER_ERROR, "500"),
        (
            nova_error(409, "conflictingRequest", "Cannot 'stop' instance while it is in task_state powering-off"),
            TransientDriverError,
            Code.BUSY,
            "task_state powering-off",
        ),
        ({"status_code": 429, "text": "slow down"}, TransientDriverError, Code.RATE_LIMITED, "slow down"),
        (
            nova_error(403, "forbidden", "Quota exceeded for instances: Requested 1, but already used 10 of 10"),
            PermanentDriverError,
            Code.QUOTA,
            "OpenStack quota exceeded: Quota exceeded for instances: Requested 1, but already used 10 of 10",
        ),
        (
            nova_error(413, "overLimit", "Quota exceeded for cores: Requested 8, but already used 18 of 20 cores"),
            PermanentDriverError,
            Code.QUOTA,
            "Quota exceeded for cores",
        ),
        (nova_error(400, "badRequest", "Can not find requested image"), PermanentDriverError, Code.INVALID, "image"),
        (
            nova_error(400, "badRequest", "Network 3cb9 could not be found."),
            PermanentDriverError,
            Code.INVALID,
            "Network 3cb9 could not be found.",
        ),
        (nova_error(403, "forbidden", "Policy doesn't allow"), PermanentDriverError, Code.FORBIDDEN, "role"),
        (nova_error(401, "unauthorized", "The request you have made requires authentication."), None, Code.AUTH, ""),
        ({"exc": requests.exceptions.ConnectionError("refused")}, TransientDriverError, Code.UNREACHABLE, "reach"),
        ({"exc": requests.exceptions.ConnectTimeout("slow")}, TransientDriverError, Code.TIMEOUT, "in time"),
    ],
)
def test_compute_errors_are_typed(fake_cloud, openstack_driver, openstack_spec, response, error, code, text):
    # Given a cloud that answers the server create like this
    fake_cloud.flavors(("2", "m1.small", 1, 2048, 20))
    fake_cloud.mock.get(f"{COMPUTE}/servers/detail", json={"servers": []})
    fake_cloud.mock.get(f"{COMPUTE}/os-keypairs/", status_code=200)
    fake_cloud.mock.post(f"{COMPUTE}/servers", **response)
    driver = openstack_driver()
    driver._keypair = lambda conn, key: "cp-key"

    # When the driver creates a server, the error is typed: retry or fail with the message
    with pytest.raises(error or PermanentDriverError) as raised:
        driver.create(openstack_spec())
    assert raised.value.code == code
    assert text in raised.value.message


def test_the_login_refused_is_permanent(fake_cloud, openstack_driver):
    fake_cloud.mock.post(f"{IDENTITY}/v3/auth/tokens", status_code=401, json={"error": {"message": "bad password"}})
    with pytest.raises(PermanentDriverError) as raised:
        openstack_driver().list_all()
    assert raised.value.code == Code.AUTH and "refused the credentials" in raised.value.message


def test_keystone_down_is_transient(fake_cloud, openstack_driver):
    fake_cloud.mock.post(f"{IDENTITY}/v3/auth/tokens", exc=requests.exceptions.ConnectionError("connection refused"))
    with pytest.raises(TransientDriverError) as raised:
        openstack_driver().list_all()
    assert raised.value.code == Code.UNREACHABLE


@pytest.mark.parametrize(
    "exc, cls, code",
    [
        (ks_exc.SSLError("certificate verify failed"), PermanentDriverError, Code.TLS),
        (ks_exc.EndpointNotFound("network"), PermanentDriverError, Code.NO_SERVICE),
        (os_exc.ServiceDisabledException("network"), PermanentDriverError, Code.NO_SERVICE),
        (ks_exc.DiscoveryFailure("no version"), TransientDriverError, Code.UNREACHABLE),
        (ks_exc.MissingRequiredOptions([]), PermanentDriverError, Code.MISCONFIGURED),
        (RuntimeError("surprise"), TransientDriverError, "driver_error"),
    ],
)
def test_library_exceptions_are_typed(exc, cls, code):
    error = driver_error(exc, "listing servers")
    assert isinstance(error, cls) and error.code == code
    assert "listing servers" in error.message
