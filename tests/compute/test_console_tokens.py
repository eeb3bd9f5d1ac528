"""Issuing console tokens: who may, for which VM, what is stored, what the pages show.
(The proxy's side, with the real proxy process, is tests/workers/test_console_proxy.py.)"""

import re

import pytest
from rest_framework.test import APIClient

from accounts.choices import Role
from accounts.hashing import sha256
from compute.models import ConsoleSession
from tests.fixtures.accounts import add_member, login_operator
from tests.fixtures.console import running_sim_vm
from tests.fixtures.factories import UserFactory


@pytest.fixture
def vm(user, project, plan, image, simulator):
    return running_sim_vm(project=project, user=user, plan=plan, image=image, hypervisor=simulator)


def url(vm):
    return f"/api/v1/virtual-machines/{vm.pk}/console/"


def client_for(user):
    client = APIClient()
    client.force_login(user)
    return client


def test_the_api_gives_a_one_time_link_and_stores_only_a_hash(api, vm, user, settings):
    response = api.post(url(vm), {}, format="json")
    assert response.status_code == 201
    body = response.json()
    token = body["websocket_url"].split("token=", 1)[1]
    assert len(token) >= 43  # 32 random bytes, url-safe base64
    assert body["url"] == f"http://testserver/console/?protocol=vnc#token={token}"
    assert body["websocket_url"].startswith(settings.CONSOLE_PROXY_URL)
    session = ConsoleSession.objects.get()
    assert session.token_hash == sha256(token) and token not in str(session.__dict__)
    assert (session.user, session.vm, session.client_ip, session.origin) == (user, vm, "127.0.0.1", "http://testserver")
    assert 0 < (session.expires_at - session.created_at).total_seconds() <= 60


def test_each_request_gets_a_new_token(api, vm):
    tokens = {api.post(url(vm), {}, format="json").json()["websocket_url"] for _ in range(3)}
    assert len(tokens) == 3


def test_a_serial_console_can_be_asked_for_and_nonsense_is_a_400(api, vm):
    assert api.post(url(vm), {"protocol": "serial"}, format="json").json()["protocol"] == "serial"
    response = api.post(url(vm), {"protocol": "telnet"}, format="json")
    assert response.status_code == 400 and "protocol" in response.json()["error"]["fields"]


def test_a_viewer_gets_no_console_unless_the_operator_allows_it(vm, project, settings):
    viewer = UserFactory()
    add_member(project, viewer, Role.VIEWER)
    response = client_for(viewer).post(url(vm), {}, format="json")
    assert response.status_code == 403 and ConsoleSession.objects.count() == 0
    settings.CONSOLE_ALLOW_VIEWERS = True
    assert client_for(viewer).post(url(vm), {}, format="json").status_code == 201


def test_another_projects_vm_is_a_404(vm):
    assert client_for(UserFactory()).post(url(vm), {}, format="json").status_code == 404
    assert ConsoleSession.objects.count() == 0


def test_the_projects_two_factor_rule_applies(api, vm, project):
    project.require_2fa = True
    project.save()
    response = api.post(url(vm), {}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "two_factor_required"


def test_a_vm_that_is_not_active_has_no_console(api, vm):
    vm.status = "stopped"
    vm.save()
    response = api.post(url(vm), {}, format="json")
    assert response.status_code == 409 and "stopped" in response.json()["error"]["message"]


def test_operators_open_any_vms_console(staff_api, vm):
    assert staff_api.post(url(vm), {}, format="json").status_code == 201


def test_the_portal_page_and_its_token_endpoint(client, user, vm, project):
    client.force_login(user)
    detail = client.get(f"/projects/{project.slug}/vms/{vm.pk}/").content.decode()
    assert f'href="/projects/{project.slug}/vms/{vm.pk}/console/"' in detail
    page = client.get(f"/projects/{project.slug}/vms/{vm.pk}/console/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Ctrl-Alt-Del" in html and "Full screen" in html and "Paste text" in html
    assert re.search(r'data-token-url="/projects/[^"]+/console/token/"', html)
    token = client.post(f"/projects/{project.slug}/vms/{vm.pk}/console/token/", {"protocol": "vnc"})
    assert token.status_code == 200 and len(token.json()["token"]) >= 43
    assert ConsoleSession.objects.get().origin == "http://testserver"


def test_the_portal_token_endpoint_explains_a_refusal(client, vm, project):
    viewer = UserFactory()
    add_member(project, viewer, Role.VIEWER)
    client.force_login(viewer)
    assert "Console" not in client.get(f"/projects/{project.slug}/vms/{vm.pk}/").content.decode()
    response = client.post(f"/projects/{project.slug}/vms/{vm.pk}/console/token/")
    assert response.status_code == 403 and "member" in response.json()["error"]["message"]


def test_operators_have_a_console_link_in_admin(client, admin_user, vm):
    login_operator(client, admin_user)
    change = client.get(f"/admin/compute/virtualmachine/{vm.pk}/change/").content.decode()
    assert f'href="/console/vm/{vm.pk}/"' in change
    assert client.get(f"/console/vm/{vm.pk}/").status_code == 200
    assert client.post(f"/console/vm/{vm.pk}/token/").status_code == 200


def test_a_non_operator_cannot_use_the_operator_console(client, user, vm):
    client.force_login(user)
    assert client.get(f"/console/vm/{vm.pk}/").status_code == 302  # to the admin login
    assert client.post(f"/console/vm/{vm.pk}/token/").status_code == 302
    assert ConsoleSession.objects.count() == 0


def test_the_link_page_needs_no_login(client):
    assert client.get("/console/?protocol=serial").status_code == 200


def test_operators_see_console_sessions_in_admin_without_the_hash(client, admin_user, api, vm):
    api.post(url(vm), {}, format="json")
    login_operator(client, admin_user)
    page = client.get("/admin/compute/consolesession/")
    assert page.status_code == 200 and vm.name in page.content.decode()
    session = ConsoleSession.objects.get()
    detail = client.get(f"/admin/compute/consolesession/{session.pk}/change/").content.decode()
    assert session.token_hash not in detail


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def test_the_console_page_has_its_own_content_security_policy(client, user, vm, project, settings):
    settings.CONSOLE_PROXY_URL = "ws://127.0.0.1:6080/"
    client.force_login(user)
    vnc = _policy(client.get(f"/projects/{project.slug}/vms/{vm.pk}/console/"))
    assert vnc["connect-src"] == ["'self'", "ws://127.0.0.1:6080"]
    assert vnc["style-src"] == ["'self'"] and "style-src-attr" not in vnc
    page = client.get(f"/projects/{project.slug}/vms/{vm.pk}/console/?protocol=serial")
    serial = _policy(page)
    nonce = re.search(r'data-style-nonce="([^"]+)"', page.content.decode())[1]
    assert serial["style-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert serial["style-src-attr"] == ["'unsafe-inline'"]
    assert serial["script-src"] == ["'self'"]
    # The rest of the site keeps the strict policy; a proxy on this site's own host is 'self'
    assert _policy(client.get(f"/projects/{project.slug}/vms/{vm.pk}/"))["connect-src"] == ["'self'"]
    settings.CONSOLE_PROXY_URL = "/console/ws/"
    assert _policy(client.get(f"/projects/{project.slug}/vms/{vm.pk}/console/"))["connect-src"] == ["'self'"]
