"""On PostgreSQL, the ledger and issued GST documents reject UPDATE and DELETE.

Corrections are new rows (an adjustment, a credit note), never edits.
"""

from django.db import migrations

TABLES = [
    "billing_ledgerentry",
    "billing_invoice",
    "billing_invoiceline",
    "billing_creditnote",
    "billing_creditnoteline",
    "billing_receiptvoucher",
]

FUNCTION = """
CREATE OR REPLACE FUNCTION billing_reject_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '%% rows are append-only: %% rejected', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION billing_reject_change()"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS billing_reject_change()")


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
