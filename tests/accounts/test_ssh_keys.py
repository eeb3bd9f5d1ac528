"""The SSH key parser and library: real keys from ``cryptography`` and ssh-keygen's
fingerprints; the API, the portal page and the request wizard."""

import json
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from accounts.choices import Role
from accounts.models import SSHKey
from accounts.sshkeys import InvalidSSHKey, ssh_key_parse
from audit.models import AuditEvent
from compute.models import VirtualMachine, VMRequest
from tests.fixtures.accounts import add_member
from tests.fixtures.factories import UserFactory, make_billable


def openssh(private, comment="me@laptop") -> str:
    line = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{line.decode()} {comment}".strip()


@pytest.fixture
def ed_key() -> str:
    return openssh(ed25519.Ed25519PrivateKey.generate())


class TestParser:
    @pytest.mark.parametrize(
        "make,key_type,bits",
        [
            (lambda: ed25519.Ed25519PrivateKey.generate(), "ssh-ed25519", 256),
            (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "ssh-rsa", 2048),
            (lambda: ec.generate_private_key(ec.SECP384R1()), "ecdsa-sha2-nistp384", 384),
        ],
    )
    def test_real_keys_parse_with_ssh_keygens_fingerprint(self, tmp_path, make, key_type, bits):
        line = openssh(make())
        parsed = ssh_key_parse(f"  {line}\n")
        (tmp_path / "k.pub").write_text(line + "\n")
        keygen = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True)
        assert keygen.returncode == 0, keygen.stderr
        assert (parsed.key_type, parsed.bits, parsed.comment) == (key_type, bits, "me@laptop")
        assert keygen.stdout.split()[1] == parsed.fingerprint and parsed.line == line

    @pytest.mark.parametrize(
        "text,message",
        [
            ("ssh-ed25519 AAAA... me@laptop", "not valid base64"),
            ("hello world", "Key type 'hello' is not accepted"),
            ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIe2e me", "not a valid ssh-ed25519 key"),
            ("ssh-ed25519", "has a type and a base64 body"),
            ("", "The key is empty"),
            ("-----BEGIN OPENSSH PRIVATE KEY-----", "PEM block"),
            ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "is not accepted"),
        ],
    )
    def test_bad_keys_are_refused_with_a_reason(self, text, message):
        with pytest.raises(InvalidSSHKey, match=message):
            ssh_key_parse(text)

    def test_short_rsa_and_two_lines_are_refused(self, ed_key):
        short = openssh(rsa.generate_private_key(public_exponent=65537, key_size=1024))
        with pytest.raises(InvalidSSHKey, match="1024 bits; at least 2048"):
            ssh_key_parse(short)
        with pytest.raises(InvalidSSHKey, match="exactly one key"):
            ssh_key_parse(f"{ed_key}\n{ed_key}")

    def test_a_key_whose_body_is_another_type_is_refused(self):
        body = openssh(ec.generate_private_key(ec.SECP256R1())).split()[1]
        with pytest.raises(InvalidSSHKey, match="not a valid ssh-ed25519 key"):
            ssh_key_parse(f"ssh-ed25519 {body}")


def _request(api, project, plan, image, simulator, **extra):
    make_billable(project)
    body = {"project": project.slug, "plan": plan.pk, "image": image.pk, "hypervisor": simulator.pk, "name": "k-1"}
    # JSON by content type, so it is JSON from Django's test client too (the API takes only JSON: a form is a 415)
    return api.post("/api/v1/vm-requests/", json.dumps({**body, **extra}), content_type="application/json")


