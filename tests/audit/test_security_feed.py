"""The operators' security feed: severity from the action, the live admin page, the
staff API, brute-force detection with alert mail, and the SIEM export formats."""

import io
import json
import re

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client, RequestFactory

import audit
from accounts import services as account_services
from audit import detection
from audit.models import AuditEvent
from audit.severity import SEVERITY, Severity, severity_of
from audit.tasks import detect_brute_force
from tests.fixtures.accounts import login_operator
from tests.fixtures.factories import UserFactory

# RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
SYSLOG_RE = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z) (?P<host>[!-~]{1,255}) controlplane - "
    r"(?P<msgid>[!-~]{1,32}) \[cp@32473(?P<params>( [a-z_]+=\"([^\"\\\]]|\\.)*\")+)\] (?P<msg>.*)$"
)


@pytest.fixture
def operator(db):
    return UserFactory(is_staff=True, is_superuser=True, email="ops@example.com")


def _failed_login(login: str, ip: str, reason: str = "credentials"):
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR=ip, HTTP_USER_AGENT="curl/8")
    request.request_id = f"req-{ip}"
    account_services.login_failure_record(identifier=login, reason=reason, request=request)


def test_severity_is_a_table_of_known_actions():
    assert all(action in audit.choices.ACTION_NAMES for action in SEVERITY)
    assert severity_of("auth.login.failed") == Severity.WARNING
    assert severity_of("security.alert") == Severity.CRITICAL
    assert severity_of("console.session.opened") == Severity.INFO  # a family named by another app
    assert severity_of("vm.create.requested") is None  # not a security event


@pytest.mark.django_db
def test_the_feed_page_lists_filters_and_polls(operator):
    user = UserFactory()
    _failed_login(user.email, "198.51.100.7")
    audit.record(actor=operator, action="user.privileges_changed", target=user, details={"is_staff": [False, True]})
    audit.record(actor=user, action="vm.create.requested")  # not a security event
    client = login_operator(Client(), operator)
    page = client.get("/admin/security/")
    assert page.status_code == 200
    html = page.content.decode().split('<div id="security-events"')[1]  # the table, not the filter form
    assert "Login failed" in html and "Privileges changed" in html and "VM create requested" not in html
    assert 'hx-trigger="every 5s"' in html and "198.51.100.7" in html
    # Filtered to critical: the failed login is gone
    html = client.get("/admin/security/?severity=critical").content.decode().split('<div id="security-events"')[1]
    assert "Privileges changed" in html and "Login failed" not in html
    # The poll answers only the table
    partial = client.get("/admin/security/?ip=198.51.", HTTP_HX_REQUEST="true").content.decode()
    assert partial.startswith('<div id="security-events"') and "Login failed" in partial
    assert "Privileges changed" not in partial


@pytest.mark.django_db
def test_the_feed_is_for_verified_operators_only(user, operator):
    plain = Client()
    plain.force_login(user)
    assert plain.get("/admin/security/")["Location"].startswith("/admin/login/")
    unverified = Client()
    unverified.force_login(operator)  # staff, but no code entered
    assert unverified.get("/admin/security/")["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_the_staff_api_lists_security_events_with_severity(user, operator):
    _failed_login("someone@example.com", "192.0.2.1", reason="locked_out")
    client = login_operator(Client(), operator)
    body = client.get("/api/v1/security-events/?severity=warning").json()
    assert [(e["action"], e["severity"]) for e in body["results"]] == [("auth.login.failed", "warning")]
    assert body["results"][0]["details"]["reason"] == "locked_out"
    assert client.get("/api/v1/security-events/?severity=loud").status_code == 400
    assert client.get("/api/v1/security-events/?action=vm.create.requested").status_code == 400
    ordinary = Client()
    ordinary.force_login(user)
    assert ordinary.get("/api/v1/security-events/").status_code == 403


@pytest.mark.django_db
def test_many_failures_from_one_address_raise_one_alert_and_mail_the_operators(
    operator, settings, django_capture_on_commit_callbacks
):
    settings.SECURITY_BRUTE_FORCE_THRESHOLDS = {"address": 6, "subnet": 100, "account_addresses": 100}
    # Given a spray over six accounts from one address (axes locks none: one try each)
    for n in range(6):
        _failed_login(f"victim{n}@example.com", "203.0.113.9")
    # When the scan runs (the beat task)
    with django_capture_on_commit_callbacks(execute=True):
        assert detect_brute_force() == 1
    alert = AuditEvent.objects.get(action="security.alert")
    assert alert.details["rule"] == "address" and alert.details["key"] == "203.0.113.9"
    assert alert.details["failures"] == 6 and alert.details["accounts"] == 6
    assert alert.actor == detection.DETECTOR_ACTOR
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ops@example.com"]
    assert "6 failed logins from 203.0.113.9" in mail.outbox[0].subject
    # A second scan in the same window raises nothing new
    with django_capture_on_commit_callbacks(execute=True):
        assert detect_brute_force() == 0
    assert len(mail.outbox) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("addresses", "key"),
    [
        ([f"198.51.100.{n}" for n in range(1, 9)], "198.51.100.0/24"),
        ([f"2001:db8:1:2::{n:x}" for n in range(1, 9)], "2001:db8:1:2::/64"),
    ],
)
def test_failures_spread_over_a_network_are_one_subnet_alert(addresses, key, settings):
    settings.SECURITY_BRUTE_FORCE_THRESHOLDS = {"address": 100, "subnet": 8, "account_addresses": 100}
    settings.SECURITY_ALERT_EMAILS = ["soc@example.com"]
    for n, address in enumerate(addresses):
        _failed_login(f"user{n}@example.com", address)
    _failed_login("other@example.com", "192.0.2.50")  # another network: not counted
    (alert,) = detection.brute_force_scan()
    assert alert.details["rule"] == "subnet" and alert.details["key"] == key
    assert alert.details["failures"] == 8 and alert.details["addresses"] == 8


