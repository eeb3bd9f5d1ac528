"""Audit log. ``audit.record(...)`` is the single entry point (see audit.services.record).

Action names live in audit/choices.py; docs/AUDIT.md describes the log.
"""


def record(**kwargs):
    from .services import record as _record

    return _record(**kwargs)


def worker_actor(hostname: str | None = None) -> str:
    from .services import worker_actor as _worker_actor

    return _worker_actor(hostname)
