"""Bump Order.version (shopapp 0007) when a problem case is opened, resolved or removed: the
tracking page shows the open ones, so a cached page (tracking.page_cache) must not outlive a
report. PostgreSQL only, like the cache and tracking 0003."""

from django.db import migrations

TABLE = "tracking_problemcase"


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_order_version AFTER INSERT OR UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION shopapp_order_version_bump();"
    )


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_order_version ON {TABLE};")


class Migration(migrations.Migration):
    dependencies = [
        ("shopapp", "0007_order_version"),
        ('tracking', '0009_trackingsettings_delivery_stats_built_at'),
    ]

    operations = [migrations.RunPython(install, remove)]
