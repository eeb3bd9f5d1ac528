from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Workers"

    def ready(self):
        from . import heartbeat  # noqa: F401  (connects worker signals)
