"""Brute-force detection across accounts, read from the audit log's failed logins.

django-axes locks one account from one address; an attacker spraying many
accounts, rotating addresses in one network, or hitting one account from many
addresses never trips it. ``brute_force_scan`` (a beat task every
``SECURITY_SCAN_INTERVAL_SECONDS``) looks at the ``auth.login.failed`` events of
the last ``SECURITY_BRUTE_FORCE_WINDOW_SECONDS`` and raises a
``security.alert`` event, mailed to the operators, for each pattern over its
threshold:

- ``address``: failures from one address, whatever the accounts;
- ``subnet``: failures from one /24 (IPv4) or /64 (IPv6) network;
- ``account``: one login name failing from many different addresses.

An alert for the same rule and key is not raised again within the window.
"""

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from . import services
from .choices import Action
from .models import AuditEvent

DETECTOR_ACTOR = "system:brute-force-detector"
RULE_TEXT = {
    "address": "{failures} failed logins from {key} ({accounts} accounts)",
    "subnet": "{failures} failed logins from network {key} ({addresses} addresses, {accounts} accounts)",
    "account": "{failures} failed logins on {key} from {addresses} addresses",
}


@dataclass
class Finding:
    rule: str
    key: str
    event_ids: list[int] = field(default_factory=list)
    addresses: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)

    @property
    def failures(self) -> int:
        return len(self.event_ids)

    def details(self, window: int) -> dict:
        return {
            "rule": self.rule,
            "key": self.key,
            "failures": self.failures,
            "addresses": len(self.addresses),
            "accounts": len(self.accounts),
            "window_seconds": window,
            "first_event_id": min(self.event_ids),
            "last_event_id": max(self.event_ids),
            "summary": RULE_TEXT[self.rule].format(
                key=self.key, failures=self.failures, addresses=len(self.addresses), accounts=len(self.accounts)
            ),
        }


def subnet_of(address: str) -> str | None:
    """The /24 of an IPv4 address or the /64 of an IPv6 one; None when it is not an address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def brute_force_findings(*, now: datetime | None = None) -> list[Finding]:
    """Patterns over their thresholds among the window's failed logins (nothing written)."""
    now = now or timezone.now()
    window = settings.SECURITY_BRUTE_FORCE_WINDOW_SECONDS
    rows = AuditEvent.objects.filter(
        action=Action.AUTH_LOGIN_FAILED, created_at__gte=now - timedelta(seconds=window), created_at__lte=now
    ).values_list("id", "ip_address", "details__login")
    groups: dict[tuple[str, str], Finding] = {}

    def add(rule: str, key: str, event_id: int, address: str, login: str) -> None:
        finding = groups.setdefault((rule, key), Finding(rule=rule, key=key))
        finding.event_ids.append(event_id)
        if address:
            finding.addresses.add(address)
        if login:
            finding.accounts.add(login)

    for event_id, address, login in rows.iterator(chunk_size=2000):
        login = login or ""
        if address:
            add("address", address, event_id, address, login)
            subnet = subnet_of(address)
            if subnet:
                add("subnet", subnet, event_id, address, login)
        if login:
            add("account", login, event_id, address, login)
    limits = settings.SECURITY_BRUTE_FORCE_THRESHOLDS
    over = {
        "address": lambda f: f.failures >= limits["address"],
        "subnet": lambda f: f.failures >= limits["subnet"] and len(f.addresses) > 1,
        "account": lambda f: len(f.addresses) >= limits["account_addresses"],
    }
    return [finding for (rule, _), finding in sorted(groups.items()) if over[rule](finding)]


def operator_emails() -> list[str]:
    """Where alerts go: ``SECURITY_ALERT_EMAILS`` when set, else every active staff user."""
    if settings.SECURITY_ALERT_EMAILS:
        return list(settings.SECURITY_ALERT_EMAILS)
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).order_by("email")
    return list(staff.values_list("email", flat=True))


def _mail_operators(event_id: int, details: dict) -> None:
    recipients = operator_emails()
    if recipients:
        send_mail(
            subject=f"[{settings.OTP_TOTP_ISSUER}] Security alert: {details['summary']}",
            message=(
                f"{details['summary']} within {details['window_seconds'] // 60} minutes.\n\n"
                f"Audit event {event_id}; failed logins {details['first_event_id']} to {details['last_event_id']}.\n"
                "See the security events page in the admin (/admin/security/)."
            ),
            from_email=None,
            recipient_list=recipients,
            fail_silently=True,
        )


@transaction.atomic
def brute_force_scan(*, now: datetime | None = None) -> list[AuditEvent]:
    """Raise a ``security.alert`` (and mail the operators after commit) for each new finding."""
    now = now or timezone.now()
    window = settings.SECURITY_BRUTE_FORCE_WINDOW_SECONDS
    alerted = set(
        AuditEvent.objects.filter(
            action=Action.SECURITY_ALERT, created_at__gte=now - timedelta(seconds=window)
        ).values_list("details__rule", "details__key")
    )
    raised = []
    for finding in brute_force_findings(now=now):
        if (finding.rule, finding.key) in alerted:
            continue
        details = finding.details(window)
        event = services.record(actor=DETECTOR_ACTOR, action=Action.SECURITY_ALERT, details=details)
        transaction.on_commit(lambda event_id=event.pk, details=details: _mail_operators(event_id, details))
        raised.append(event)
    return raised
