"""Audit log. ``audit.record(...)`` is the single entry point (see audit.services)."""


def record(**kwargs):
    from .services import record as _record

    return _record(**kwargs)
