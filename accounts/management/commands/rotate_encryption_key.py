"""Re-encrypt every secret stored with field encryption under the newest key.

Step 2 of the key rotation in docs/SECURITY.md: with ``FIELD_ENCRYPTION_KEY=<new>,<old>``
in place everywhere, this rewrites hypervisor credentials and TOTP keys (every
``controlplane.crypto`` encrypted field) under ``<new>``; then ``<old>`` can go.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from controlplane import crypto


class Command(BaseCommand):
    help = "Re-encrypt hypervisor credentials and TOTP keys with the first key of FIELD_ENCRYPTION_KEY."

    def add_arguments(self, parser):
        parser.add_argument(
            "--print-derived-key",
            action="store_true",
            help="Print the key derived from SECRET_KEY (in use while FIELD_ENCRYPTION_KEY was unset) and stop.",
        )

    def handle(self, *args, print_derived_key=False, **options):
        if print_derived_key:
            self.stdout.write(crypto.derived_key())
            return
        total = 0
        try:
            for model, field in crypto.encrypted_fields():
                done = self._rotate(model, field)
                total += done
                self.stdout.write(f"{model._meta.label}.{field.name}: {done} re-encrypted")
        except crypto.DecryptionError as exc:
            raise CommandError(f"{exc} Nothing was changed for that field.") from exc
        self.stdout.write(self.style.SUCCESS(f"{total} secret(s) now under the newest key."))

    @transaction.atomic
    def _rotate(self, model, field) -> int:
        """One transaction per field: rows are locked, read raw and written back rotated."""
        rows = model._base_manager.select_for_update().exclude(**{field.attname: ""}).values_list("pk", field.attname)
        done = 0
        for pk, token in rows:
            model._base_manager.filter(pk=pk).update(**{field.attname: crypto.Sealed(crypto.rotate_token(token))})
            done += 1
        return done
