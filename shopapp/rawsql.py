"""One model row by a plain SQL condition, for the storefront's per-request lookups by key.

Compiling a queryset costs ~0.5 ms of CPU on this app's models, more than PostgreSQL's work
for a lookup by a unique key, and a cached storefront page runs little else
(bench/tracking.py's profile). The SELECT is built once per model; the row is made into an
instance as the ORM makes it (``from_db``, each field's ``from_db_value``).
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


@cache
def _select(model: type[models.Model], vendor: str) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in model._meta.concrete_fields)
    return f"SELECT {columns} FROM {quote(model._meta.db_table)} WHERE "  # noqa: S608


@cache
def _attnames(model: type[models.Model]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def row_fetch_one(model: type[M], where: str, params: list[Any]) -> M | None:
    """The first row of ``model`` matching ``where`` (plain SQL with %s placeholders)."""
    with connection.cursor() as cursor:
        cursor.execute(_select(model, connection.vendor) + where + " LIMIT 1", params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = [
        f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v
        for f, v in zip(model._meta.concrete_fields, row, strict=True)
    ]
    return model.from_db(connection.alias, _attnames(model), values)
