"""Order.version, and the triggers that bump it on every change to the order or its line items.

PostgreSQL only: the cache keyed by it is only used there (SQLite, the local default, renders
every page). ``shopapp_order_version_bump`` is shared with the feature apps' tables that carry
``order_id`` (tracking's migration 0003 installs it on shipments and delays).
"""

from django.db import migrations, models

BUMP_FUNCTION = """
CREATE OR REPLACE FUNCTION shopapp_order_version_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- AFTER ROW trigger on a table with order_id: the order(s) the row was and is under.
    IF TG_OP = 'INSERT' THEN
        UPDATE shopapp_order SET version = version + 1 WHERE id = NEW.order_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE shopapp_order SET version = version + 1 WHERE id = OLD.order_id;
    ELSE
        UPDATE shopapp_order SET version = version + 1 WHERE id = OLD.order_id;
        IF NEW.order_id IS DISTINCT FROM OLD.order_id THEN
            UPDATE shopapp_order SET version = version + 1 WHERE id = NEW.order_id;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
"""

SELF_FUNCTION = """
CREATE OR REPLACE FUNCTION shopapp_order_version_self() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Any UPDATE of the order moves its version on from the stored one, whatever the
    -- statement wrote (a save() from a stale instance writes an old version back).
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;
"""

INSTALL = [
    BUMP_FUNCTION,
    SELF_FUNCTION,
    """
    CREATE TRIGGER shopapp_order_version_self BEFORE UPDATE ON shopapp_order
    FOR EACH ROW EXECUTE FUNCTION shopapp_order_version_self();
    """,
    """
    CREATE TRIGGER shopapp_lineitem_order_version AFTER INSERT OR UPDATE OR DELETE
    ON shopapp_lineitem FOR EACH ROW EXECUTE FUNCTION shopapp_order_version_bump();
    """,
]
REMOVE = [
    "DROP TRIGGER IF EXISTS shopapp_lineitem_order_version ON shopapp_lineitem;",
    "DROP TRIGGER IF EXISTS shopapp_order_version_self ON shopapp_order;",
    "DROP FUNCTION IF EXISTS shopapp_order_version_self();",
    "DROP FUNCTION IF EXISTS shopapp_order_version_bump();",
]


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in INSTALL:
        schema_editor.execute(statement)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in REMOVE:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("shopapp", "0006_webhookevent_fewer_indexes")]

    operations = [
        migrations.AddField(
            model_name="order",
            name="version",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(install, remove),
    ]
