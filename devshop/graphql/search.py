"""Shopify's search syntax for the ``query`` argument of ``orders``, turned into a Q.

shopify.dev, "Search syntax": terms are ``field:value`` joined by spaces (implicit AND) or
``AND``; ``-field:value`` or ``NOT`` negates; range comparators ``:>``, ``:>=``, ``:<``, ``:<=``;
values may be quoted with single or double quotes. A bare word searches the default fields.
Shopify ignores filters it doesn't know (and warns in ``extensions.search``); so does this.
``OR`` and parentheses are not supported here.
"""

import re
from datetime import UTC, datetime, time, timedelta

from django.db.models import Q
from django.utils.dateparse import parse_date, parse_datetime

TERM = re.compile(
    r"""(?P<neg>-)?(?:(?P<field>[a-z_]+):(?P<op>>=|<=|>|<)?)?"""
    r"""(?P<value>'[^']*'|"[^"]*"|\S+)"""
)
COMPARATORS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
DATE_FIELDS = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "processed_at": "processed_at",
}
# REST-style values the Orders search accepts → our stored GraphQL enum values.
FINANCIAL = {
    "authorized": "AUTHORIZED",
    "paid": "PAID",
    "partially_paid": "PARTIALLY_PAID",
    "partially_refunded": "PARTIALLY_REFUNDED",
    "pending": "PENDING",
    "refunded": "REFUNDED",
    "voided": "VOIDED",
    "expired": "EXPIRED",
}
FULFILLMENT = {
    "shipped": ["FULFILLED"],
    "fulfilled": ["FULFILLED"],
    "partial": ["PARTIALLY_FULFILLED"],
    "unshipped": ["UNFULFILLED", "OPEN"],
    "unfulfilled": ["UNFULFILLED", "OPEN", "PARTIALLY_FULFILLED"],
    "on_hold": ["ON_HOLD"],
}


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _parse_when(value: str) -> tuple[datetime, datetime | None]:
    """A datetime (an instant) or a date (a whole UTC day: start, end)."""
    parsed = parse_datetime(value)
    if parsed is not None:
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), None
    day = parse_date(value)
    if day is None:
        raise ValueError(value)
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _date_q(column: str, op: str | None, value: str) -> Q:
    if value.lower() == "now":
        start, end = datetime.now(tz=UTC), None
    else:
        start, end = _parse_when(value)
    if op is None:
        return Q(**{f"{column}__gte": start, f"{column}__lt": end}) if end else Q(**{column: start})
    lookup = COMPARATORS[op]
    if end is not None and lookup in {"gt", "lte"}:
        # A whole day: "after 2024-01-01" means from the next day on.
        return Q(**{f"{column}__{'gte' if lookup == 'gt' else 'lt'}": end})
    return Q(**{f"{column}__{lookup}": start})


def _term_q(field: str | None, op: str | None, value: str) -> Q | None:
    if field is None:
        return Q(name__iexact=value) | Q(name__iexact=f"#{value}") | Q(email__icontains=value)
    if field in DATE_FIELDS:
        try:
            return _date_q(DATE_FIELDS[field], op, value)
        except ValueError:
            return None
    if field == "name":
        return Q(name__iexact=value if value.startswith("#") else f"#{value}") | Q(
            name__iexact=value
        )
    if field == "email":
        return Q(email__iexact=value)
    if field == "id":
        try:
            number = int(value.rsplit("/", 1)[-1])
        except ValueError:
            return None
        return Q(**{f"shopify_id__{COMPARATORS[op]}" if op else "shopify_id": number})
    if field == "financial_status":
        return Q(financial_status=FINANCIAL.get(value.lower(), value.upper()))
    if field == "fulfillment_status":
        return Q(fulfillment_status__in=FULFILLMENT.get(value.lower(), [value.upper()]))
    if field == "tag":
        return Q(tags__iregex=rf"(^|,\s*){re.escape(value)}\s*(,|$)")
    if field == "test":
        return Q(test=value.lower() == "true")
    if field == "status":
        status = value.lower()
        if status == "open":
            return Q(closed_at__isnull=True, cancelled_at__isnull=True)
        if status == "closed":
            return Q(closed_at__isnull=False)
        if status == "cancelled":
            return Q(cancelled_at__isnull=False)
        return Q() if status == "any" else None
    if field == "customer_id":
        return Q(customer__shopify_id=value) if value.isdigit() else None
    return None


def orders_search_q(query: str | None) -> Q:
    """A Q for the ``orders(query:)`` argument; unknown filters are ignored as Shopify does."""
    result = Q()
    if not query:
        return result
    negate_next = False
    for match in TERM.finditer(query.strip()):
        raw = match.group("value")
        if match.group("field") is None and raw in {"AND", "NOT"}:
            negate_next = raw == "NOT"
            continue
        term = _term_q(match.group("field"), match.group("op"), _unquote(raw))
        if term is None:
            negate_next = False
            continue
        if match.group("neg") or negate_next:
            term = ~term
        negate_next = False
        result &= term
    return result


# The ``products(query:)`` filters the devshop knows (shopify.dev, "products" query: status,
# product_type, vendor, title); others are ignored, as Shopify ignores unknown ones.
_PRODUCT_FIELDS = {"product_type": "product_type", "vendor": "vendor", "title": "title"}


def products_search_q(query: str | None) -> Q:
    result = Q()
    if not query:
        return result
    negate_next = False
    for match in TERM.finditer(query.strip()):
        raw, field = match.group("value"), match.group("field")
        if field is None and raw in {"AND", "NOT"}:
            negate_next = raw == "NOT"
            continue
        value = _unquote(raw)
        term: Q | None = None
        if field == "status":
            statuses = [v.strip().upper() for v in value.split(",") if v.strip()]
            term = Q(status__in=statuses)
        elif field in _PRODUCT_FIELDS:
            term = Q(**{f"{_PRODUCT_FIELDS[field]}__iexact": value})
        elif field is None:
            term = Q(title__icontains=value)
        if term is None:
            negate_next = False
            continue
        if match.group("neg") or negate_next:
            term = ~term
        negate_next = False
        result &= term
    return result
