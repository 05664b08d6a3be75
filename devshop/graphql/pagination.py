"""Relay connections over querysets, as Shopify paginates: ``first``/``after`` or
``last``/``before``, at most 250 per page, opaque cursors.

A cursor is base64 of ``{"last_id": …, "last_value": …}``, the shape Shopify's own cursors
decode to; pagination is by keyset (sort value, then id), so pages stay stable while orders
are created or updated.
"""

import base64
import binascii
import json
from typing import Any

from django.db.models import Model, Q, QuerySet
from graphql import GraphQLError

# shopify.dev, "Paginating results with GraphQL": first/last accept at most 250.
MAX_PAGE_SIZE = 250


def cursor_encode(*, pk: int, value: Any) -> str:
    raw = json.dumps({"last_id": pk, "last_value": None if value is None else str(value)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[int, str | None]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return int(data["last_id"]), data["last_value"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor}") from exc


def _beyond(qs: QuerySet, sort_field: str, cursor: str, *, forward: bool) -> Q:
    """Rows strictly after the cursor in the direction of travel."""
    pk, raw_value = cursor_decode(cursor)
    field = qs.model._meta.get_field(sort_field)
    value = field.to_python(raw_value) if raw_value is not None else None
    op = "gt" if forward else "lt"
    return Q(**{f"{sort_field}__{op}": value}) | Q(**{sort_field: value, f"id__{op}": pk})


def connection(
    qs: QuerySet,
    *,
    sort_field: str,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    reverse: bool = False,
) -> dict[str, Any]:
    """One page of ``qs`` as a connection: {"edges", "nodes", "pageInfo"}."""
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    for size in (first, last):
        if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
            raise GraphQLError(
                f"The maximum number of records that can be fetched is {MAX_PAGE_SIZE}."
            )
    ascending = not reverse
    asc_order = [sort_field, "id"] if ascending else [f"-{sort_field}", "-id"]
    desc_order = [f"-{sort_field}", "-id"] if ascending else [sort_field, "id"]

    window = qs
    if after:
        window = window.filter(_beyond(qs, sort_field, after, forward=ascending))
    if before:
        window = window.filter(_beyond(qs, sort_field, before, forward=not ascending))

    if first is not None:
        rows: list[Model] = list(window.order_by(*asc_order)[: first + 1])
        has_next = len(rows) > first
        rows = rows[:first]
        has_previous = (
            bool(after) and qs.exclude(_beyond(qs, sort_field, after, forward=ascending)).exists()
        )
    else:
        assert last is not None
        rows = list(window.order_by(*desc_order)[: last + 1])
        has_previous = len(rows) > last
        rows = list(reversed(rows[:last]))
        has_next = (
            bool(before)
            and qs.exclude(_beyond(qs, sort_field, before, forward=not ascending)).exists()
        )

    edges = [
        {"cursor": cursor_encode(pk=row.pk, value=getattr(row, sort_field)), "node": row}
        for row in rows
    ]
    return {
        "edges": edges,
        "nodes": rows,
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }
