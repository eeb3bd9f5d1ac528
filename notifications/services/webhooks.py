"""Outbound webhook endpoints: create, change, rotate the secret, delete, redeliver.

Project endpoints belong to the project's owners and admins; global endpoints
(``project=None``) to operators. Secrets are ``whsec_`` + 32 random bytes (Standard
Webhooks), Fernet-encrypted at rest (compute/fields.py) and returned only when made.
"""

import base64
import ipaddress
import secrets
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from accounts.choices import Role
from accounts.models import Project, User
from accounts.selectors import project_require_role
from controlplane.errors import Conflict, Forbidden, InvalidInput

from .. import dispatch
from ..choices import DeliveryState, EventType
from ..models import WebhookDelivery, WebhookEndpoint

MAX_ENDPOINTS_PER_OWNER = 20


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def target_refusal(url: str) -> str:
    """Why ``url`` may not be called (a private, loopback or link-local address), or ""."""
    if settings.WEBHOOKS["ALLOW_PRIVATE_TARGETS"]:
        return ""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return f"{host} does not resolve."
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            return f"{host} resolves to a non-public address ({ip}); webhooks go to public URLs only."
    return ""


def _check_owner(*, actor: User, project: Project | None) -> None:
    if project is None:
        if not (actor.is_staff or actor.is_superuser):
            raise Forbidden("Only operators manage global webhooks.")
    else:
        project_require_role(user=actor, project=project, role=Role.ADMIN)


def endpoint_fields_clean(*, url: str, event_types: list[str], description: str, project: Project | None) -> dict:
    """Checked URL, event types and description, or ``InvalidInput`` naming each bad field."""
    errors = {}
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        errors["url"] = ["Give an http:// or https:// URL."]
    elif settings.WEBHOOKS["REQUIRE_HTTPS"] and parts.scheme != "https":
        errors["url"] = ["Use an https:// URL."]
    elif len(url) > 500:
        errors["url"] = ["Use at most 500 characters."]
    elif project is not None and (refusal := target_refusal(url)):
        errors["url"] = [refusal]
    types = list(dict.fromkeys(event_types or []))
    unknown = sorted(set(types) - set(EventType.values))
    if not types:
        errors["event_types"] = ["Choose at least one event type."]
    elif unknown:
        errors["event_types"] = [f"Unknown event types: {', '.join(unknown)}."]
    if len(description or "") > 200:
        errors["description"] = ["Use at most 200 characters."]
    if errors:
        raise InvalidInput("; ".join(m for msgs in errors.values() for m in msgs), fields=errors)
    return {"url": url, "event_types": types, "description": (description or "").strip()}


@transaction.atomic
def webhook_endpoint_create(
    *,
    actor: User,
    url: str,
    event_types: list[str],
    description: str = "",
    project: Project | None = None,
    enabled: bool = True,
    request=None,
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it and its signing secret (the caller shows it once)."""
    _check_owner(actor=actor, project=project)
    fields = endpoint_fields_clean(url=url, event_types=event_types, description=description, project=project)
    if WebhookEndpoint.objects.filter(project=project).count() >= MAX_ENDPOINTS_PER_OWNER:
        raise Conflict(f"At most {MAX_ENDPOINTS_PER_OWNER} endpoints here; delete one first.")
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        project=project, signing={"secret": secret}, created_by=actor, enabled=enabled, **fields
    )
    audit.record(
        actor=actor,
        action="webhook.created",
        target=endpoint,
        project=project,
        details={"url": endpoint.url, "event_types": endpoint.event_types},
        request=request,
    )
    return endpoint, secret


def _locked(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return WebhookEndpoint.objects.select_for_update(no_key=True, of=("self",)).get(pk=endpoint.pk)


@transaction.atomic
def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    actor: User,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    request=None,
) -> WebhookEndpoint:
    """Change an endpoint. Enabling it again clears the failure count."""
    _check_owner(actor=actor, project=endpoint.project)
    endpoint = _locked(endpoint)
    fields = endpoint_fields_clean(
        url=endpoint.url if url is None else url,
        event_types=endpoint.event_types if event_types is None else event_types,
        description=endpoint.description if description is None else description,
        project=endpoint.project,
    )
    changed = {k: v for k, v in fields.items() if getattr(endpoint, k) != v}
    if enabled is not None and enabled != endpoint.enabled:
        changed["enabled"] = enabled
        if enabled:
            changed.update(consecutive_failures=0, disabled_at=None, disabled_reason="")
    for name, value in changed.items():
        setattr(endpoint, name, value)
    if changed:
        endpoint.save(update_fields=list(changed))
        audit.record(
            actor=actor,
            action="webhook.updated",
            target=endpoint,
            project=endpoint.project_id,
            details={"changed": sorted(changed)},
            request=request,
        )
    return endpoint


@transaction.atomic
def webhook_secret_rotate(*, endpoint: WebhookEndpoint, actor: User, request=None) -> str:
    """A new signing secret, effective for the next attempt; returns it (shown once)."""
    _check_owner(actor=actor, project=endpoint.project)
    endpoint = _locked(endpoint)
    secret = new_secret()
    endpoint.signing = {"secret": secret}
    endpoint.save(update_fields=["signing"])
    audit.record(
        actor=actor,
        action="webhook.updated",
        target=endpoint,
        project=endpoint.project_id,
        details={"changed": ["secret"]},
        request=request,
    )
    return secret


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: User, request=None) -> None:
    _check_owner(actor=actor, project=endpoint.project)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
    audit.record(
        actor=actor,
        action="webhook.deleted",
        target=endpoint,
        project=endpoint.project_id,
        details={"url": endpoint.url},
        request=request,
    )


@transaction.atomic
def webhook_delivery_redeliver(*, delivery: WebhookDelivery, actor: User) -> WebhookDelivery:
    """Send a delivery once more now (same ``webhook-id``, so receivers can drop a repeat)."""
    _check_owner(actor=actor, project=delivery.endpoint.project)
    if not delivery.endpoint.enabled:
        raise InvalidInput("The endpoint is disabled: enable it first.")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        state=DeliveryState.PENDING, next_attempt_at=timezone.now(), lease_until=None, finished_at=None
    )
    dispatch.publish_deliveries([delivery.pk])
    delivery.refresh_from_db()
    return delivery
