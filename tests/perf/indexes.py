"""Index checks with PostgreSQL's EXPLAIN, for tests on a small copy of the scale dataset.

    with captured_selects() as queries:          # every SQL statement a page ran
        client.get(url)
    for sql in queries.statements:
        assert_no_seq_scan(sql)                   # no big table read from end to end
    assert_uses_index(queryset_or_sql, index_on("tracking_trackingevent", "shipment_id"))

Plans are taken with ``enable_seqscan = off`` (for this transaction only): the planner then
reads a table sequentially only when no index can answer the query, so a Seq Scan in the plan
means a missing or unusable index, whatever the table's size. The copy is ANALYZEd too, so the
index chosen among several usable ones is the one production would choose.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext

from bench.scale import BIG_TABLES


def _sql_of(query: QuerySet | str, params: Iterable[Any] | None) -> tuple[str, list[Any]]:
    if isinstance(query, QuerySet):
        sql, qs_params = query.query.get_compiler(using=query.db).as_sql()
        return sql, list(qs_params)
    return query, list(params or [])


def explain(query: QuerySet | str, params: Iterable[Any] | None = None) -> dict:
    """The plan (EXPLAIN (FORMAT JSON), not executed) of a queryset or an SQL statement, taken
    with sequential scans discouraged."""
    sql, values = _sql_of(query, params)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        try:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", values)
            document = cursor.fetchone()[0]
        finally:
            cursor.execute("SET LOCAL enable_seqscan = on")
    if isinstance(document, str):
        import json

        document = json.loads(document)
    return document[0]["Plan"]


def plan_nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def indexes_used(plan: dict) -> set[str]:
    return {node["Index Name"] for node in plan_nodes(plan) if "Index Name" in node}


def seq_scanned(plan: dict) -> set[str]:
    return {node["Relation Name"] for node in plan_nodes(plan) if node["Node Type"] == "Seq Scan"}


def index_on(table: str, *columns: str) -> set[str]:
    """The names of ``table``'s indexes whose key starts with ``columns``: Django names FK and
    Meta indexes with a hash, so tests name them by their columns (any of them will do)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname,
                   array_agg(a.attname ORDER BY k.ord) FILTER (WHERE a.attname IS NOT NULL)
            FROM pg_index x
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_class i ON i.oid = x.indexrelid
            CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
            LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            WHERE t.relname = %s
            GROUP BY i.relname
            """,
            [table],
        )
        found = [
            (name, keys or [])
            for name, keys in cursor.fetchall()
            if list(keys or [])[: len(columns)] == list(columns)
        ]
    if not found:
        raise LookupError(f"no index of {table} starts with {columns}")
    return {name for name, _keys in found}


def assert_no_seq_scan(
    query: QuerySet | str,
    params: Iterable[Any] | None = None,
    *,
    tables: Iterable[str] = BIG_TABLES,
) -> dict:
    """Fail when the plan reads one of ``tables`` (the scale dataset's big ones) end to end."""
    plan = explain(query, params)
    scanned = seq_scanned(plan) & set(tables)
    assert not scanned, f"sequential scan of {sorted(scanned)} in:\n{_sql_of(query, params)[0]}"
    return plan


def assert_uses_index(
    query: QuerySet | str,
    index: str | Iterable[str],
    params: Iterable[Any] | None = None,
) -> dict:
    """Fail unless the plan uses ``index`` (or one of several acceptable ones) and reads no
    big table sequentially. Returns the plan."""
    wanted = {index} if isinstance(index, str) else set(index)
    plan = assert_no_seq_scan(query, params)
    used = indexes_used(plan)
    assert used & wanted, (
        f"expected {sorted(wanted)}, the plan uses {sorted(used) or 'no index'} for:\n"
        f"{_sql_of(query, params)[0]}"
    )
    return plan


@dataclass
class Captured:
    statements: list[str] = field(default_factory=list)

    def touching(self, table: str) -> list[str]:
        pattern = re.compile(rf'(?<![\w"]){table}(?![\w"])|"{table}"')
        return [sql for sql in self.statements if pattern.search(sql)]


@contextmanager
def captured_statements() -> Iterator[Captured]:
    """Every SELECT, UPDATE and DELETE run inside the block, as executable SQL (Django's
    psycopg cursors bind on the client side, so the text carries its values)."""
    result = Captured()
    with CaptureQueriesContext(connection) as captured:
        yield result
    for query in captured.captured_queries:
        sql = query["sql"].lstrip()
        statements = [sql]
        if sql.upper().startswith("SET LOCAL ") or "; SELECT " in sql:
            # Statements sent as one simple query (a setting with the page view counter and
            # the order page's row, the order page's six reads: shopapp.rawsql), each planned
            # on its own. (The test data holds no "; " in a value.)
            statements = sql.split("; ")
        for statement in statements:
            if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                result.statements.append(statement)
