"""Log context and formatters.

Every log line can carry the request id and the operation id it belongs to.
Both live in context variables:

- ``audit.middleware.RequestIDMiddleware`` (first in ``MIDDLEWARE``) binds
  ``request_id`` for a web request: the id it also puts on ``request`` (which
  ``audit.record`` stores) and in the ``X-Request-ID`` response header. The
  trust rule for an incoming id is in ``audit/request_meta.py``. Django's own
  "Bad Request"/"Not Found" lines are logged after the middleware returned;
  ``ContextFilter`` takes the id from the record's request for those.
- Tasks published during a request carry it in a message header; the worker
  binds it again around the task, with ``task_id`` and the task's
  ``operation_id`` / ``vm_id`` argument when it has one (by name or position).
- The engine binds what it knows: ``with bind(operation_id=op.pk): ...``.

``LOG_FORMAT=json`` switches the console handler to ``JsonFormatter``: one JSON
object per line with ``ts``, ``level``, ``logger``, ``message``, the bound
context and any ``extra=`` fields. The default plain format appends the bound
context as ``key=value`` pairs.
"""

import contextvars
import functools
import inspect
import json
import logging
import traceback
from contextlib import contextmanager
from datetime import UTC, datetime

from celery.signals import before_task_publish, task_postrun, task_prerun

CONTEXT_FIELDS = ("request_id", "operation_id", "task_id", "vm_id", "hypervisor")
_vars = {name: contextvars.ContextVar(name, default=None) for name in CONTEXT_FIELDS}
TASK_HEADER = "request_id"


def context() -> dict:
    """The bound fields that have a value."""
    values = {name: var.get() for name, var in _vars.items()}
    return {name: value for name, value in values.items() if value is not None}


@contextmanager
def bind(**fields):
    """Bind context fields (``operation_id=...``) for the lines logged inside."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"unknown log context field(s): {', '.join(sorted(unknown))}")
    tokens = [(_vars[name], _vars[name].set(value)) for name, value in fields.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Copies the bound context onto every record (``%(request_id)s`` works in formats).

    A record logged with ``extra={"request": ...}`` after the request's context
    was unbound (Django's ``log_response`` for a 4xx a view returned) takes the
    id from that request.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        if getattr(record, "request_id", None) is None:
            request_id = getattr(getattr(record, "request", None), "request_id", None)
            if request_id is not None:
                record.request_id = request_id
        return True


_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; safe for any ``extra=`` value (falls back to ``str``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(context())
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            entry.update(_gunicorn_access_fields(record.args))
        if record.exc_info:
            entry["exc_info"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


def _gunicorn_access_fields(atoms: dict) -> dict:
    fields = {
        "method": atoms.get("m"),
        "path": atoms.get("U"),
        "status": atoms.get("s"),
        "duration_ms": round(int(atoms.get("D", 0)) / 1000, 1),
        "remote_addr": atoms.get("h"),
    }
    request_id = atoms.get("{x-request-id}o")
    if request_id and request_id != "-":
        fields["request_id"] = request_id
    return {key: value for key, value in fields.items() if value not in (None, "-")}


class PlainFormatter(logging.Formatter):
    """The classic one-line format, with the context appended as key=value
    (the bound fields, and those ``ContextFilter`` put on the record)."""

    def __init__(self, fmt="%(asctime)s %(levelname)s %(name)s %(message)s", **kwargs):
        super().__init__(fmt, **kwargs)

    def formatTime(self, record, datefmt=None):  # noqa: N802 (logging's name)
        """UTC, labelled (``2026-12-05T23:01:02.345Z``), like the JSON format: Django sets the
        process's zone to TIME_ZONE (the portal's display zone), which a log must not follow."""
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        on_record = {name: getattr(record, name, None) for name in CONTEXT_FIELDS}
        bound = {name: value for name, value in on_record.items() if value is not None} | context()
        if not bound:
            return line
        return line + " " + " ".join(f"{key}={value}" for key, value in bound.items())


# --- Celery: carry the request id into tasks and bind task context ------------
_task_tokens: dict[str, list] = {}


@before_task_publish.connect(weak=False)
def _add_request_id_header(headers=None, **kwargs):
    request_id = _vars["request_id"].get()
    if request_id and headers is not None:
        headers.setdefault(TASK_HEADER, request_id)


# Task arguments that name a context field (``execute_operation(operation_id)``).
_ID_ARGUMENTS = ("operation_id", "vm_id")


@functools.lru_cache(maxsize=256)
def _id_positions(task_name: str, run) -> dict[str, int]:
    try:
        names = [p.name for p in inspect.signature(run).parameters.values()]
    except (TypeError, ValueError):
        return {}
    return {name: names.index(name) for name in _ID_ARGUMENTS if name in names}


def _task_ids(task, args, kwargs) -> dict:
    found = {name: kwargs[name] for name in _ID_ARGUMENTS if kwargs and kwargs.get(name) is not None}
    for name, position in _id_positions(task.name, task.run).items():
        if name not in found and args and position < len(args):
            found[name] = args[position]
    return found


@task_prerun.connect(weak=False)
def _bind_task_context(task_id=None, task=None, args=None, kwargs=None, **extra):
    fields = {"task_id": task_id}
    if task is not None:
        request_id = getattr(task.request, TASK_HEADER, None)
        if request_id:
            fields["request_id"] = request_id
        fields.update(_task_ids(task, args, kwargs))
    _task_tokens[task_id] = [(_vars[name], _vars[name].set(value)) for name, value in fields.items()]


@task_postrun.connect(weak=False)
def _unbind_task_context(task_id=None, **extra):
    for var, token in reversed(_task_tokens.pop(task_id, [])):
        try:
            var.reset(token)
        except ValueError:  # set in another context (threads pool edge case): just clear it
            var.set(None)
