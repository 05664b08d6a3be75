"""Read queries on the order mirror. Every one takes ``shop`` first and is scoped by it."""

import re

from django.db.models import Q, QuerySet
from django.db.models.functions import Reverse
from django.db.models.lookups import StartsWith
from django.utils.module_loading import import_string

from shopapp.models import LineItem, LineItemReplacement, Order, OrderEvent, Shop
from shopapp.subscribers import ORDER_SEARCH

_PHONE_CHARS = re.compile(r"^\+?[\d\s().-]+$")
# Fewer digits than this is an order number being typed, not a phone number.
_PHONE_MIN_DIGITS = 6


def order_search_q(query: str) -> Q:
    """The platform's part of the orders search (``query`` already stripped, not empty).

    An order name with or without its ``#`` ("#1001", "1001"; a prefix, so "#10" lists
    #100-#109 while staff type), an email (case-insensitive prefix, when the query has a
    letter or an ``@``), or a phone number (its last digits, however typed).
    Each branch is served by its own index (shopapp migration 0007), so PostgreSQL ORs
    bitmaps rather than reading the shop's orders; ``order_search_condition`` adds the
    features' parts (tracking numbers, return names).
    """
    if "@" in query:
        return Q(email__istartswith=query)
    bare = query.lstrip("#")
    condition = Q(name__istartswith=f"#{bare}") | Q(name__istartswith=bare)
    if bare.isdigit():
        condition |= Q(order_number=int(bare))
    if any(c.isalpha() for c in query):
        condition |= Q(email__istartswith=query)
    digits = re.sub(r"\D", "", query)
    if _PHONE_CHARS.match(query) and len(digits) >= _PHONE_MIN_DIGITS:
        # Shopify stores E.164 ("+16135550123"); staff type it any way, often without the
        # country code: match the number's end, as a prefix of the reversed column.
        condition |= Q(StartsWith(Reverse("phone"), digits[::-1]))
    return condition


def order_search_condition(*, shop: Shop, query: str) -> Q:
    """The whole orders search: the platform's fields, and each feature's (listed in
    ``shopapp.subscribers.ORDER_SEARCH``: tracking numbers, return names), which answer with
    the ids of the orders they match. One query per feature, whatever the shop holds."""
    condition = order_search_q(query)
    ids: set[int] = set()
    for path in ORDER_SEARCH:
        ids.update(import_string(path)(shop=shop, query=query))
    if ids:
        condition |= Q(pk__in=sorted(ids))
    return condition


def order_list(*, shop: Shop, query: str = "", include_deleted: bool = False) -> QuerySet[Order]:
    """The shop's orders, newest first, for the embedded admin's list (slice or paginate it).

    ``query``: see ``order_search_q``. Orders deleted in Shopify are hidden.
    """
    orders = Order.objects.filter(shop=shop)
    if not include_deleted:
        orders = orders.filter(deleted_at__isnull=True)
    query = query.strip()
    if query:
        orders = orders.filter(order_search_q(query))
    return orders.order_by("-shopify_created_at", "-id")


def order_get(*, shop: Shop, order_id: int) -> Order | None:
    """One of the shop's orders by its Shopify id (as in URLs), or None: never another shop's."""
    return Order.objects.filter(shop=shop, shopify_id=order_id).first()


def order_timeline(*, shop: Shop, order: Order) -> QuerySet[OrderEvent]:
    """The order's timeline, newest first."""
    return OrderEvent.objects.filter(shop=shop, order=order).order_by("-occurred_at", "-id")


def line_item_replacements(
    *, shop_id: int, order_id: int, line_item_ids: list[int]
) -> dict[int, str]:
    """{Shopify line item id: what it replaces, as "Title · Variant"} for exchange lines."""
    pairs = dict(
        LineItemReplacement.objects.filter(
            shop_id=shop_id, order_id=order_id, line_item_shopify_id__in=line_item_ids
        ).values_list("line_item_shopify_id", "replaces_line_item_shopify_id")
    )
    if not pairs:
        return {}
    titles = {
        line.shopify_id: " · ".join(p for p in (line.title, line.variant_title) if p)
        for line in LineItem.objects.filter(
            shop_id=shop_id, order_id=order_id, shopify_id__in=list(pairs.values())
        )
    }
    return {new: titles[old] for new, old in pairs.items() if old in titles}
