"""Celery tasks. Thin: load by id, call the engine or a service."""

import socket

from celery import shared_task


@shared_task(name="ping")
def ping(value=None):
    """Round trip through the broker; returns who ran it."""
    return {"value": value, "hostname": socket.gethostname()}
