"""Move second factors out of django-otp's plugin tables, which held them in clear text.

Each TOTP device of ``otp_totp_totpdevice`` becomes an ``accounts.TOTPDevice``
(key encrypted), each backup code of ``otp_static_statictoken`` a hashed
``accounts.BackupCode``; then the plugin tables are dropped, so no plaintext
copy stays behind. A database that never had the plugins has nothing to move.
Users stay enrolled; sessions verified with an old device ask for a code again.
"""

from django.db import migrations

from accounts.devices import backup_code_hash

LEGACY_TABLES = ["otp_static_statictoken", "otp_static_staticdevice", "otp_totp_totpdevice"]
DEVICE_COLUMNS = ["id", "user_id", "name", "confirmed", "created_at", "last_used_at"]
TOTP_COLUMNS = ["key", "step", "t0", "digits", "tolerance", "drift", "last_t"]


def _rows(cursor, table: str, columns: list[str]) -> list[dict]:
    quoted = ", ".join(f'"{c}"' for c in columns)
    cursor.execute(f'SELECT {quoted} FROM "{table}" ORDER BY "id"')  # noqa: S608 (fixed names)
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def move_devices(apps, schema_editor):
    connection = schema_editor.connection
    present = set(connection.introspection.table_names())
    TOTPDevice = apps.get_model("accounts", "TOTPDevice")
    BackupCodeDevice = apps.get_model("accounts", "BackupCodeDevice")
    BackupCode = apps.get_model("accounts", "BackupCode")
    with connection.cursor() as cursor:
        if "otp_totp_totpdevice" in present:
            for row in _rows(cursor, "otp_totp_totpdevice", DEVICE_COLUMNS + TOTP_COLUMNS):
                row.pop("id")
                TOTPDevice.objects.create(**row)
        if {"otp_static_staticdevice", "otp_static_statictoken"} <= present:
            for row in _rows(cursor, "otp_static_staticdevice", DEVICE_COLUMNS):
                legacy_id = row.pop("id")
                device = BackupCodeDevice.objects.create(**row)
                cursor.execute('SELECT "token" FROM "otp_static_statictoken" WHERE "device_id" = %s', [legacy_id])
                codes = {backup_code_hash(device.pk, token) for (token,) in cursor.fetchall()}
                BackupCode.objects.bulk_create(BackupCode(device=device, code_hash=h) for h in sorted(codes))
    for table in LEGACY_TABLES:
        if table in present:
            schema_editor.execute(f'DROP TABLE "{table}"')


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_encrypted_otp_devices")]

    operations = [migrations.RunPython(move_devices, migrations.RunPython.noop)]
