"""PostgreSQL only: the audit tables reject UPDATE, DELETE and TRUNCATE.

The one way to remove events is the retention path used by ``audit_retention``
(audit.services.retention_apply): inside its transaction it runs
``SET LOCAL audit.allow_retention = 'on'`` and deletes only events that a
checkpoint already covers (``last_event_id >= id``). TRUNCATE is refused unless
the session set ``audit.allow_truncate = 'on'`` (the test suite does, to flush
its database between tests). A database superuser can still switch triggers
off; that is what the hash chain and ``audit_verify`` are for.
"""

from django.db import migrations

from audit.migrations._postgresql import PostgreSQLOnly

FUNCTION = r"""
CREATE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF current_setting('audit.allow_truncate', true) = 'on' THEN
            RETURN NULL;
        END IF;
    ELSIF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_auditevent'
          AND current_setting('audit.allow_retention', true) = 'on'
          AND EXISTS (SELECT 1 FROM audit_auditcheckpoint WHERE last_event_id >= OLD.id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit log is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Old events are removed only by manage.py audit_retention (docs/AUDIT.md).';
END;
$$
"""

TABLES = ("audit_auditevent", "audit_auditcheckpoint")
FORWARD = [FUNCTION]
BACKWARD = []
for table in TABLES:
    FORWARD += [
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION audit_reject_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()",
    ]
    BACKWARD += [f"DROP TRIGGER {table}_append_only ON {table}", f"DROP TRIGGER {table}_no_truncate ON {table}"]
BACKWARD.append("DROP FUNCTION audit_reject_change()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [PostgreSQLOnly(FORWARD, BACKWARD)]
