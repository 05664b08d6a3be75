"""A GIN index for the admin's search by tracking number
(tracking.admin_selectors.order_ids_by_tracking_number: ``tracking_numbers @> '["1Z…"]'``).

``jsonb_path_ops`` answers containment only, which is all the search asks, in a smaller index
than the default operator class. PostgreSQL only: SQLite has no JSON containment and searches
the JSON text instead.
"""

from django.db import migrations

NAME = "shipment_tracking_numbers_gin_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f'CREATE INDEX IF NOT EXISTS "{NAME}" ON "tracking_shipment" '
        'USING gin ("tracking_numbers" jsonb_path_ops)'
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f'DROP INDEX IF EXISTS "{NAME}"')


class Migration(migrations.Migration):
    dependencies = [("tracking", "0004_problem_case")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
