"""Drop three indexes that another index already covers (each written on every insert, the
events' one ~10M times at a big install base):

- Shipment: Meta's Index(order) doubled the order FK's own index;
- ShipmentLineItem.shipment: the unique (shipment, line_item_shopify_id) serves "by shipment";
- TrackingEvent.shipment: the (shipment, -happened_at) index serves "by shipment".

The FK fields' ``db_index=False`` is a state change only: Django's AlterField would drop and
re-add the foreign key constraints, which validates every row (a long lock on 10M events). The
database side drops the plain index on the column alone, found by introspection.
"""

import django.db.models.deletion
from django.db import migrations, models

FK_COLUMNS = [
    ("tracking_shipmentlineitem", "shipment_id"),
    ("tracking_trackingevent", "shipment_id"),
]


def _single_column_indexes(schema_editor, table: str, column: str) -> list[str]:
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(cursor, table)
    return [
        name
        for name, info in constraints.items()
        if info["index"]
        and info["columns"] == [column]
        and not info["unique"]
        and not info["primary_key"]
        and not info["foreign_key"]
    ]


def drop(apps, schema_editor):
    quote = schema_editor.quote_name
    for table, column in FK_COLUMNS:
        for name in _single_column_indexes(schema_editor, table, column):
            schema_editor.execute(f"DROP INDEX IF EXISTS {quote(name)}")


def restore(apps, schema_editor):
    quote = schema_editor.quote_name
    for table, column in FK_COLUMNS:
        if not _single_column_indexes(schema_editor, table, column):
            schema_editor.execute(
                f"CREATE INDEX {quote(f'{table}_{column}_restored')} "
                f"ON {quote(table)} ({quote(column)})"
            )


class Migration(migrations.Migration):
    dependencies = [("tracking", "0003_order_version_triggers")]

    operations = [
        migrations.RemoveIndex(model_name="shipment", name="tracking_sh_order_i_3aaaa3_idx"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="shipmentlineitem",
                    name="shipment",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="line_items",
                        to="tracking.shipment",
                    ),
                ),
                migrations.AlterField(
                    model_name="trackingevent",
                    name="shipment",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="tracking.shipment",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop, restore)],
        ),
    ]
