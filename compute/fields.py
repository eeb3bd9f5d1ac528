"""Hypervisor credentials are an ``EncryptedJSONField``; the encryption lives in
controlplane/crypto.py (shared with accounts' TOTP keys). Kept here because
migrations name ``compute.fields.EncryptedJSONField``."""

from controlplane.crypto import EncryptedJSONField

__all__ = ["EncryptedJSONField"]