class TestApi:
    def test_the_readme_placeholder_and_hello_world_are_400_on_a_vm_request(self, api, project, plan, image, simulator):
        for text in ("ssh-ed25519 AAAA... me@laptop", "hello world"):
            response = _request(api, project, plan, image, simulator, ssh_public_key=text)
            assert response.status_code == 400, response.json()
            assert "ssh_public_key" in response.json()["error"]["fields"]
        assert not VMRequest.objects.exists()

    def test_save_list_and_use_a_key_then_delete_it_without_touching_the_vm(
        self, api, user, project, plan, image, simulator, ed_key
    ):
        created = api.post("/api/v1/ssh-keys/", {"name": "laptop", "public_key": ed_key}, format="json")
        assert created.status_code == 201, created.json()
        body = created.json()
        assert body["fingerprint"] == ssh_key_parse(ed_key).fingerprint and body["project"] is None
        assert (body["key_type"], body["bits"], body["comment"]) == ("ssh-ed25519", 256, "me@laptop")
        assert [k["name"] for k in api.get("/api/v1/ssh-keys/").json()] == ["laptop"]

        response = _request(api, project, plan, image, simulator, ssh_key=body["id"])
        assert response.status_code == 201, response.json()
        vm = VirtualMachine.objects.get(pk=response.json()["vm"])
        assert vm.ssh_public_key == ed_key

        assert api.delete(f"/api/v1/ssh-keys/{body['id']}/").status_code == 204
        vm.refresh_from_db()
        assert vm.ssh_public_key == ed_key and not SSHKey.objects.exists()
        actions = list(AuditEvent.objects.filter(action__startswith="ssh_key.").values_list("action", flat=True))
        assert sorted(actions) == ["ssh_key.added", "ssh_key.removed"]

    def test_invalid_and_duplicate_keys_are_4xx_and_write_nothing(self, api, ed_key):
        bad = api.post("/api/v1/ssh-keys/", {"name": "x", "public_key": "hello world"}, format="json")
        assert bad.status_code == 400 and "public_key" in bad.json()["error"]["fields"]
        weak = openssh(rsa.generate_private_key(public_exponent=65537, key_size=1024))
        assert api.post("/api/v1/ssh-keys/", {"name": "x", "public_key": weak}, format="json").status_code == 400
        assert not SSHKey.objects.exists()
        assert api.post("/api/v1/ssh-keys/", {"name": "a", "public_key": ed_key}, format="json").status_code == 201
        again = api.post("/api/v1/ssh-keys/", {"name": "b", "public_key": ed_key}, format="json")
        assert again.status_code == 409 and again.json()["error"]["code"] == "key_exists"
        other = openssh(ed25519.Ed25519PrivateKey.generate())
        same_name = api.post("/api/v1/ssh-keys/", {"name": "a", "public_key": other}, format="json")
        assert same_name.status_code == 409 and SSHKey.objects.count() == 1

    def test_project_keys_are_shared_with_members_only(
        self, api, user, team_project, plan, image, simulator, ed_key, client
    ):
        from billing.services import wallet_topup

        wallet_topup(project=team_project, amount="1000.00", actor="system:tests", payment_mode="test")
        created = api.post(
            "/api/v1/ssh-keys/", {"name": "team", "public_key": ed_key, "project": team_project.slug}, format="json"
        )
        assert created.status_code == 201 and created.json()["project"] == team_project.slug
        key_id = created.json()["id"]

        # A member sees it and can build with it, but cannot delete someone else's key
        member = UserFactory()
        add_member(team_project, member, Role.MEMBER)
        client.force_login(member)
        assert [k["id"] for k in client.get(f"/api/v1/ssh-keys/?project={team_project.slug}").json()] == [key_id]
        assert _request(client, team_project, plan, image, simulator, ssh_key=key_id).status_code == 201
        assert client.delete(f"/api/v1/ssh-keys/{key_id}/").status_code == 403

        # A stranger sees nothing and cannot use it in their own project
        stranger = UserFactory()
        client.force_login(stranger)
        assert client.get("/api/v1/ssh-keys/").json() == []
        assert client.get(f"/api/v1/ssh-keys/{key_id}/").status_code == 404
        own = stranger.projects.get()
        wallet_topup(project=own, amount="1000.00", actor="system:tests", payment_mode="test")
        refused = _request(client, own, plan, image, simulator, ssh_key=key_id)
        assert refused.status_code == 400 and "ssh_key" in refused.json()["error"]["fields"]
        shared = api.post("/api/v1/ssh-keys/", {"name": "x", "public_key": ed_key, "project": own.slug}, format="json")
        assert shared.status_code == 400  # not the caller's project


class TestPortal:
    def test_the_page_lists_fingerprints_and_shows_form_errors(self, client, user, ed_key):
        client.force_login(user)
        bad = client.post("/accounts/ssh-keys/new/", {"name": "laptop", "public_key": "ssh-ed25519 AAAA... me@laptop"})
        assert bad.status_code == 400 and "not valid base64" in bad.content.decode()
        assert client.post("/accounts/ssh-keys/new/", {"name": "laptop", "public_key": ed_key}).status_code == 302
        page = client.get("/accounts/ssh-keys/").content.decode()
        assert ssh_key_parse(ed_key).fingerprint in page and "only me" in page

    def test_the_wizard_offers_saved_keys_and_shows_the_fingerprint(
        self, client, user, project, plan, image, simulator, ed_key
    ):
        from accounts.services import ssh_key_create

        key = ssh_key_create(user=user, name="laptop", public_key=ed_key)
        client.force_login(user)
        url = f"/projects/{project.slug}/requests/new/"
        assert key.fingerprint in client.get(url).content.decode()
        data = {"plan": plan.pk, "image": image.pk, "hypervisor": simulator.pk, "name": "app-1"}
        review = client.post(url, {"step": "review", "ssh_key_id": key.pk, **data}).content.decode()
        assert "Review your request" in review and key.fingerprint in review
        hello = client.post(url, {"step": "review", "ssh_public_key": "hello world", **data}).content.decode()
        assert "Review your request" not in hello and "Key type &#x27;hello&#x27; is not accepted" in hello
        done = client.post(url, {"step": "confirm", "ssh_key_id": key.pk, **data})
        assert done.status_code == 302
        assert VirtualMachine.objects.get(name="app-1").ssh_public_key == ed_key
        assert f"ED25519 256 {key.fingerprint}" in client.get(done["Location"]).content.decode()
