"""Bump Order.version (shopapp 0007) on every change to a shipment, its line items and events,
and a delay: what the tracking page shows of an order. PostgreSQL only, like the cache."""

from django.db import migrations

VIA_SHIPMENT_FUNCTION = """
CREATE OR REPLACE FUNCTION tracking_order_version_bump_via_shipment() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- AFTER ROW trigger on a table with shipment_id: the order of the shipment(s).
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE shopapp_order SET version = version + 1
        WHERE id = (SELECT order_id FROM tracking_shipment WHERE id = OLD.shipment_id);
    END IF;
    IF TG_OP = 'INSERT' THEN
        UPDATE shopapp_order SET version = version + 1
        WHERE id = (SELECT order_id FROM tracking_shipment WHERE id = NEW.shipment_id);
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.shipment_id IS DISTINCT FROM OLD.shipment_id THEN
            UPDATE shopapp_order SET version = version + 1
            WHERE id = (SELECT order_id FROM tracking_shipment WHERE id = NEW.shipment_id);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
"""

TRIGGERS = [
    ("tracking_shipment", "shopapp_order_version_bump"),
    ("tracking_delay", "shopapp_order_version_bump"),
    ("tracking_shipmentlineitem", "tracking_order_version_bump_via_shipment"),
    ("tracking_trackingevent", "tracking_order_version_bump_via_shipment"),
]


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(VIA_SHIPMENT_FUNCTION)
    for table, function in TRIGGERS:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_order_version AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}();"
        )


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, _function in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_order_version ON {table};")
    schema_editor.execute("DROP FUNCTION IF EXISTS tracking_order_version_bump_via_shipment();")


class Migration(migrations.Migration):
    dependencies = [
        ("shopapp", "0007_order_version"),
        ("tracking", "0002_shipment_display_status_refreshed_at"),
    ]

    operations = [migrations.RunPython(install, remove)]
