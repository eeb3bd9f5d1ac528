"""Webhook delivery: one signed HTTP attempt at a time, retries with exponential
backoff, the delivery log, and disabling an endpoint that keeps failing.

An attempt claims the delivery with a compare-and-swap on a lease (two workers never
send the same delivery at once); the HTTP call runs outside any transaction; the
outcome is written only if the claim still holds. Delivery is at least once: a worker
that dies after the receiver answered but before the write leaves the delivery to be
sent again with the same ``webhook-id``.
"""

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks import Webhook

import audit

from .. import dispatch
from ..choices import DeliveryState
from ..models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .webhooks import target_refusal

logger = logging.getLogger(__name__)


def _conf(name: str):
    return settings.WEBHOOKS[name]


def backoff_seconds(attempt: int) -> float:
    """base·2^(n-1), capped, ×[0.5, 1.5)."""
    delay = min(_conf("RETRY_MAX_SECONDS"), _conf("RETRY_BASE_SECONDS") * 2 ** max(0, attempt - 1))
    return delay * (0.5 + random.random())


def signed_request(*, delivery: WebhookDelivery, secret: str, at) -> tuple[bytes, dict]:
    """Body and headers per Standard Webhooks (webhook-id, -timestamp, -signature)."""
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"{settings.OPERATOR_NAME} webhooks",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery.message_id, at, body),
    }
    return body, headers


def _claim(delivery_id: int) -> WebhookDelivery | None:
    now = timezone.now()
    lease = now + timedelta(seconds=_conf("TIMEOUT_SECONDS") + 30)
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, state=DeliveryState.PENDING, next_attempt_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=lease, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)


@dataclass(frozen=True)
class Outcome:
    sent_at: datetime
    status_code: int | None = None
    error: str = ""
    response_body: str = ""
    duration_ms: int = 0


def _post(delivery: WebhookDelivery) -> Outcome:
    """One signed POST; never raises (a refusal, a timeout or a non-2xx is ``error``)."""
    endpoint, sent_at = delivery.endpoint, timezone.now()
    refusal = target_refusal(endpoint.url) if endpoint.project_id else ""
    if refusal:
        return Outcome(sent_at=sent_at, error=refusal)
    body, headers = signed_request(delivery=delivery, secret=endpoint.secret, at=sent_at)
    started = time.monotonic()
    try:
        response = requests.post(
            endpoint.url, data=body, headers=headers, timeout=_conf("TIMEOUT_SECONDS"), allow_redirects=False
        )
    except requests.RequestException as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        return Outcome(sent_at=sent_at, error=f"{type(exc).__name__}: {exc}"[:300], duration_ms=elapsed)
    return Outcome(
        sent_at=sent_at,
        status_code=response.status_code,
        error="" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}",
        response_body=response.text[:500],
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def webhook_delivery_attempt(*, delivery_id: int) -> str:
    """Make the next attempt of a due delivery; returns what happened."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return "not-due"
    if not delivery.endpoint.enabled:
        WebhookDelivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING).update(
            state=DeliveryState.FAILED, last_error="The endpoint is disabled.", finished_at=timezone.now()
        )
        return "endpoint-disabled"
    return _record(delivery, _post(delivery))


@transaction.atomic
def _record(delivery: WebhookDelivery, result: Outcome) -> str:
    """Write the attempt's outcome. Locks the endpoint row first, then the delivery rows
    (the order ``webhook_endpoint_disable`` uses too), so concurrent attempts cannot deadlock."""
    endpoint = WebhookEndpoint.objects.select_for_update(no_key=True, of=("self",)).filter(pk=delivery.endpoint_id)
    endpoint = endpoint.first()
    if endpoint is None:
        return "endpoint-deleted"
    now, error = timezone.now(), result.error
    mine = WebhookDelivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING, attempts=delivery.attempts)
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        at=result.sent_at,
        status_code=result.status_code,
        error=error,
        response_body=result.response_body,
        duration_ms=result.duration_ms,
    )
    outcome = {"last_status_code": result.status_code, "last_error": error, "lease_until": None}
    if not error:
        mine.update(state=DeliveryState.SUCCEEDED, finished_at=now, **outcome)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
        return "succeeded"
    final = delivery.attempts >= _conf("MAX_ATTEMPTS")
    if final:
        mine.update(state=DeliveryState.FAILED, finished_at=now, **outcome)
    else:
        delay = backoff_seconds(delivery.attempts)
        if mine.update(next_attempt_at=now + timedelta(seconds=delay), **outcome) and delay <= _conf("COUNTDOWN_MAX"):
            dispatch.publish_deliveries([delivery.pk], countdown=delay)
    endpoint.consecutive_failures += 1
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=endpoint.consecutive_failures)
    if endpoint.enabled and endpoint.consecutive_failures >= _conf("DISABLE_AFTER_FAILURES"):
        why = f"{endpoint.consecutive_failures} failed attempts in a row; last: {error}"
        webhook_endpoint_disable(endpoint=endpoint, reason=why)
    return "failed" if final else "retry"


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str) -> None:
    """Turn a failing endpoint off and give up its pending deliveries. The audit event
    ``webhook.disabled`` reaches the endpoint's owner as a notification and an email.
    The caller holds the endpoint's row lock (see ``_record``)."""
    now = timezone.now()
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_at=now, disabled_reason=reason[:300]
    ):
        return
    WebhookDelivery.objects.filter(endpoint=endpoint, state=DeliveryState.PENDING).update(
        state=DeliveryState.FAILED, last_error="The endpoint was disabled.", finished_at=now, lease_until=None
    )
    audit.record(
        actor="system:webhooks",
        action="webhook.disabled",
        target=endpoint,
        project=endpoint.project_id,
        details={"url": endpoint.url, "reason": reason[:300], "failures": endpoint.consecutive_failures},
    )


def webhook_deliveries_due(*, limit: int = 500) -> list[int]:
    """Pending deliveries due for a while that nobody holds (publish lost, worker died, long backoff)."""
    now = timezone.now()
    grace = now - timedelta(seconds=_conf("REPUBLISH_AFTER_SECONDS"))
    return list(
        WebhookDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=grace)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def webhook_deliveries_republish() -> int:
    due = webhook_deliveries_due()
    if due:
        dispatch.publish_deliveries(due)
    return len(due)
