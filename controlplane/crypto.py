"""Field encryption at rest (Fernet), shared by every app that stores a secret.

The key comes from ``FIELD_ENCRYPTION_KEY`` (a Fernet key, or comma-separated
keys, newest first, for rotation) or, outside production, is derived from
``SECRET_KEY``. Encrypted today: hypervisor credentials
(``compute.Hypervisor.credentials``) and TOTP keys
(``accounts.TOTPDevice.key``). ``rotate_encryption_key`` re-encrypts every
encrypted field with the newest key (docs/SECURITY.md).

Decryption is lazy: a row is loaded with its ciphertext (``Sealed``) and
decrypted the first time the attribute is read, so listing hypervisors or
users never needs the key; only the code that uses the secret (building a
driver, checking a code) fails when the key is wrong. Saving a row whose
secret was never read writes the ciphertext back untouched.
"""

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.query_utils import DeferredAttribute


class DecryptionError(ImproperlyConfigured):
    """A stored secret cannot be decrypted with the configured key(s)."""


def _keys() -> list[str]:
    configured = [k.strip() for k in settings.FIELD_ENCRYPTION_KEY.split(",") if k.strip()]
    if configured:
        return configured
    return [derived_key()]


def derived_key() -> str:
    """The key used while ``FIELD_ENCRYPTION_KEY`` is unset (development): derived from ``SECRET_KEY``."""
    return base64.urlsafe_b64encode(hashlib.sha256(("fernet:" + settings.SECRET_KEY).encode()).digest()).decode()


def fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in _keys()])
    except ValueError as exc:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY is not a valid Fernet key: {exc}") from exc


def encrypt_text(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored secret cannot be decrypted: FIELD_ENCRYPTION_KEY/SECRET_KEY changed without rotation "
            "(keep the old key after the new one in FIELD_ENCRYPTION_KEY, then run rotate_encryption_key)."
        ) from exc


def rotate_token(token: str) -> str:
    """The same secret encrypted with the newest key (raises DecryptionError if no key opens it)."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("A stored secret cannot be decrypted with any configured key.") from exc


class Sealed(str):
    """Ciphertext as loaded from the database, not yet decrypted."""


class _SealedAttribute(DeferredAttribute):
    """Decrypts the loaded ciphertext on first read and keeps the plain value."""

    def __get__(self, instance, cls=None):
        value = super().__get__(instance, cls)
        if instance is None or not isinstance(value, Sealed):
            return value
        plain = self.field.decrypt(value)
        instance.__dict__[self.field.attname] = plain
        return plain

    def __set__(self, instance, value):
        # A data descriptor, so reads always pass through __get__.
        instance.__dict__[self.field.attname] = value


class _EncryptedField(models.TextField):
    descriptor_class = _SealedAttribute
    empty = ""

    def decrypt(self, token: str):
        return decrypt_text(token)

    def encrypt(self, value) -> str:
        return encrypt_text(value)

    def from_db_value(self, value, expression, connection):
        return self.empty_value() if value in (None, "") else Sealed(value)

    def empty_value(self):
        return self.empty

    def pre_save(self, model_instance, add):
        # A secret nobody read is written back as it was loaded (no key needed).
        return model_instance.__dict__.get(self.attname, self.empty_value())

    def get_prep_value(self, value):
        if isinstance(value, Sealed):
            return str(value)
        return self.encrypt(value) if value else ""


class EncryptedTextField(_EncryptedField):
    """A string encrypted at rest (a TOTP key)."""

    def to_python(self, value):
        return value if isinstance(value, str) or value is None else str(value)


class EncryptedJSONField(_EncryptedField):
    """A dict encrypted at rest (hypervisor credentials); reads give the dict back."""

    def empty_value(self):
        return {}

    def decrypt(self, token: str) -> dict:
        return json.loads(decrypt_text(token))

    def encrypt(self, value) -> str:
        return encrypt_text(json.dumps(value, sort_keys=True))

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if value in (None, ""):
            return {}
        try:
            return json.loads(value)
        except ValueError:
            return self.decrypt(value)


def encrypted_fields() -> list[tuple[type[models.Model], _EncryptedField]]:
    """Every (model, field) stored encrypted, for rotation."""
    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, _EncryptedField)
    ]


def is_set(instance: models.Model, attname: str) -> bool:
    """Whether an encrypted field holds a value, without decrypting it."""
    return bool(instance.__dict__.get(attname))
