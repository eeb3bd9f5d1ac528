"""Audit's Celery task (beat schedule: settings.EXTRA_BEAT_SCHEDULE). Thin: one service."""

from celery import shared_task

from . import detection


@shared_task(name="detect_brute_force")
def detect_brute_force() -> int:
    """Raise alerts for brute-force patterns in the recent failed logins; returns how many."""
    return len(detection.brute_force_scan())
