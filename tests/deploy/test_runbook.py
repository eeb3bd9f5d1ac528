"""The key-rotation procedure of docs/SECURITY.md, step by step."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from compute.models import Hypervisor
from tests.fixtures.factories import HypervisorFactory

SECRET = {"token_id": "root@pam!cp", "token_secret": "0f0e-secret"}


def _stored(hypervisor) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM compute_hypervisor WHERE id = %s", [hypervisor.pk])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_rotating_field_encryption_key_as_the_runbook_says(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = old
    hypervisor = HypervisorFactory(credentials=SECRET)
    assert Fernet(old).decrypt(_stored(hypervisor).encode())

    # Step 1: the new key first, the old one after it; everything still reads
    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"
    assert Hypervisor.objects.get(pk=hypervisor.pk).credentials == SECRET

    # Step 2: the command re-encrypts: the credentials are now under the new key
    call_command("rotate_encryption_key", stdout=io.StringIO())
    assert Fernet(new).decrypt(_stored(hypervisor).encode())

    # Step 3: drop the old key; the credentials still read
    settings.FIELD_ENCRYPTION_KEY = new
    assert Hypervisor.objects.get(pk=hypervisor.pk).credentials == SECRET


@pytest.mark.django_db
def test_the_derived_key_printed_by_the_runbook_reads_credentials_saved_without_a_key(settings):
    # Given credentials saved while FIELD_ENCRYPTION_KEY was unset (key derived from SECRET_KEY)
    settings.FIELD_ENCRYPTION_KEY = ""
    hypervisor = HypervisorFactory(credentials=SECRET)
    # When the command prints the derived key and it is listed as the old key
    call_command("rotate_encryption_key", "--print-derived-key", stdout=(out := io.StringIO()))
    derived = out.getvalue().strip()
    settings.FIELD_ENCRYPTION_KEY = f"{Fernet.generate_key().decode()},{derived}"
    # Then the credentials read
    assert Hypervisor.objects.get(pk=hypervisor.pk).credentials == SECRET