@pytest.mark.django_db
def test_one_account_failing_from_many_addresses_through_the_login_form(settings):
    settings.SECURITY_BRUTE_FORCE_THRESHOLDS = {"address": 100, "subnet": 100, "account_addresses": 4}
    victim = UserFactory(email="victim@example.com")
    # Given wrong passwords for one account from four networks, through the real login form
    for n in range(4):
        client = Client(REMOTE_ADDR=f"10.{n}.0.1")
        assert client.post("/accounts/login/", {"login": victim.email, "password": "wrong-guess"}).status_code == 200
    # Below the threshold with three addresses the scan is quiet; at four it alerts
    (alert,) = detection.brute_force_scan()
    assert alert.details["rule"] == "account" and alert.details["key"] == "victim@example.com"
    assert alert.details["addresses"] == 4


@pytest.mark.django_db
def test_below_every_threshold_nothing_is_raised(settings):
    settings.SECURITY_BRUTE_FORCE_THRESHOLDS = {"address": 5, "subnet": 5, "account_addresses": 5}
    for n in range(4):
        _failed_login("a@example.com", f"192.0.2.{n}")
    assert detection.brute_force_scan() == []


@pytest.mark.django_db
def test_siem_export_as_syslog_rfc5424_and_json_lines(operator, tmp_path):
    _failed_login('evil"]\\@example.com', "203.0.113.5")
    audit.record(actor=operator, action="security.alert", details={"rule": "address", "key": "203.0.113.5"})
    audit.record(actor="system", action="vm.create.requested")  # not a security event
    audit.record(actor=operator, action="auth.token.created", details={"name": "ci"})  # info: below the floor
    out = io.StringIO()
    call_command("security_export", "--format", "syslog", "--severity", "warning", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    parsed = [SYSLOG_RE.match(line) for line in lines]
    assert all(parsed), lines
    failed, alert = parsed
    assert int(failed["pri"]) == 10 * 8 + 4 and failed["msgid"] == "auth.login.failed"
    assert int(alert["pri"]) == 10 * 8 + 2 and alert["msgid"] == "security.alert"
    assert 'ip="203.0.113.5"' in failed["params"] and 'severity="warning"' in failed["params"]
    assert json.loads(failed["msg"])["login"] == 'evil"]\\@example.com'
    # JSON lines with a state file: a second run sends only what is new
    state = tmp_path / "siem.state"
    first = io.StringIO()
    call_command("security_export", "--severity", "warning", "--state-file", str(state), stdout=first)
    records = [json.loads(line) for line in first.getvalue().splitlines()]
    assert [r["severity"] for r in records] == ["warning", "critical"] and "hash" in records[0]
    _failed_login("late@example.com", "203.0.113.6")
    second = io.StringIO()
    call_command("security_export", "--severity", "warning", "--state-file", str(state), stdout=second)
    assert [json.loads(line)["details"]["login"] for line in second.getvalue().splitlines()] == ["late@example.com"]
