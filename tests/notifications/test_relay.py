"""The audit relay and the notification service, in process (no worker): who is told
what, exactly once, branded email in HTML and text, preferences."""

import pytest
from django.core import mail

from audit.models import AuditEvent
from billing.services import wallet_topup
from compute import services as compute_services
from notifications import services
from notifications.choices import EmailState, EventType
from notifications.events import AUDIT_ROUTES
from notifications.models import Notification, RelayCursor
from tests.fixtures.factories import PlanFactory, UserFactory
from tests.fixtures.notifications import relay_here_and_send_emails


@pytest.fixture
def operator(db):
    return UserFactory(is_staff=True)


def test_the_mapping_table_names_real_audit_actions_and_event_types():
    from audit.choices import ACTION_NAMES

    assert set(AUDIT_ROUTES) <= ACTION_NAMES
    assert {route.event_type for route in AUDIT_ROUTES.values()} <= set(EventType.values)


def test_approval_needed_reaches_operators_and_the_decision_the_requester(
    user, project, image, simulator, operator, settings
):
    settings.OPERATOR_NAME = "Acme Cloud"
    plan = PlanFactory(requires_approval=True)
    request = compute_services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="db-1"
    )
    mail.outbox.clear()
    relay_here_and_send_emails()
    [needed] = Notification.objects.filter(event_type=EventType.APPROVAL_NEEDED)
    assert needed.user == operator and "db-1 needs approval" in needed.title
    assert needed.url == "/admin/compute/vmrequest/" and needed.email_state == EmailState.SENT

    compute_services.vm_request_approve_as_staff(vm_request=request, actor=operator)
    relay_here_and_send_emails()
    [decided] = Notification.objects.filter(event_type=EventType.APPROVAL_DECIDED)
    assert decided.user == user and decided.title == "Your VM request db-1 was approved"
    message = mail.outbox[-1]
    assert message.to == [user.email] and message.subject == "[Acme Cloud] Your VM request db-1 was approved"
    assert "Acme Cloud" in message.body and f"/projects/{project.slug}/requests/" in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html" and "Acme Cloud" in html and "Open in the portal" in html


def test_an_auto_approved_request_notifies_nobody_about_approval(user, project, plan, image, simulator, operator):
    compute_services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="web-1"
    )
    relay_here_and_send_emails()
    types = set(Notification.objects.values_list("event_type", flat=True))
    assert not types & {EventType.APPROVAL_NEEDED, EventType.APPROVAL_DECIDED}


def test_each_event_is_relayed_once_and_the_cursor_moves(user, project):
    # Given a payment already relayed
    relay_here_and_send_emails()
    assert Notification.objects.filter(event_type=EventType.PAYMENT_RECEIVED).count() == 1
    cursor = RelayCursor.objects.get(name="audit").last_event_id
    assert cursor == AuditEvent.objects.order_by("-id").first().pk

    # When the relay runs again with nothing new, nothing is added
    assert services.audit_events_relay()["events"] == 0

    # And a new event is picked up exactly once
    wallet_topup(project=project, amount="50.00", actor="system:tests", payment_mode="test")
    assert services.audit_events_relay()["notifications"] == 1
    assert services.audit_events_relay()["notifications"] == 0
    assert Notification.objects.filter(event_type=EventType.PAYMENT_RECEIVED).count() == 2


def test_email_off_for_a_type_still_shows_in_the_portal(user, project):
    relay_here_and_send_emails()
    services.preferences_set(user=user, email={EventType.PAYMENT_RECEIVED: False})
    mail.outbox.clear()
    wallet_topup(project=project, amount="25.00", actor="system:tests", payment_mode="test")
    notifications = relay_here_and_send_emails()
    assert notifications[-1].title == f"Payment of ₹25.00 received in {project.name}"
    assert notifications[-1].email_state == EmailState.SKIPPED and mail.outbox == []


def test_a_mail_server_error_is_retried_then_given_up(user, project, settings):
    settings.EMAIL_BACKEND = "tests.notifications.test_relay.BrokenBackend"
    services.audit_events_relay()
    notification = Notification.objects.get()
    assert services.notification_email_send(notification_id=notification.pk) == "retry"
    notification.refresh_from_db()
    assert notification.email_state == EmailState.PENDING and "refused" in notification.email_error
    # Within its back-off nobody may send it again
    assert services.notification_email_send(notification_id=notification.pk) == "not-pending"


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server refused")


def test_purge_removes_finished_deliveries_and_read_notifications_only(user, project):
    from datetime import timedelta

    from django.utils import timezone

    from notifications.models import WebhookDelivery

    endpoint, _ = services.webhook_endpoint_create(
        actor=user, project=project, url="https://hooks.example.com/x", event_types=[EventType.PAYMENT_RECEIVED]
    )
    for amount in ("1.00", "2.00"):
        wallet_topup(project=project, amount=amount, actor="system:tests", payment_mode="test")
    relay_here_and_send_emails()
    old = timezone.now() - timedelta(days=100)
    first, second = WebhookDelivery.objects.order_by("id")
    WebhookDelivery.objects.filter(pk=first.pk).update(state="succeeded", finished_at=old)
    Notification.objects.filter(pk=Notification.objects.order_by("id").first().pk).update(read_at=old)
    assert services.notifications_purge()["notifications"] == 1
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [second.pk]
    assert Notification.objects.count() == 2 and not Notification.objects.filter(read_at__isnull=False).exists()


def test_a_relay_that_dies_midway_leaves_nothing_and_the_next_run_does_it_all(user, project, monkeypatch):
    from notifications.models import WebhookDelivery

    services.webhook_endpoint_create(
        actor=user, project=project, url="https://hooks.example.com/x", event_types=[EventType.PAYMENT_RECEIVED]
    )
    wallet_topup(project=project, amount="3.00", actor="system:tests", payment_mode="test")
    before = RelayCursor.objects.get_or_create(name="audit")[0].last_event_id

    def killed(*args, **kwargs):
        raise RuntimeError("worker killed")

    # When the process dies after the notifications were written but before the deliveries
    monkeypatch.setattr(WebhookDelivery.objects, "bulk_create", killed)
    with pytest.raises(RuntimeError):
        services.audit_events_relay()
    # Then nothing is left behind and the cursor has not moved
    assert not Notification.objects.exists() and RelayCursor.objects.get(name="audit").last_event_id == before

    # And the next run relays everything once
    monkeypatch.undo()
    result = services.audit_events_relay()
    assert (result["notifications"], result["deliveries"]) == (2, 1)


def test_suspension_and_its_end_reach_the_project_admins_not_members(user, team_project, operator):
    from accounts.choices import Role
    from billing.services import project_suspend, project_unsuspend
    from tests.fixtures.accounts import add_member

    member = UserFactory()
    add_member(team_project, member, Role.MEMBER)
    project_suspend(project=team_project, actor=operator, reason="Unpaid invoice INV/1")
    project_unsuspend(project=team_project, actor=operator)
    relay_here_and_send_emails()
    rows = Notification.objects.filter(project=team_project).order_by("id")
    assert [(n.user, n.event_type) for n in rows] == [
        (user, EventType.PROJECT_SUSPENDED),
        (user, EventType.PROJECT_UNSUSPENDED),
    ]
    assert rows[0].body == "VMs were stopped because Unpaid invoice INV/1."
    assert rows[0].url == f"/billing/{team_project.slug}/"
