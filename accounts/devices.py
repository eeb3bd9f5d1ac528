"""Second-factor devices whose secrets are not readable from a database copy.

django-otp's own ``TOTPDevice`` and ``StaticToken`` keep the TOTP key and the
backup codes in clear text. These django-otp devices do the same job
(django-otp finds them like any ``Device``: the admin's OTP login, session
verification) but:

- ``TOTPDevice.key`` is encrypted at rest (controlplane/crypto.py, the same
  Fernet key as hypervisor credentials) and decrypted only when a code is
  checked or the QR code is drawn. The code checking is django-otp's own.
- ``BackupCode`` stores the SHA-256 of device id + code, never the code.

Migration 0005 moved the devices django-otp's plugins held.
"""

import hashlib
import secrets
import time
from base64 import b32encode
from binascii import unhexlify
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import models
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP
from django_otp.util import random_hex

from controlplane.crypto import EncryptedTextField

BACKUP_CODE_BYTES = 10  # 80 bits: 16 base32 characters, shown as four groups of four


def default_key() -> str:
    return random_hex(20)


class TOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    """An authenticator app (RFC 6238); ``key`` is the hex secret, encrypted at rest."""

    key = EncryptedTextField(default=default_key, help_text="Hex secret, encrypted at rest.")
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(default=-1, help_text="Time step of the last accepted code (no replay).")

    class Meta(Device.Meta):
        verbose_name = "TOTP device"

    @property
    def bin_key(self) -> bytes:
        return unhexlify(self.key.encode())

    def get_throttle_factor(self):
        return 1

    def verify_token(self, token) -> bool:
        """A code of the current step (± ``tolerance``) newer than the last accepted one.
        As django-otp's TOTPDevice: failures throttle exponentially, drift is followed."""
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        try:
            code = int(token)
        except (TypeError, ValueError):
            code = None
        totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
        totp.time = time.time()
        if code is not None and totp.verify(code, self.tolerance, self.last_t + 1):
            self.last_t, self.drift = totp.t(), totp.drift
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
            return True
        self.throttle_increment(commit=True)
        return False

    @property
    def config_url(self) -> str:
        """The otpauth:// URL an authenticator app scans (issuer from ``OTP_TOTP_ISSUER``)."""
        issuer = (getattr(settings, "OTP_TOTP_ISSUER", "") or "").replace(":", "")
        label = f"{issuer}:{self.user.get_username()}" if issuer else self.user.get_username()
        params = {"secret": b32encode(self.bin_key), "algorithm": "SHA1", "digits": self.digits, "period": self.step}
        query = urlencode(params) + (f"&issuer={quote(issuer)}" if issuer else "")
        return f"otpauth://totp/{quote(label)}?{query}"


def backup_code_normalize(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def backup_code_hash(device_id: int, code: str) -> str:
    return hashlib.sha256(f"{device_id}:{backup_code_normalize(code)}".encode()).hexdigest()


def backup_code_random() -> str:
    raw = b32encode(secrets.token_bytes(BACKUP_CODE_BYTES)).decode().lower()
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


class BackupCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """Single-use backup codes; only their hashes are stored (``BackupCode``)."""

    class Meta(Device.Meta):
        verbose_name = "backup code set"

    def get_throttle_factor(self):
        return 1

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        used = self.codes.filter(code_hash=backup_code_hash(self.pk, str(token))).delete()[0]
        if used:
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
        else:
            self.throttle_increment()
        return bool(used)


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "code_hash"], name="backup_code_unique")]

    def __str__(self):
        return f"backup code of {self.device}"
