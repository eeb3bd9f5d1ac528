"""Test-only Celery tasks for the deployment tests (loaded by tests/deploy/settings.py)."""
