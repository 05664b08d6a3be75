"""Read queries on the order mirror. Every one takes ``shop`` first and is scoped by it."""

from django.db.models import Q, QuerySet

from shopapp.models import LineItem, LineItemReplacement, Order, OrderEvent, Shop


def order_search_q(query: str) -> Q:
    """The condition behind the orders search box (``query`` already stripped, not empty).

    It matches an order name with or without its ``#`` ("#1001", "1001"; a prefix) or an email
    (case-insensitive prefix). Other parts (tracking numbers) OR their own conditions onto it.
    """
    if "@" in query:
        return Q(email__istartswith=query)
    bare = query.lstrip("#")
    # Prefix match, so "#10" lists #100-#109 while staff type.
    condition = Q(name__istartswith=f"#{bare}") | Q(name__istartswith=bare)
    if bare.isdigit():
        condition |= Q(order_number=int(bare))
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
