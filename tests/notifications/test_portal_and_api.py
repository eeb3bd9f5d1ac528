"""Notifications and webhooks through the portal, the API and the admin (no worker:
deliveries stay pending). Roles, bad input as 4xx, the secret encrypted at rest."""

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.choices import Role
from notifications.choices import DeliveryState, EventType
from notifications.models import Notification, WebhookDelivery, WebhookEndpoint
from tests.fixtures.accounts import add_member, login_operator
from tests.fixtures.factories import UserFactory
from tests.fixtures.notifications import relay_here_and_send_emails

HOOK = {"url": "https://hooks.example.com/cp", "event_types": ["vm.ready", "operation.failed"]}


@pytest.fixture
def team(user, team_project):
    """The team project with ``user`` as owner, plus a member."""
    team_project.member = UserFactory()
    add_member(team_project, team_project.member, Role.MEMBER)
    return team_project


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


class TestNotifications:
    def test_bell_list_and_mark_read(self, client, user, project):
        relay_here_and_send_emails()  # the fixture's top-up: "Payment received"
        client.force_login(user)
        page = client.get("/notifications/").content.decode()
        assert 'aria-label="Notifications: 1 unread"' in page
        assert "Payment of ₹10,000.00 received in" in page and "1 unread" in page
        note = Notification.objects.get()
        response = client.post("/notifications/read/", {"id": note.pk, "next": "https://evil.example/"})
        assert response.status_code == 302 and response["Location"] == "/notifications/"
        assert "unread" not in client.get(f"/projects/{project.slug}/dashboard/").content.decode()

    def test_preferences_page_and_api(self, client, user):
        client.force_login(user)
        page = client.get("/notifications/preferences/").content.decode()
        assert "Operation failed" in page and "Invoice issued" in page
        client.post("/notifications/preferences/", {"vm.ready": "on"})  # every other box unticked
        api = _client(user)
        rows = {row["event_type"]: row["email"] for row in api.get("/api/v1/notification-preferences/").json()}
        assert rows["vm.ready"] is True and rows["operation.failed"] is False
        changed = api.patch("/api/v1/notification-preferences/", {"email": {"operation.failed": True}}, format="json")
        assert changed.status_code == 200
        assert {r["event_type"]: r["email"] for r in changed.json()}["operation.failed"] is True
        bad = api.patch("/api/v1/notification-preferences/", {"email": {"vm.exploded": True}}, format="json")
        assert bad.status_code == 400 and "vm.exploded" in bad.json()["error"]["message"]

    def test_api_lists_only_mine_and_marks_read(self, user, project):
        relay_here_and_send_emails()
        api = _client(user)
        body = api.get("/api/v1/notifications/?read_at__isnull=true").json()
        assert body["count"] == 1 and body["results"][0]["event_type"] == EventType.PAYMENT_RECEIVED
        assert _client(UserFactory()).get("/api/v1/notifications/").json()["count"] == 0
        assert api.post("/api/v1/notifications/mark-read/", {}, format="json").json() == {"marked": 1}


