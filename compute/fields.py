"""A JSON field encrypted at rest with Fernet (hypervisor credentials).

The key comes from ``FIELD_ENCRYPTION_KEY`` (a Fernet key, or comma-separated
keys, newest first, for rotation) or is derived from ``SECRET_KEY``.
"""

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


def _fernet() -> MultiFernet:
    configured = [k.strip() for k in settings.FIELD_ENCRYPTION_KEY.split(",") if k.strip()]
    if not configured:
        derived = base64.urlsafe_b64encode(hashlib.sha256(("fernet:" + settings.SECRET_KEY).encode()).digest())
        configured = [derived.decode()]
    try:
        return MultiFernet([Fernet(key) for key in configured])
    except ValueError as exc:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY is not a valid Fernet key: {exc}") from exc


def encrypt_value(value: dict) -> str:
    return _fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_value(token: str) -> dict:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "Stored credentials cannot be decrypted: FIELD_ENCRYPTION_KEY/SECRET_KEY changed without rotation."
        ) from exc


class EncryptedJSONField(models.TextField):
    """Stores a dict as a Fernet token; reads give the dict back."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {}
        return decrypt_value(value)

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if value in (None, ""):
            return {}
        try:
            return json.loads(value)
        except ValueError:
            return decrypt_value(value)

    def get_prep_value(self, value):
        return encrypt_value(value or {})
