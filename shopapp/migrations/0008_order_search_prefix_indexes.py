"""Prefix indexes for the admin's orders search (shopapp.orders.selectors.order_search_q).

Django writes ``name__istartswith`` as ``UPPER(name::text) LIKE UPPER('#10%')`` and
a phone number's end as ``REVERSE(phone) LIKE '9910555316%'``. Outside the C collation, PostgreSQL
answers a LIKE prefix from a btree only with the ``text_pattern_ops`` operator class, which
Django's Meta.indexes cannot name portably (SQLite has no operator classes): so these are
PostgreSQL-only, and SQLite (local development) searches without them.
"""

from django.db import migrations

INDEXES = {
    "order_search_upper_name_prefix_idx": '("shop_id", UPPER("name"::text) text_pattern_ops)',
    "order_search_upper_email_prefix_idx": '("shop_id", UPPER("email"::text) text_pattern_ops)',
    # Phone numbers are matched by their end (``REVERSE(phone) LIKE '9910555316%'``).
    "order_search_phone_suffix_idx": '("shop_id", REVERSE("phone"::text) text_pattern_ops)',
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, columns in INDEXES.items():
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "shopapp_order" {columns}')


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("shopapp", "0007_order_version")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
