"""Client address (trusted proxies only), user agent and request id on recorded events."""

import re

import pytest
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

import audit
from audit import request_meta
from audit.middleware import RequestIDMiddleware

PROXIES = ["10.0.0.0/8", "fd00::/8"]


def _request(remote="203.0.113.9", forwarded=None, request_id=None, agent="pytest-agent/1.0"):
    headers = {"REMOTE_ADDR": remote, "HTTP_USER_AGENT": agent}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    if request_id is not None:
        headers["HTTP_X_REQUEST_ID"] = request_id
    return RequestFactory().get("/", **headers)


def _through_middleware(request):
    response = RequestIDMiddleware(lambda req: HttpResponse("ok"))(request)
    return request, response


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        # No trusted proxy in front: X-Forwarded-For is whatever the client wrote, ignored.
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        # Through a trusted proxy: the hop it saw.
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
        # Client-written entries left of the first untrusted hop are not believed.
        ("10.0.0.5", "1.2.3.4, 198.51.100.1, 10.2.2.2", "198.51.100.1"),
        # Every hop trusted: the leftmost is the client.
        ("10.0.0.5", "10.9.9.9, 10.2.2.2", "10.9.9.9"),
        # Garbage stops the walk at the last good hop.
        ("10.0.0.5", "198.51.100.1, not-an-ip", "10.0.0.5"),
        # No header at all from a proxy: the proxy's address.
        ("10.0.0.5", None, "10.0.0.5"),
        # IPv6 proxy, IPv4-mapped remote address.
        ("fd00::1", "2001:db8::7", "2001:db8::7"),
        ("::ffff:203.0.113.9", "198.51.100.1", "203.0.113.9"),
    ],
)
@override_settings(AUDIT_TRUSTED_PROXIES=PROXIES)
def test_client_ip_believes_only_trusted_proxies(remote, forwarded, expected):
    assert request_meta.client_ip(_request(remote=remote, forwarded=forwarded)) == expected


@override_settings(AUDIT_TRUSTED_PROXIES=[])
def test_without_trusted_proxies_forwarded_for_is_ignored():
    assert request_meta.client_ip(_request(remote="10.0.0.5", forwarded="198.51.100.1")) == "10.0.0.5"


@override_settings(AUDIT_TRUSTED_PROXIES=PROXIES)
def test_event_records_client_ip_user_agent_and_request_id_behind_a_trusted_proxy(user):
    # Given a request that came through nginx, which set the request id
    request, response = _through_middleware(
        _request(remote="10.0.0.5", forwarded="198.51.100.23", request_id="nginx-abc123")
    )
    request.user = user

    # When a service records with the request
    event = audit.record(actor=user, action="auth.login.succeeded", request=request)

    # Then the event holds the client, its agent and the proxy's request id, which the response echoes
    event.refresh_from_db()
    assert (event.ip_address, event.user_agent, event.request_id) == (
        "198.51.100.23",
        "pytest-agent/1.0",
        "nginx-abc123",
    )
    assert response["X-Request-ID"] == "nginx-abc123"


@override_settings(AUDIT_TRUSTED_PROXIES=PROXIES)
def test_an_untrusted_client_cannot_choose_its_ip_or_request_id(user):
    request, response = _through_middleware(
        _request(remote="203.0.113.9", forwarded="198.51.100.23", request_id="chosen-by-client")
    )

    event = audit.record(actor=user, action="auth.login.failed", request=request)

    assert event.ip_address == "203.0.113.9"
    assert event.request_id != "chosen-by-client" and re.fullmatch(r"[0-9a-f]{32}", event.request_id)
    assert response["X-Request-ID"] == event.request_id


@override_settings(AUDIT_TRUSTED_PROXIES=PROXIES)
def test_a_malformed_request_id_from_the_proxy_is_replaced():
    request, _ = _through_middleware(_request(remote="10.0.0.5", request_id="bad id\nwith newline"))
    assert re.fullmatch(r"[0-9a-f]{32}", request.request_id)


def test_user_agent_loses_control_characters_and_is_capped():
    assert request_meta.user_agent(_request(agent="a\x00b\x07c" + "x" * 400)) == "abc" + "x" * 297


def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_without_a_request_there_is_no_request_metadata(db):
    event = audit.record(actor="scheduler", action="drift.detected")
    assert (event.ip_address, event.user_agent, event.request_id) == ("", "", "")
