"""Model rows by a plain SQL condition, for the storefront's per-request lookups by key.

Compiling a queryset costs ~0.5 ms of CPU on this app's models, more than PostgreSQL's work
for a lookup by a unique key, and a cached storefront page runs little else
(bench/tracking.py's profile). The SELECT is built once per model; the row is made into an
instance as the ORM makes it (the backend's and each field's converters, then ``from_db``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

from django.db import connection, models
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_aware, make_aware

M = TypeVar("M", bound=models.Model)


def _fields(model: type[models.Model], deferred: tuple[str, ...]) -> list[Any]:
    return [f for f in model._meta.concrete_fields if f.attname not in deferred]


@cache
def _select(model: type[models.Model], vendor: str, deferred: tuple[str, ...] = ()) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _fields(model, deferred))
    return f"SELECT {columns} FROM {quote(model._meta.db_table)} WHERE "  # noqa: S608


@cache
def _attnames(model: type[models.Model], deferred: tuple[str, ...] = ()) -> list[str]:
    return [f.attname for f in _fields(model, deferred)]


def row_fetch_one(
    model: type[M], where: str, params: list[Any], *, deferred: tuple[str, ...] = ()
) -> M | None:
    """The first row of ``model`` matching ``where`` (plain SQL with %s placeholders);
    ``deferred`` fields are left unread, as ``QuerySet.defer`` leaves them."""
    found = rows_fetch(model, where + " LIMIT 1", params, deferred=deferred)
    return found[0] if found else None


def rows_fetch(
    model: type[M], where: str, params: list[Any], *, deferred: tuple[str, ...] = ()
) -> list[M]:
    """Every row of ``model`` matching ``where`` (plain SQL with %s placeholders; it may end
    in ORDER BY), each value converted as the ORM converts it (the backend's converters, then
    the field's: SQLite's text timestamps, JSON), made into instances with ``from_db``."""
    with connection.cursor() as cursor:
        cursor.execute(_select(model, connection.vendor, deferred) + where, params)
        rows = cursor.fetchall()
    return _made(model, rows, deferred)


def rows_fetch_together(
    queries: list[tuple[type[models.Model], str, list[Any]]],
) -> list[list[Any]]:
    """``rows_fetch`` for each (model, where, params), in one round trip where the driver
    allows: on PostgreSQL with psycopg's client-side binding (Django's default) the SELECTs go
    as one simple query and their results are read in turn; elsewhere, one after the other.
    A page that reads six tables pays one round trip's CPU and wait instead of six."""
    if connection.vendor != "postgresql" or connection.settings_dict.get("OPTIONS", {}).get(
        "server_side_binding"
    ):
        return [rows_fetch(model, where, params) for model, where, params in queries]
    sql = "; ".join(_select(model, connection.vendor, ()) + where for model, where, _ in queries)
    params = [value for _, _, values in queries for value in values]
    results: list[list[Any]] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for i, (model, _, _) in enumerate(queries):
            if i:
                cursor.nextset()
            results.append(_made(model, cursor.fetchall(), ()))
    return results


def _made(model: type[M], rows: list[Any], deferred: tuple[str, ...]) -> list[M]:
    converters = _converters(model, connection.vendor, deferred)
    names = _attnames(model, deferred)
    made = []
    for row in rows:
        values = list(row)
        for i, (col, funcs) in converters:
            for func in funcs:
                values[i] = func(values[i], col, connection)
        made.append(model.from_db(connection.alias, names, values))
    return made


@cache
def _converters(
    model: type[models.Model], vendor: str, deferred: tuple[str, ...]
) -> list[tuple[int, tuple[Any, list]]]:
    out = []
    for i, f in enumerate(_fields(model, deferred)):
        col = f.get_col(model._meta.db_table)
        funcs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if funcs:
            out.append((i, (col, funcs)))
    return out


@cache
def columns_of(model: type[models.Model], alias: str, deferred: tuple[str, ...] = ()) -> str:
    """``model``'s columns qualified by ``alias``, in ``instance_from_row``'s order: for a
    statement that reads several models' rows at once (a join, one row)."""
    quote = connection.ops.quote_name
    return ", ".join(f"{quote(alias)}.{quote(f.column)}" for f in _fields(model, deferred))


def column_count(model: type[models.Model], deferred: tuple[str, ...] = ()) -> int:
    return len(_attnames(model, deferred))


def instance_from_row(
    model: type[M], values: list[Any], *, deferred: tuple[str, ...] = ()
) -> M | None:
    """``model``'s instance from its columns (``columns_of``' order) in a row read by a plain
    cursor, converted as ``rows_fetch`` converts; None when its primary key is NULL (an outer
    join that found nothing)."""
    names = _attnames(model, deferred)
    if values[names.index(model._meta.pk.attname)] is None:
        return None
    values = list(values)
    for i, (col, funcs) in _converters(model, connection.vendor, deferred):
        for func in funcs:
            values[i] = func(values[i], col, connection)
    return model.from_db(connection.alias, names, values)


def db_datetime(value: Any) -> datetime | None:
    """A timestamp column read by a plain cursor: PostgreSQL's driver gives an aware datetime,
    SQLite's the stored text (UTC, as Django writes it)."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return parsed if is_aware(parsed) else make_aware(parsed, UTC)
