"""The Django project. The Celery app is in controlplane.celery (``celery -A controlplane``)."""
