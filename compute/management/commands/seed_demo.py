"""Seed the embedded default: an admin, a demo user, plans, images and a
simulator hypervisor. Idempotent: running it again changes nothing, except the
demo admin's backup codes, which are renewed so they can be printed (only their
hashes are stored)."""

import base64
import os
from decimal import Decimal

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from accounts import services as account_services
from accounts.models import TOTPDevice, User
from compute.models import Hypervisor, Image, ImageReference, Plan

ADMIN_EMAIL = "admin@example.com"
DEMO_EMAIL = "demo@example.com"
PLANS = [
    # name, vcpus, MiB, GiB, type, running/h, stopped/h, approval
    ("bronze", 1, 1024, 20, "container", "0.7500", "0.1000", False),
    ("silver", 2, 4096, 50, "container", "2.5000", "0.3000", False),
    ("gold", 4, 8192, 100, "container", "5.0000", "0.6000", True),
    ("vm-standard", 2, 4096, 60, "vm", "3.0000", "0.4000", True),
]
IMAGES = [("debian-12", "Debian 12 (bookworm)"), ("ubuntu-24.04", "Ubuntu 24.04 LTS"), ("rocky-9", "Rocky Linux 9")]


def _b32(key_hex: str) -> str:
    return base64.b32encode(bytes.fromhex(key_hex)).decode().rstrip("=")


class Command(BaseCommand):
    help = "Create the demo admin, demo user, plans, images and a simulator hypervisor (idempotent)."

    def handle(self, *args, **options):
        admin_password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin-demo-2fa")
        demo_password = os.environ.get("DEMO_USER_PASSWORD", "demo-user-pass")
        if not User.objects.filter(email=ADMIN_EMAIL).exists():
            account_services.user_create(
                email=ADMIN_EMAIL, password=admin_password, full_name="Asha Operator", is_staff=True, is_superuser=True
            )
        if not User.objects.filter(email=DEMO_EMAIL).exists():
            account_services.user_create(email=DEMO_EMAIL, password=demo_password, full_name="Priya Sharma")
        hypervisor, _ = Hypervisor.objects.get_or_create(
            name="sim-local",
            defaults={
                "kind": "simulator",
                "region": "Local (simulated)",
                "queue": "sim-local",
                "connection": {
                    "state_path": str(settings.VAR_DIR / "simulator" / "sim-local.sqlite3"),
                    "latency": 3,
                    "transient_failure_rate": 0.05,
                },
                "max_concurrent_operations": 100,
            },
        )
        for order, (name, vcpus, mib, gib, guest_type, running, stopped, approval) in enumerate(PLANS):
            Plan.objects.get_or_create(
                name=name,
                defaults={
                    "vcpus": vcpus,
                    "memory_mib": mib,
                    "disk_gib": gib,
                    "guest_type": guest_type,
                    "price_hourly_running": Decimal(running),
                    "price_hourly_stopped": Decimal(stopped),
                    "requires_approval": approval,
                    "sort_order": order,
                },
            )
        for guest_type in ("container", "vm"):
            for name, os_name in IMAGES:
                image_name = name if guest_type == "vm" else f"{name}-lxc"
                image, _ = Image.objects.get_or_create(
                    name=image_name, defaults={"os_name": os_name, "guest_type": guest_type}
                )
                ImageReference.objects.get_or_create(
                    image=image, hypervisor=hypervisor, defaults={"ref": f"tmpl-{image_name}"}
                )
        admin_otp = self._admin_second_factor(User.objects.get(email=ADMIN_EMAIL))
        # Billing: a demo supplier and money in the demo project's wallet (VM requests need it).
        call_command("billing_seed_demo", email=[DEMO_EMAIL], stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"  admin: {ADMIN_EMAIL} / {admin_password}")
        self.stdout.write(f"         2FA (required for /admin/): {admin_otp}")
        self.stdout.write(f"  user:  {DEMO_EMAIL} / {demo_password}")

    def _admin_second_factor(self, admin) -> str:
        """Operators cannot use /admin/ without a verified OTP device: give the demo admin a
        TOTP device (secret printed, for an authenticator app) and fresh backup codes."""
        totp = TOTPDevice.objects.filter(user=admin, confirmed=True).first()
        if totp is None:
            totp = TOTPDevice.objects.create(user=admin, name="demo authenticator", confirmed=True)
        codes = account_services.backup_codes_regenerate(user=admin)
        return f"TOTP secret {_b32(totp.key)}; backup codes: {', '.join(codes[:5])}"