class TestWebhookApi:
    def test_a_project_admin_creates_one_and_gets_the_secret_once(self, user, team):
        api = _client(user)
        created = api.post("/api/v1/webhooks/", {**HOOK, "project": team.slug}, format="json")
        assert created.status_code == 201, created.json()
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")
        listed = api.get("/api/v1/webhooks/").json()["results"]
        assert [e["url"] for e in listed] == [HOOK["url"]] and "secret" not in listed[0]
        # Encrypted at rest: the column holds a Fernet token, never the secret
        with connection.cursor() as cursor:
            cursor.execute("SELECT signing FROM notifications_webhookendpoint")
            [(stored,)] = cursor.fetchall()
        assert secret not in stored and stored.startswith("gAAAA")
        rotated = api.post(f"/api/v1/webhooks/{created.json()['id']}/rotate-secret/").json()["secret"]
        assert rotated != secret and WebhookEndpoint.objects.get().secret == rotated

    def test_roles_and_bad_input(self, user, team, settings):
        member, stranger = _client(team.member), _client(UserFactory())
        assert member.post("/api/v1/webhooks/", {**HOOK, "project": team.slug}, format="json").status_code == 403
        assert stranger.post("/api/v1/webhooks/", {**HOOK, "project": team.slug}, format="json").status_code == 400
        assert _client(user).post("/api/v1/webhooks/", HOOK, format="json").status_code == 403  # global: operators
        bad_type = _client(user).post(
            "/api/v1/webhooks/", {**HOOK, "project": team.slug, "event_types": ["vm.exploded"]}, format="json"
        )
        assert bad_type.status_code == 400 and "event_types" in bad_type.json()["error"]["fields"]
        settings.WEBHOOKS = {**settings.WEBHOOKS, "ALLOW_PRIVATE_TARGETS": False}
        private = _client(user).post(
            "/api/v1/webhooks/", {**HOOK, "project": team.slug, "url": "http://127.0.0.1:8000/x"}, format="json"
        )
        assert private.status_code == 400 and "non-public address" in private.json()["error"]["fields"]["url"][0]
        assert not WebhookEndpoint.objects.exists()
        operator = login_operator(APIClient(), UserFactory(is_staff=True))  # staff powers need a verified 2nd factor
        assert (
            operator.post("/api/v1/webhooks/", {**HOOK, "url": "http://10.0.0.5/erp"}, format="json").status_code == 201
        )

    def test_deliveries_are_listed_and_redelivered(self, user, team, django_capture_on_commit_callbacks):
        from billing.services import wallet_topup
        from notifications.services import webhook_endpoint_create

        endpoint, _ = webhook_endpoint_create(
            actor=user, project=team, url=HOOK["url"], event_types=[EventType.PAYMENT_RECEIVED]
        )
        wallet_topup(project=team, amount="5.00", actor="system:tests", payment_mode="test")
        relay_here_and_send_emails()
        [delivery] = WebhookDelivery.objects.all()
        WebhookDelivery.objects.filter(pk=delivery.pk).update(state=DeliveryState.FAILED, attempts=10)
        api = _client(user)
        listed = api.get(f"/api/v1/webhook-deliveries/?endpoint={endpoint.pk}").json()["results"]
        assert [d["message_id"] for d in listed] == [delivery.message_id]
        with django_capture_on_commit_callbacks() as published:
            response = api.post(f"/api/v1/webhook-deliveries/{delivery.pk}/redeliver/")
        assert response.status_code == 202 and response.json()["state"] == "pending" and len(published) == 1
        assert _client(team.member).post(f"/api/v1/webhook-deliveries/{delivery.pk}/redeliver/").status_code == 404


class TestWebhookPortal:
    def test_admin_adds_an_endpoint_sees_the_secret_once_then_disables_it(self, client, user, team):
        client.force_login(user)
        url = f"/projects/{team.slug}/webhooks/"
        response = client.post(url, {"url": HOOK["url"], "event_types": ["vm.ready"]})
        endpoint = WebhookEndpoint.objects.get()
        assert response.status_code == 302 and response["Location"] == f"{url}{endpoint.pk}/"
        detail = client.get(response["Location"]).content.decode()
        assert endpoint.secret in detail and "shown only this once" in detail
        assert endpoint.secret not in client.get(response["Location"]).content.decode()
        client.post(f"{url}{endpoint.pk}/action/", {"do": "disable"})
        endpoint.refresh_from_db()
        assert not endpoint.enabled
        empty = client.post(url, {"url": "not a url", "event_types": []})
        assert empty.status_code == 400 and WebhookEndpoint.objects.count() == 1

    def test_members_cannot_see_webhooks(self, client, team):
        client.force_login(team.member)
        assert client.get(f"/projects/{team.slug}/webhooks/").status_code == 403


def test_operators_add_a_global_endpoint_in_the_admin(admin_client):
    response = admin_client.post(
        "/admin/notifications/webhookendpoint/add/",
        {
            "url": "https://erp.example.com/hooks",
            "description": "ERP",
            "event_types": ["operation.failed"],
            "enabled": "on",
        },
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.project is None and endpoint.created_by.is_staff
    assert endpoint.secret in response.content.decode()
    bad = admin_client.post(
        "/admin/notifications/webhookendpoint/add/", {"url": "https://x.example.com/", "event_types": []}
    )
    assert bad.status_code == 200 and WebhookEndpoint.objects.count() == 1
