"""Read queries for returns, always scoped by shop (shop first). The storefront portal reads
from here too: functions are added, never renamed."""

from django.db.models import Case, IntegerField, Prefetch, QuerySet, Value, When

from returns import shopify
from returns.models import ReturnBlocklistEntry, ReturnLineItem, ReturnPhoto, ReturnRequest
from shopapp.admin_api.client import admin_client_for_shop
from shopapp.models import LineItem, Order, Shop

Status = ReturnRequest.Status

# The merchant's queue: what needs a decision first, then what is on its way back.
_QUEUE_ORDER = Case(
    When(status=Status.REQUESTED, then=Value(0)),
    When(status=Status.SUBMITTED, then=Value(1)),
    When(status=Status.OPEN, then=Value(2)),
    default=Value(3),
    output_field=IntegerField(),
)
QUEUE_FILTERS = {
    "requested": [Status.REQUESTED],
    "approved": [Status.OPEN],
    "pending": [Status.SUBMITTED],
    "closed": [Status.CLOSED],
    "declined": [Status.DECLINED],
    "canceled": [Status.CANCELED],
}


def return_request_queue(*, shop: Shop, status: str = "", query: str = "") -> QuerySet:
    """Requested first, then submitted (not yet in Shopify), approved, the rest; newest first
    within each. ``status``: a QUEUE_FILTERS key; ``query``: order name, return name or email."""
    qs = ReturnRequest.objects.filter(shop=shop).select_related("order")
    if status in QUEUE_FILTERS:
        qs = qs.filter(status__in=QUEUE_FILTERS[status])
    query = (query or "").strip()
    if query:
        name = query if query.startswith("#") else f"#{query}"
        qs = (
            qs.filter(order__name__iexact=name)
            | qs.filter(name__iexact=query)
            | qs.filter(customer_email__iexact=query)
        )
    return qs.annotate(queue_rank=_QUEUE_ORDER).order_by("queue_rank", "-created_at", "-id")


def return_request_get(*, shop: Shop, request_id: int) -> ReturnRequest | None:
    """One return of the shop with its items and photos; None for another shop's."""
    return (
        ReturnRequest.objects.filter(shop=shop, pk=request_id)
        .select_related("order")
        .prefetch_related(
            Prefetch(
                "line_items",
                queryset=ReturnLineItem.objects.select_related("line_item").prefetch_related(
                    "photos"
                ),
            )
        )
        .first()
    )


def return_request_get_by_shopify_id(*, shop: Shop, shopify_return_id: int) -> ReturnRequest | None:
    return ReturnRequest.objects.filter(shop=shop, shopify_return_id=shopify_return_id).first()


def return_request_list_for_order(*, shop: Shop, order: Order) -> QuerySet:
    return ReturnRequest.objects.filter(shop=shop, order=order).order_by("-created_at", "-id")


def return_request_list_for_customer(
    *, shop: Shop, customer_id: int | None, email: str
) -> QuerySet:
    """The customer's returns, newest first (by Shopify customer id, or email when none)."""
    qs = ReturnRequest.objects.filter(shop=shop).select_related("order")
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    elif email:
        qs = qs.filter(customer_email__iexact=email.strip())
    else:
        return qs.none()
    return qs.order_by("-created_at", "-id")


def return_photo_get(*, shop: Shop, photo_id: int) -> ReturnPhoto | None:
    return ReturnPhoto.objects.filter(shop=shop, pk=photo_id).first()


def return_blocklist(*, shop: Shop) -> QuerySet:
    return ReturnBlocklistEntry.objects.filter(shop=shop).order_by("email")


def return_open_count(*, shop: Shop) -> int:
    """Requests waiting for the merchant's decision."""
    return ReturnRequest.objects.filter(shop=shop, status=Status.REQUESTED).count()


def exchange_variants_for_line_items(
    *, shop: Shop, line_items: list[LineItem]
) -> dict[int, list[tuple[int, str]]]:
    """{line item pk: [(variant id, title)]}: the other variants of each item's product that
    are available for sale, read from Shopify (one Admin API query for up to 15 products).
    An item with no product (deleted, custom) or no other variant gets an empty list.
    Shopify errors (unreachable, throttled) propagate: the portal says "try again"."""
    product_ids = [li.product_id for li in line_items if li.product_id]
    variants = (
        shopify.product_variants_fetch(admin_client_for_shop(shop), product_ids=product_ids)
        if product_ids
        else {}
    )
    return {li.pk: exchange_choices(li, variants.get(li.product_id or 0, [])) for li in line_items}


def exchange_choices(
    line_item: LineItem, variants: list[tuple[int, str, bool]]
) -> list[tuple[int, str]]:
    """[(variant id, title)]: the product's other variants available for sale."""
    return [
        (variant_id, title)
        for variant_id, title, available in variants
        if available and variant_id != line_item.variant_id
    ]
