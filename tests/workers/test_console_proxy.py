"""The console proxy process against the simulator's console: a browser's path end to end,
and every way a connection must be refused before any hypervisor is asked.

"Not reaching the hypervisor" is measured by the simulator itself: its store counts every
``console()`` call (the proxy asks the driver only after the token was accepted)."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.choices import Role
from accounts.models import Membership
from audit.models import AuditEvent
from compute.models import ConsoleSession
from tests.fixtures.compute import wait_for
from tests.fixtures.console import (
    RFBClient,
    distinct_colours,
    refusal,
    running_sim_vm,
    sessions_recorded_closed,
    ws_connect,
)
from tests.fixtures.factories import UserFactory
from workers.drivers.simulator.driver import store_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _sessions_end_before_teardown():
    """The proxy records a session's end after the client left; let it, before the flush."""
    yield
    sessions_recorded_closed()


@pytest.fixture
def vm(user, project, plan, image, simulator):
    return running_sim_vm(project=project, user=user, plan=plan, image=image, hypervisor=simulator)


def console_calls(vm) -> int:
    return store_for(vm.hypervisor.connection["state_path"]).call_counts().get("console", 0)


def issue(api, vm, **extra) -> str:
    response = api.post(f"/api/v1/virtual-machines/{vm.pk}/console/", {}, format="json", **extra)
    assert response.status_code == 201, response.content
    return response.json()["websocket_url"].split("token=", 1)[1]


def test_a_browser_sees_the_screen_types_and_the_session_is_audited(api, vm, user, console_proxy):
    # Given a one-time token from the API
    token = issue(api, vm)
    # When the browser connects through the proxy and speaks RFB
    rfb = RFBClient(ws_connect(console_proxy.url, token=token))
    width, height, name = rfb.handshake()
    first = rfb.framebuffer()
    # Then it sees the simulated guest's screen, and typing changes it
    assert (width, height) == (640, 400) and vm.name in name
    assert distinct_colours(first) > 2
    for char in "hello":
        rfb.key(ord(char))
    assert rfb.framebuffer(incremental=True) != first
    opened = AuditEvent.objects.get(action="console.opened")
    assert opened.actor_user_id == user.pk and opened.target_id == str(vm.pk)
    assert opened.details["ip"] == "127.0.0.1" and opened.ip_address == "127.0.0.1"
    # When the browser closes, the session's end and duration are recorded
    rfb.ws.close()
    closed = wait_event("console.closed")
    assert closed.details["seconds"] >= 0 and closed.details["session"] == opened.details["session"]
    assert console_calls(vm) == 1


def wait_event(action):
    return wait_for(lambda: AuditEvent.objects.filter(action=action).first(), 15, message=action)


def test_the_session_ends_when_the_vm_stops(api, vm, console_proxy):
    rfb = RFBClient(ws_connect(console_proxy.url, token=issue(api, vm)))
    rfb.handshake()
    rfb.framebuffer()
    store_for(vm.hypervisor.connection["state_path"]).set_power(vm.backend_id, "stopped")
    with pytest.raises(ConnectionError):
        while True:
            rfb.framebuffer(incremental=True)
    assert wait_event("console.closed").details["outcome"] == "the console ended"


def test_a_token_works_once(api, vm, console_proxy):
    token = issue(api, vm)
    ws_connect(console_proxy.url, token=token).close()
    assert refusal(console_proxy.url, token=token).startswith("403")
    assert console_calls(vm) == 1
    assert token not in console_proxy.log()


def test_two_concurrent_connects_with_one_token_open_one_console(api, vm, console_proxy):
    token = issue(api, vm)
    barrier, results = threading.Barrier(8), []

    def connect():
        barrier.wait()
        try:
            results.append(ws_connect(console_proxy.url, token=token))
        except Exception as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=connect) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    opened = [r for r in results if not isinstance(r, str)]
    for client in opened:
        client.close()
    assert len(opened) == 1, results
    assert all("403" in r for r in results if isinstance(r, str))
    assert console_calls(vm) == 1
    assert AuditEvent.objects.filter(action="console.opened").count() == 1


def test_no_token_and_forged_tokens_are_refused(vm, console_proxy):
    assert refusal(console_proxy.url, token=None).startswith("403")
    assert refusal(console_proxy.url, token="").startswith("403")
    assert refusal(console_proxy.url, token="A" * 43).startswith("403")
    assert refusal(console_proxy.url, token="x" * 5000).startswith("403")
    assert console_calls(vm) == 0


def test_an_expired_token_is_refused(api, vm, console_proxy):
    token = issue(api, vm)
    ConsoleSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert refusal(console_proxy.url, token=token).startswith("403")
    assert console_calls(vm) == 0


def test_a_wrong_origin_is_refused_and_uses_the_token_up(api, vm, console_proxy):
    token = issue(api, vm)
    assert refusal(console_proxy.url, token=token, origin="https://evil.example").startswith("403")
    assert refusal(console_proxy.url, token=token).startswith("403")  # the token is gone
    assert refusal(console_proxy.url, token=issue(api, vm), origin=None).startswith("403")
    assert console_calls(vm) == 0
    assert ConsoleSession.objects.filter(outcome__contains="Origin").count() == 2


def test_a_token_issued_to_another_address_is_refused(api, vm, console_proxy):
    token = issue(api, vm, REMOTE_ADDR="203.0.113.7")
    assert refusal(console_proxy.url, token=token).startswith("403")
    assert console_calls(vm) == 0


def test_the_token_alone_decides_the_vm(api, vm, user, project, plan, image, simulator, console_proxy):
    other = running_sim_vm(project=project, user=user, plan=plan, image=image, hypervisor=simulator, name="other-vm")
    url = f"{console_proxy.url}?vm={other.pk}&token="  # a VM named in the URL is ignored
    rfb = RFBClient(ws_connect(url.split("?")[0], token=f"{issue(api, vm)}&vm={other.pk}"))
    assert rfb.handshake()[2].startswith(vm.name)
    rfb.ws.close()


def test_rights_lost_after_issue_are_checked_at_connect(api, vm, project, console_proxy):
    # a member whose role drops to viewer, and one removed from the project, in the token's minute
    member = UserFactory()
    membership = Membership.objects.create(project=project, user=member, role=Role.MEMBER)
    client = APIClient()
    client.force_login(member)
    demoted, removed = issue(client, vm), issue(client, vm)
    membership.role = Role.VIEWER
    membership.save()
    assert refusal(console_proxy.url, token=demoted).startswith("403")
    membership.delete()
    assert refusal(console_proxy.url, token=removed).startswith("403")
    assert console_calls(vm) == 0


def test_a_stopped_vm_gives_a_clear_refusal(api, vm, console_proxy):
    token = issue(api, vm)
    store_for(vm.hypervisor.connection["state_path"]).set_power(vm.backend_id, "stopped")
    assert "502" in refusal(console_proxy.url, token=token)
    assert ConsoleSession.objects.get().outcome.startswith("refused: console-vm is not running")
