"""A queryset of a fixed shape compiled to SQL once per process and run with new values (issue 25).

Django compiles a queryset to SQL on every evaluation. For the engine's hottest reads (the
claim's operation with its VM, plan, image, projects and hypervisor, the write-back's VM
row lock) building that SQL costs more CPU than PostgreSQL spends running it. A
``CompiledQuery`` builds the queryset from its parameters, compiles it once, and later
runs the same SQL with the new parameters, turning the rows into model instances the way
``QuerySet`` does (the compiler's converters, ``from_db``, ``select_related`` populators), or,
for a ``values_list()`` shape, into its tuples, a page at a time (``rows``: the API's VM list).

Which SQL parameter is which argument is found by compiling twice, with the caller's
``probe`` values and with the first real ones: a parameter that changed must be exactly
(``is``) the argument at the same place in both; one that did not is a constant of the
shape. Anything else (a value the field rewrote: a datetime that SQLite stores as text)
and the shape is never cached: every call then evaluates the queryset as Django would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable, ValuesListIterable, get_related_populators
from django.db.transaction import TransactionManagementError

UNCACHEABLE = object()


class _Shape:
    """What one compilation leaves to run the SQL again: the statement, where each argument
    goes, and how a row becomes model instances."""

    def __init__(self, compiler, sql: str, slots: list[int | None], constants: list, db: str, tuples: bool = False):
        self.sql, self.slots, self.constants = sql, slots, constants
        self.compiler = compiler
        select, klass_info = compiler.select, compiler.klass_info
        self.converters = compiler.get_converters([column[0] for column in select[0 : compiler.col_count]])
        self.for_update = bool(compiler.query.select_for_update)
        # Appending LIMIT/OFFSET parameters is right for a statement without its own (``rows``).
        self.sliceable = not compiler.query.is_sliced and not self.for_update and not compiler.query.combinator
        self.model = None
        if tuples:  # values_list(): the columns as they come, no model instances
            return
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.model = klass_info["model"]
        self.init_list = [column[0].target.attname for column in select[self.start : self.end]]
        self.populators = get_related_populators(klass_info, select, db)

    def params(self, values: Sequence) -> list:
        return [
            values[slot] if slot is not None else constant
            for slot, constant in zip(self.slots, self.constants, strict=True)
        ]


class CompiledQuery:
    def __init__(self, build: Callable[..., QuerySet], *, probe: Sequence):
        self.build, self.probe = build, tuple(probe)
        self._shapes: dict[str, _Shape | object] = {}
        self._lock = threading.Lock()

    def first(self, *values):
        """The first row's model instance (None without one), as ``build(*values).first()`` would
        give it, except that the shape's own ordering is used: order the queryset in ``build``."""
        connection = connections[DEFAULT_DB_ALIAS]
        shape = self._shape(connection, values)
        if shape is UNCACHEABLE or shape.model is None:  # not model instances: Django's own ``first()``
            return self.build(*values).first()
        if shape.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with connection.cursor() as cursor:
            cursor.execute(shape.sql, shape.params(values))
            row = cursor.fetchone()
        if row is None:
            return None
        if shape.converters:
            row = next(iter(shape.compiler.apply_converters([row], shape.converters)))
        obj = shape.model.from_db(DEFAULT_DB_ALIAS, shape.init_list, row[shape.start : shape.end])
        for populator in shape.populators:
            populator.populate(row, obj)
        return obj

    def rows(self, *values, offset: int = 0, limit: int) -> list[tuple]:
        """``list(build(*values)[offset:offset + limit])`` of a ``values_list()`` queryset: the
        tuples, its statement compiled once with LIMIT and OFFSET as parameters (the API's page
        of VMs). A shape that is not a plain ``values_list()`` is evaluated as Django would."""
        connection = connections[DEFAULT_DB_ALIAS]
        shape = self._shape(connection, values)
        if shape is UNCACHEABLE or shape.model is not None or not shape.sliceable:
            return list(self.build(*values)[offset : offset + limit])
        with connection.cursor() as cursor:
            cursor.execute(f"{shape.sql} LIMIT %s OFFSET %s", [*shape.params(values), limit, offset])
            found = cursor.fetchall()
        if shape.converters:
            found = shape.compiler.apply_converters(found, shape.converters)
        width = shape.compiler.col_count
        return [tuple(row[:width]) for row in found]

    def _shape(self, connection, values: Sequence):
        """This database's compiled shape (or UNCACHEABLE), compiled on first use."""
        shape = self._shapes.get(connection.vendor)
        return self._compile(connection, values) if shape is None else shape

    def _compile(self, connection, values: Sequence):
        with self._lock:
            if connection.vendor in self._shapes:
                return self._shapes[connection.vendor]
            queryset = self.build(*values)
            compiler = queryset.query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            probe_sql, probe_params = self.build(*self.probe).query.get_compiler(connection=connection).as_sql()
            slots = _slots(params, probe_params, values, self.probe) if sql == probe_sql else None
            tuples = queryset._iterable_class is not ModelIterable
            if slots is None or (tuples and not _plain_tuples(queryset)):
                shape = UNCACHEABLE
            else:
                shape = _Shape(compiler, sql, slots, list(params), DEFAULT_DB_ALIAS, tuples=tuples)
            self._shapes[connection.vendor] = shape
            return shape


def _slots(params: Sequence, probe_params: Sequence, values: Sequence, probe: Sequence) -> list[int | None] | None:
    """For each SQL parameter, the index of the argument it is (None: a constant), or None
    when a parameter cannot be told apart (the shape is then not cached)."""
    if len(params) != len(probe_params) or len(values) != len(probe):
        return None
    slots = []
    for real, probed in zip(params, probe_params, strict=True):
        if real == probed and type(real) is type(probed) and not any(real is value for value in values):
            slots.append(None)
            continue
        matches = [i for i, value in enumerate(values) if real is value and probed is probe[i]]
        if len(matches) != 1:
            return None
        slots.append(matches[0])
    if sorted(set(slot for slot in slots if slot is not None)) != list(range(len(values))):
        return None
    return slots


def _plain_tuples(queryset: QuerySet) -> bool:
    """A ``values_list()`` whose tuples are its statement's columns in order (Django reorders
    them when an annotation comes before the named fields; named and flat rows are not tuples)."""
    query = queryset.query
    names = [*query.extra_select, *query.values_select, *query.annotation_select]
    fields = [*(queryset._fields or ()), *(name for name in query.annotation_select if name not in queryset._fields)]
    return queryset._iterable_class is ValuesListIterable and (not queryset._fields or fields == names)
