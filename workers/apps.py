from django.apps import AppConfig

from compute import capabilities

from .drivers.base import registered_drivers


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Workers"

    def ready(self):
        from . import heartbeat  # noqa: F401  (connects worker signals)

        # compute asks compute.capabilities; the drivers' declarations fill it here.
        for kind, cls in registered_drivers().items():
            capabilities.register(kind, capabilities=cls.capabilities, resize_live=cls.resize_live)
