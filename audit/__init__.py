"""Audit log. ``audit.record(...)`` is the single entry point (see audit.services.record);
``audit.record_many([...])`` appends a batch job's events in one go.

Action names live in audit/choices.py; docs/AUDIT.md describes the log.

The two functions import ``audit.services`` when called, not at module level: Django
imports this package (it is in INSTALLED_APPS) before the app registry is ready, and
``services`` imports models. Not a cycle: a load-order rule.
"""


def record(**kwargs):
    from .services import record as _record

    return _record(**kwargs)


def record_many(events: list[dict]):
    from .services import record_many as _record_many

    return _record_many(events)


def worker_actor(hostname: str | None = None) -> str:
    from .services import worker_actor as _worker_actor

    return _worker_actor(hostname)
