import time

from django.db import transaction
from django_otp.oath import TOTP

import audit
from controlplane.errors import Conflict, InvalidInput

from ..devices import backup_code_hash, backup_code_random
from ..models import BackupCode, BackupCodeDevice, Project, TOTPDevice, User
from ..selectors import user_has_2fa

BACKUP_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"


def _backup_codes_replace(user: User) -> list[str]:
    """New backup codes (only their hashes are stored); the old ones stop working."""
    device, _ = BackupCodeDevice.objects.get_or_create(user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True})
    device.codes.all().delete()
    codes = [backup_code_random() for _ in range(BACKUP_CODE_COUNT)]
    BackupCode.objects.bulk_create(BackupCode(device=device, code_hash=backup_code_hash(device.pk, c)) for c in codes)
    return codes


@transaction.atomic
def totp_device_confirm(*, user: User, key: str, token: str, request=None) -> tuple[TOTPDevice, list[str]]:
    """Turn on 2FA: the first code from the authenticator app proves it holds
    ``key`` (hex, chosen at enrolment). Creates the TOTP device and a fresh set
    of single-use backup codes, which are returned to be shown once."""
    User.objects.select_for_update().filter(pk=user.pk).first()
    if user_has_2fa(user=user):
        raise Conflict("Two-factor authentication is already on.")
    totp = TOTP(bytes.fromhex(key))
    totp.time = time.time()
    code = (token or "").replace(" ", "")
    if not (code.isdigit() and totp.verify(int(code), tolerance=1)):
        raise InvalidInput(
            "That code is not right. Check the clock of your phone and enter the current code.",
            fields={"otp_token": ["Wrong code."]},
        )
    TOTPDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, key=key, confirmed=True, last_t=totp.t())
    codes = _backup_codes_replace(user)
    audit.record(actor=user, action="auth.2fa.enabled", target=user, details={"device": "totp"}, request=request)
    return device, codes


@transaction.atomic
def backup_codes_regenerate(*, user: User, request=None) -> list[str]:
    """Replace the backup codes (the old ones stop working); returns the new ones."""
    if not user_has_2fa(user=user):
        raise Conflict("Turn on two-factor authentication first.")
    codes = _backup_codes_replace(user)
    audit.record(
        actor=user, action="auth.2fa.enabled", target=user, details={"device": "backup_codes"}, request=request
    )
    return codes


@transaction.atomic
def two_factor_disable(*, user: User, actor: User | None = None, request=None) -> None:
    """Remove every OTP device of the user. The caller re-authenticated the
    user (password and a code). Refused while a project requires 2FA of them."""
    actor = actor or user
    if actor.pk == user.pk:
        required_by = Project.objects.filter(memberships__user=user, require_2fa=True).first()
        if required_by is not None:
            raise Conflict(f"Project {required_by.name} requires two-factor authentication; leave it first.")
    TOTPDevice.objects.filter(user=user).delete()
    BackupCodeDevice.objects.filter(user=user).delete()
    audit.record(actor=actor, action="auth.2fa.disabled", target=user, request=request)
