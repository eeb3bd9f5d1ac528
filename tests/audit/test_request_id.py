"""One request id per web request, the same in the response, the logs and the audit log.

Requests go through the whole middleware stack in settings order (Django's
test client); the id is read back from the ``X-Request-ID`` header, from the
log records emitted while the request ran (through the ``ContextFilter`` the
console handler uses) and from the audit event the request wrote.
"""

import logging
import re

import pytest
from django.conf import settings
from django.test import override_settings

from audit.models import AuditEvent
from controlplane.logging import ContextFilter, context
from tests.fixtures.accounts import PASSWORD

PROXIES = ["10.0.0.0/8"]
FRESH = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def log_records():
    """Every record logged during the test, with the context the console handler would add."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Collect(level=logging.DEBUG)
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield records
    root.removeHandler(handler)


def _failed_login(client, user, **headers):
    """A wrong password at the portal's login: allauth answers, axes logs, audit records auth.login.failed."""
    return client.post("/accounts/login/", {"login": user.email, "password": PASSWORD + "-wrong"}, **headers)


def _ids_everywhere(response, records) -> set:
    event = AuditEvent.objects.get(action="auth.login.failed")
    logged = {getattr(record, "request_id", None) for record in records}
    assert records, "the request logged nothing: the log side of the test would prove nothing"
    return {response["X-Request-ID"], event.request_id} | logged


@override_settings(AUDIT_TRUSTED_PROXIES=PROXIES)
def test_an_untrusted_clients_id_is_replaced_by_one_fresh_id_everywhere(client, user, log_records):
    # Given a client outside the trusted proxies that chose its own id
    response = _failed_login(client, user, REMOTE_ADDR="203.0.113.9", HTTP_X_REQUEST_ID="chosen-by-client")

    # Then the response, every log line of the request and the audit event carry one fresh id
    ids = _ids_everywhere(response, log_records)
    assert len(ids) == 1 and FRESH.fullmatch(ids.pop())
    assert context() == {}


@override_settings(AUDIT_TRUSTED_PROXIES=PROXIES)
def test_a_trusted_proxys_id_is_kept_everywhere(client, user, log_records):
    response = _failed_login(client, user, REMOTE_ADDR="10.0.0.5", HTTP_X_REQUEST_ID="nginx-abc123")
    assert _ids_everywhere(response, log_records) == {"nginx-abc123"}


@pytest.mark.parametrize(
    "junk",
    ["bad id\nwith newline", "evil\tvalue with spaces", "x" * 65, 'quote"d', "semi;colon", "ünïcode"],
)
@override_settings(AUDIT_TRUSTED_PROXIES=PROXIES)
def test_a_malformed_id_even_from_a_trusted_proxy_is_replaced_everywhere(client, user, log_records, junk):
    response = _failed_login(client, user, REMOTE_ADDR="10.0.0.5", HTTP_X_REQUEST_ID=junk)
    ids = _ids_everywhere(response, log_records)
    assert len(ids) == 1 and FRESH.fullmatch(ids.pop())


@override_settings(AUDIT_TRUSTED_PROXIES=PROXIES)
def test_djangos_line_for_a_refused_api_call_carries_the_id_too(client, log_records):
    # Django logs "Unauthorized: /api/..." after the middleware returned; the record's request supplies the id
    response = client.get("/api/v1/projects/", REMOTE_ADDR="10.0.0.5", HTTP_X_REQUEST_ID="nginx-4xx")
    assert response.status_code in (401, 403)
    refused = [r for r in log_records if r.name == "django.request" and "/api/v1/projects/" in r.getMessage()]
    assert refused and {r.request_id for r in refused} == {"nginx-4xx"}


def test_one_request_id_middleware_and_it_is_first():
    assert [m for m in settings.MIDDLEWARE if "requestid" in m.lower()] == ["audit.middleware.RequestIDMiddleware"]
    assert settings.MIDDLEWARE[0] == "audit.middleware.RequestIDMiddleware"
