"""Secrets at rest: TOTP keys encrypted, backup codes hashed, the move off django-otp's
plaintext tables, key rotation by command, lazy decryption, and the CSP header."""

import io
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from accounts.devices import backup_code_hash
from accounts.models import BackupCode, BackupCodeDevice, TOTPDevice
from compute import services as compute_services
from compute.models import Hypervisor, VirtualMachine
from controlplane.crypto import DecryptionError
from tests.fixtures.accounts import PASSWORD, enrol, login_operator, totp_code
from tests.fixtures.factories import HypervisorFactory, UserFactory
from tests.workerproc import ROOT
from workers.engine import driver_for

CREDENTIALS = {"token_id": "cp@pve!cp", "token_secret": "s3cret-token"}


def _raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 (fixed names)
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_totp_key_is_stored_encrypted_and_codes_still_log_in(client, user, settings):
    settings.FIELD_ENCRYPTION_KEY = key = Fernet.generate_key().decode()
    codes = enrol(user)
    stored = _raw("accounts_totpdevice", "key", codes.device.pk)
    # Given a database copy: the key is not in it, only a Fernet token of it
    assert codes.device.key not in stored and re.fullmatch(r"[0-9a-f]{40}", stored) is None
    assert Fernet(key).decrypt(stored.encode()).decode() == codes.device.key
    # The code at login still works, and so does a backup code (stored as a hash only)
    assert client.post("/accounts/login/", {"login": user.email, "password": PASSWORD}).status_code == 302
    assert client.post("/accounts/2fa/verify/", {"otp_token": codes.next()})["Location"] == "/"
    assert not BackupCode.objects.filter(code_hash__in=["aaaa1111", "bbbb2222"]).exists()
    other = Client()
    other.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert other.post("/accounts/2fa/verify/", {"otp_token": "AAAA 1111"})["Location"] == "/"


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_plaintext_devices_and_drops_the_old_tables():
    user = UserFactory()
    executor = MigrationExecutor(connection)
    executor.migrate([("accounts", "0004_user_sessions")])
    # Given django-otp's plugin tables as an older install has them, with one user's devices
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE otp_totp_totpdevice (id serial PRIMARY KEY, user_id int, name varchar(64), "
            "confirmed bool, created_at timestamptz, last_used_at timestamptz, key varchar(80), step int, "
            "t0 bigint, digits int, tolerance int, drift int, last_t bigint)"
        )
        cursor.execute(
            "CREATE TABLE otp_static_staticdevice (id serial PRIMARY KEY, user_id int, name varchar(64), "
            "confirmed bool, created_at timestamptz, last_used_at timestamptz)"
        )
        cursor.execute("CREATE TABLE otp_static_statictoken (id serial PRIMARY KEY, device_id int, token varchar(16))")
        hex_key = "3132333435363738393031323334353637383930"
        cursor.execute(
            "INSERT INTO otp_totp_totpdevice VALUES (7, %s, 'phone', true, now(), null, %s, 30, 0, 6, 1, 0, -1)",
            [user.pk, hex_key],
        )
        cursor.execute("INSERT INTO otp_static_staticdevice VALUES (9, %s, 'backup', true, now(), null)", [user.pk])
        cursor.execute("INSERT INTO otp_static_statictoken (device_id, token) VALUES (9, 'abcd2345')")
    # When the migrations run
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    # Then the devices are ours, the key encrypted, the code hashed, the plaintext tables gone
    device = TOTPDevice.objects.get(user=user)
    assert device.key == hex_key and hex_key not in _raw("accounts_totpdevice", "key", device.pk)
    assert device.verify_token(totp_code(bytes.fromhex(hex_key)))
    backup = BackupCodeDevice.objects.get(user=user)
    assert list(backup.codes.values_list("code_hash", flat=True)) == [backup_code_hash(backup.pk, "abcd2345")]
    assert backup.verify_token("abcd2345") and not backup.verify_token("abcd2345")
    tables = set(connection.introspection.table_names())
    assert not tables & {"otp_totp_totpdevice", "otp_static_staticdevice", "otp_static_statictoken"}


@pytest.mark.django_db
def test_rotate_encryption_key_re_encrypts_credentials_and_totp_keys(user, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = old
    hypervisor = HypervisorFactory(credentials=CREDENTIALS)
    codes = enrol(user)
    # Step 1: new key first, old after it. Step 2: the command
    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"
    call_command("rotate_encryption_key", stdout=(out := io.StringIO()))
    assert "2 secret(s) now under the newest key" in out.getvalue()
    assert Fernet(new).decrypt(_raw("compute_hypervisor", "credentials", hypervisor.pk).encode())
    assert Fernet(new).decrypt(_raw("accounts_totpdevice", "key", codes.device.pk).encode())
    # Step 3: the old key is gone; everything still reads and codes still verify
    settings.FIELD_ENCRYPTION_KEY = new
    assert Hypervisor.objects.get(pk=hypervisor.pk).credentials == CREDENTIALS
    assert TOTPDevice.objects.get(pk=codes.device.pk).verify_token(codes.next())


@pytest.mark.django_db
def test_rotation_with_a_key_that_opens_nothing_fails_clearly(settings):
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    HypervisorFactory(credentials=CREDENTIALS)
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(Exception, match="cannot be decrypted"):
        call_command("rotate_encryption_key", stdout=io.StringIO())


@pytest.mark.django_db
def test_a_wrong_key_breaks_only_the_driver_not_tenant_pages(user, project, plan, image, simulator, settings):
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    simulator.credentials = CREDENTIALS
    simulator.save()
    compute_services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="web-1"
    )
    vm = VirtualMachine.objects.get()
    staff = UserFactory(is_staff=True, is_superuser=True)
    # Given the key changed without rotation (a rotation window done wrong)
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    tenant = Client()
    tenant.force_login(user)
    for url in [
        f"/projects/{project.slug}/vms/",
        f"/projects/{project.slug}/vms/{vm.pk}/",
        f"/projects/{project.slug}/requests/",
        "/api/v1/virtual-machines/",
        f"/api/v1/virtual-machines/{vm.pk}/",
        "/api/v1/hypervisors/",
        "/api/v1/operations/",
        "/api/v1/vm-requests/",
    ]:
        assert tenant.get(url).status_code == 200, url
    operator = login_operator(Client(), staff)
    assert operator.get("/admin/compute/hypervisor/").status_code == 200
    assert operator.get(f"/admin/compute/hypervisor/{simulator.pk}/change/").status_code == 200
    # Saving the row without touching its secret keeps the ciphertext as it was
    hypervisor = Hypervisor.objects.get(pk=simulator.pk)
    before = _raw("compute_hypervisor", "credentials", hypervisor.pk)
    hypervisor.save()
    assert _raw("compute_hypervisor", "credentials", hypervisor.pk) == before
    # Only building a driver needs the secret, and it says what is wrong
    with pytest.raises(DecryptionError, match="FIELD_ENCRYPTION_KEY"):
        driver_for(hypervisor)


@pytest.mark.django_db
def test_the_csp_header_allows_nothing_inline(client):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'" and directives["frame-ancestors"] == "'none'"


def test_no_template_has_inline_script_or_style():
    """The CSP refuses inline code: a template that adds some breaks in the browser."""
    offenders = []
    for path in Path(ROOT).glob("*/templates/**/*.html"):
        if ".venv" in path.parts or "email" in path.parts:  # mail, not served under the CSP: needs inline styles
            continue
        text = path.read_text()
        if re.search(r"<style|\sstyle=\"|<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+=\"", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
