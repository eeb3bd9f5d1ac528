"""Webhooks and notifications through a real Celery worker and a real HTTP receiver on
loopback: signatures verify with ``standardwebhooks``, a 500 is retried until a 2xx,
every event is one delivery with one id, a failing endpoint is disabled and its owner
told, and a failed operation reaches its owner."""

import json

import pytest
from standardwebhooks import Webhook

from accounts.choices import Role
from billing.services import wallet_topup
from compute import services as compute_services
from compute.choices import OperationState
from compute.models import Operation
from notifications import services
from notifications.choices import DeliveryState, EmailState, EventType
from notifications.models import Notification, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.fixtures.accounts import add_member
from tests.fixtures.compute import wait_for, wait_operation
from tests.fixtures.factories import UserFactory, make_billable
from tests.fixtures.notifications import relay_on_worker

pytestmark = pytest.mark.worker


def _endpoint(user, project, url, *types):
    return services.webhook_endpoint_create(actor=user, project=project, url=url, event_types=list(types))


def _deliveries_done(count: int):
    def done():
        rows = list(WebhookDelivery.objects.order_by("id"))
        return rows if len(rows) == count and all(d.state != DeliveryState.PENDING for d in rows) else None

    return done


def test_a_built_vm_is_delivered_signed_and_a_500_is_retried(
    live_worker, receiver, user, project, plan, image, simulator
):
    # Given an endpoint for vm.ready whose receiver fails twice with 500
    endpoint, secret = _endpoint(user, project, receiver.url, EventType.VM_READY)
    receiver.script = [500, 500]

    # When a VM is built by the worker and the relay runs
    vm_request = compute_services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="web-1"
    )
    create = Operation.objects.get(vm__request=vm_request, action="create")
    assert wait_operation(create.pk).state == OperationState.SUCCEEDED
    relay_on_worker()

    # Then it arrives after two retries, with one webhook-id, and every attempt verifies
    [delivery] = wait_for(_deliveries_done(1), timeout=60, message="the delivery to finish")
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.attempts == 3
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.message_id}
    for received in receiver.requests:
        payload = Webhook(secret).verify(received.body, received.headers)
        assert payload["type"] == "vm.ready" and payload["data"]["project"] == project.slug
        assert payload["data"]["target"] == {
            "type": "compute.virtualmachine",
            "id": str(create.vm_id),
            "name": "web-1",
        }
    with pytest.raises(Exception, match="No matching signature"):
        Webhook("whsec_" + "A" * 44).verify(receiver.requests[-1].body, receiver.requests[-1].headers)

    # And the delivery log has each response code
    attempts = WebhookAttempt.objects.filter(delivery=delivery).order_by("number")
    codes = list(attempts.values_list("status_code", flat=True))
    assert codes == [500, 500, 200]
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.enabled


def test_every_event_is_one_delivery_with_its_own_id_even_with_concurrent_relays(live_worker, receiver, user, project):
    # Given two endpoints (one global) and eight payments
    _endpoint(user, project, receiver.url, EventType.PAYMENT_RECEIVED)
    operator = UserFactory(is_staff=True)
    services.webhook_endpoint_create(actor=operator, url=receiver.url, event_types=[EventType.PAYMENT_RECEIVED])
    for n in range(8):
        wallet_topup(project=project, amount=f"{10 + n}.00", actor="system:tests", payment_mode="test")

    # When three relays run at the same time on the worker
    for _ in range(3):
        relay_on_worker()

    # Then the 8 payments made after the endpoints existed arrive once per endpoint
    # (the fixture's earlier top-up is older than both endpoints: notified, not delivered)
    rows = wait_for(_deliveries_done(16), timeout=60, message="16 deliveries")
    assert all(d.state == DeliveryState.SUCCEEDED for d in rows)
    ids = receiver.ok_ids()
    assert len(ids) == 16 and len(set(ids)) == 16
    assert sorted(ids) == sorted(d.message_id for d in rows)
    event_ids = [json.loads(r.body)["data"]["event_id"] for r in receiver.requests]
    assert len(set(event_ids)) == 8  # each event twice: once per endpoint
    assert Notification.objects.filter(event_type=EventType.PAYMENT_RECEIVED).count() == 9


def test_an_endpoint_that_keeps_failing_is_disabled_and_its_owner_emailed(live_worker, receiver, user, project):
    # Given an endpoint that always answers 500 (tests: 4 attempts per delivery, disabled after 6 in a row)
    receiver.default = 500
    endpoint, _ = _endpoint(user, project, receiver.url, EventType.PAYMENT_RECEIVED)
    for amount in ("11.00", "12.00"):
        wallet_topup(project=project, amount=amount, actor="system:tests", payment_mode="test")

    # When the relay hands the payments to the worker
    relay_on_worker()

    # Then the endpoint is disabled after 6 failed attempts, and nothing is pending any more
    wait_for(lambda: not WebhookEndpoint.objects.get(pk=endpoint.pk).enabled, timeout=60, message="disable")
    wait_for(_deliveries_done(2), timeout=30, message="deliveries to stop")
    endpoint.refresh_from_db()
    assert "6 failed attempts in a row; last: HTTP 500" in endpoint.disabled_reason
    # No attempt starts once it is disabled (one already on the wire may still land: 6 or 7 in all)
    attempts = WebhookAttempt.objects.filter(delivery__endpoint=endpoint)
    assert attempts.count() == len(receiver.requests) == endpoint.consecutive_failures
    assert 6 <= attempts.count() <= 7 and all(a.at <= endpoint.disabled_at for a in attempts)

    # And the owner gets a notification and an email (the next relay run)
    relay_on_worker()
    told = wait_for(
        lambda: Notification.objects.filter(
            event_type=EventType.WEBHOOK_DISABLED, user=user, email_state=EmailState.SENT
        ).first(),
        timeout=30,
        message="the owner's notification",
    )
    assert told.title == f"Webhook {receiver.url} was disabled"
    assert told.url == f"/projects/{project.slug}/webhooks/"


def test_a_failed_create_notifies_the_owner_and_project_admins(
    live_worker, user, team_project, plan, image, simulator, receiver
):
    make_billable(team_project, amount="1000.00")
    admin, viewer = UserFactory(), UserFactory()
    add_member(team_project, admin, Role.ADMIN)
    add_member(team_project, viewer, Role.VIEWER)
    _endpoint(user, team_project, receiver.url, EventType.OPERATION_FAILED)
    simulator.connection.update(latency=0.1, permanent_failures_first={"create": 1})
    simulator.save()

    vm_request = compute_services.vm_request_create(
        user=user, project=team_project, plan=plan, image=image, hypervisor=simulator, name="db-1"
    )
    create = Operation.objects.get(vm__request=vm_request, action="create")
    assert wait_operation(create.pk).state == OperationState.FAILED
    relay_on_worker()

    def told():
        rows = Notification.objects.filter(event_type=EventType.OPERATION_FAILED, email_state=EmailState.SENT)
        return rows if rows.count() == 2 else None

    rows = wait_for(told, timeout=30, message="two notifications emailed")
    assert {n.user_id for n in rows} == {user.pk, admin.pk}  # the viewer is not told
    assert {n.title for n in rows} == {"Create of VM db-1 failed"}
    assert "Simulated permanent failure" in rows[0].body
    [delivery] = wait_for(_deliveries_done(1), timeout=30, message="the webhook")
    assert delivery.state == DeliveryState.SUCCEEDED
    assert delivery.payload["data"]["details"]["error"].startswith("Simulated permanent failure")
