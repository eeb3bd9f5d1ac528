"""Writes Django's ORM makes slowly (or only with a savepoint).

``QuerySet.bulk_update`` builds one ``CASE WHEN pk = … THEN …`` per row and field and resolves
each as an expression in Python: for the hourly charge's 200 wallets a batch that was most of
the run's time (issue 25, docs/BENCHMARKS.md). ``rows_update`` sends the same change as one
``UPDATE … FROM (VALUES …)``, which PostgreSQL and SQLite (3.33+) both run.
"""

from __future__ import annotations

from django.db import connections, router
from django.db.models import Model


def rows_update(model: type[Model], rows: list[Model], fields: list[str], *, batch_size: int = 1000) -> int:
    """Write ``fields`` of each of ``rows`` (saved instances of ``model``) to its row, by primary
    key; ``batch_size`` rows per statement. Returns the number of rows updated. Like
    ``bulk_update``: no signals, no ``auto_now`` (set such fields yourself)."""
    if not rows:
        return 0
    connection = connections[router.db_for_write(model)]
    meta, quote = model._meta, connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    typed = connection.vendor == "postgresql"  # a VALUES list of parameters needs its column types there
    placeholder = "({})".format(
        ", ".join(f"CAST(%s AS {field.cast_db_type(connection)})" if typed else "%s" for field in [meta.pk, *columns])
    )
    table = quote(meta.db_table)
    assignments = ", ".join(f"{quote(field.column)} = v.column{n}" for n, field in enumerate(columns, start=2))
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            params = []
            for row in chunk:
                params.append(meta.pk.get_db_prep_save(row.pk, connection))
                params += [field.get_db_prep_save(getattr(row, field.attname), connection) for field in columns]
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([placeholder] * len(chunk))}) AS v"
                f" WHERE {table}.{quote(meta.pk.column)} = v.column1",
                params,
            )
            updated += cursor.rowcount
    return updated


def insert_unless_conflict(obj: Model) -> bool:
    """Insert ``obj`` (a new instance) as ``save(force_insert=True)`` would, with ``ON CONFLICT DO
    NOTHING``: True when the row was written (``obj.pk`` is then set), False when a unique
    constraint (partial ones included) already holds such a row. Unlike catching the
    IntegrityError of a plain INSERT, the transaction stays usable, so no savepoint is needed
    around it (two statements fewer). Other errors (a missing foreign key) still raise. No
    signals. PostgreSQL and SQLite (3.35+)."""
    model = type(obj)
    connection = connections[router.db_for_write(model, instance=obj)]
    meta, quote = model._meta, connection.ops.quote_name
    fields = [field for field in meta.local_concrete_fields if field is not meta.auto_field or obj.pk is not None]
    values = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)})"
            f" VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT DO NOTHING RETURNING {quote(meta.pk.column)}",
            values,
        )
        row = cursor.fetchone()
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding, obj._state.db = False, connection.alias
    return True
