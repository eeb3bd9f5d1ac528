from django.apps import AppConfig


class ProbeConfig(AppConfig):
    name = "tests.deploy.probe"
    label = "deploy_probe"

    def ready(self):
        from . import tasks  # noqa: F401  (registers the tasks with the worker)
