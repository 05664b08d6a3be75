"""Read queries for returns, always scoped by shop (shop first). The storefront portal reads
from here too: functions are added, never renamed."""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Case, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from returns import shopify
from returns.eligibility import line_item_unit_value
from returns.models import (
    Resolution,
    ReturnBlocklistEntry,
    ReturnLineItem,
    ReturnPhoto,
    ReturnRequest,
)
from returns.policy import percent, reason_label, return_policy_get
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


# Return names are unique per order ("#1001-R1"); a search is for one return, or a handful.
SEARCH_MAX_ORDERS = 200


def order_ids_by_return_name(*, shop: Shop, query: str) -> list[int]:
    """Local ids of the shop's orders with a return named ``query`` ("#1001-R1", any case,
    the ``#`` optional): the admin's orders search (shopapp.subscribers.ORDER_SEARCH).
    Served by the (shop, UPPER(name)) index of returns migration 0007."""
    bare = query.strip().lstrip("#")
    if not bare or "@" in bare:
        return []
    return list(
        ReturnRequest.objects.filter(shop=shop)
        .filter(Q(name__iexact=f"#{bare}") | Q(name__iexact=bare))
        .order_by("order_id")
        .values_list("order_id", flat=True)
        .distinct()[:SEARCH_MAX_ORDERS]
    )


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


def return_request_list_by_ids(*, shop: Shop, ids: list[int]) -> list[ReturnRequest]:
    """The shop's returns among ``ids`` (others' are left out), with their items, oldest
    first: the queue's bulk actions."""
    return list(
        ReturnRequest.objects.filter(shop=shop, pk__in=ids)
        .select_related("order")
        .prefetch_related("line_items")
        .order_by("created_at", "id")
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


@dataclass(frozen=True)
class QueueItem:
    title: str
    variant_title: str
    quantity: int
    reason: str
    # A photo of this item the shopper sent, with a thumbnail, to show small; else None.
    photo_id: int | None
    # What the shopper wants for it, in words, when the request's items differ ("" else).
    resolution: str = ""


@dataclass(frozen=True)
class QueueRow:
    ret: ReturnRequest
    customer: str
    email: str
    items: list[QueueItem]
    reasons: list[str]
    # The items' worth (discounts deducted), whatever the resolution.
    value: Decimal
    # What the shopper gets back: the stored estimate when the portal made one, else computed
    # from the items and the policy (a return made in Shopify's admin); an exchange's value
    # goes to the new item; once settled, what was paid back.
    estimate: Decimal
    estimate_label: str
    is_received: bool
    status_label: str


def return_is_received(ret: ReturnRequest, lines: list[ReturnLineItem]) -> bool:
    """Approved and every unit back: the merchant's "received" state (Shopify's status stays
    OPEN until the return is processed or closed)."""
    return (
        ret.status == Status.OPEN
        and bool(lines)
        and all(line.received_quantity >= line.quantity for line in lines)
    )


# The statuses in the staff member's admin language (Shopify may add one: shown as it names it).
STATUS_WORDS: dict[str, Any] = {
    Status.SUBMITTED: _("Submitted"),
    Status.REQUESTED: _("Requested"),
    Status.OPEN: _("Approved"),
    Status.DECLINED: _("Declined"),
    Status.CANCELED: _("Canceled"),
    Status.CLOSED: _("Closed"),
}


# The queue's status filter, in the staff member's admin language.
FILTER_WORDS = {
    "requested": _("Requested"),
    "approved": _("Approved"),
    "pending": _("Pending"),
    "closed": _("Closed"),
    "declined": _("Declined"),
    "canceled": _("Canceled"),
}


# What the queue's estimate is, in the staff member's admin language.
ESTIMATE_WORDS = {
    "paid": _("Paid back"),
    "exchange": _("Exchange worth"),
    "refund": _("Refund"),
    "store_credit": _("Store credit"),
    "refund_and_credit": _("Refund and store credit"),
}


def return_status_label(ret: ReturnRequest, lines: list[ReturnLineItem]) -> str:
    if return_is_received(ret, lines):
        return gettext("Received")
    return str(STATUS_WORDS.get(ret.status, ret.status_label))


def queue_rows(returns: Iterable[ReturnRequest], *, shop: Shop) -> list[QueueRow]:
    """Rows for a page of ``return_request_queue``: two queries for the page (items with
    their order lines and photos; the policy), none per row."""
    page = list(returns)
    policy = return_policy_get(shop=shop)
    lines_by_return: dict[int, list[ReturnLineItem]] = {}
    for line in (
        ReturnLineItem.objects.filter(shop=shop, return_request__in=[r.pk for r in page])
        .select_related("line_item")
        .prefetch_related(
            Prefetch("photos", queryset=ReturnPhoto.objects.filter(shop=shop).order_by("id"))
        )
        .order_by("id")
    ):
        lines_by_return.setdefault(line.return_request_id, []).append(line)
    rows = []
    for ret in page:
        lines = lines_by_return.get(ret.pk, [])
        value = sum(
            (line_item_unit_value(line.line_item) * line.quantity for line in lines),
            Decimal("0.00"),
        )
        if ret.refunded_amount > 0:
            estimate, label = ret.refunded_amount, "paid"
        elif ret.resolution == Resolution.EXCHANGE:
            estimate, label = value, "exchange"
        elif ret.refund_estimate > 0:
            estimate, label = ret.refund_estimate, "refund"
        else:
            fees = value * percent(policy.restocking_fee_percent) + policy.return_shipping_fee
            estimate = max(Decimal("0.00"), value - fees).quantize(Decimal("0.01"))
            label = "store_credit" if ret.resolution == Resolution.STORE_CREDIT else "refund"
        if ret.resolution == Resolution.STORE_CREDIT and label == "refund":
            label = "store_credit"
        elif (
            ret.resolution == Resolution.MIXED
            and label == "refund"
            and ret.store_credit_estimate > 0
        ):
            # Items settled differently: the refund and the store credit together.
            label = "refund_and_credit"
        label = str(ESTIMATE_WORDS[label])
        order = ret.order
        customer = " ".join(p for p in (order.customer_first_name, order.customer_last_name) if p)
        rows.append(
            QueueRow(
                ret=ret,
                customer=customer,
                email=ret.customer_email or order.email,
                items=[
                    QueueItem(
                        title=line.line_item.title,
                        variant_title=line.line_item.variant_title,
                        quantity=line.quantity,
                        reason=reason_label(line.reason),
                        photo_id=next((p.pk for p in line.photos.all() if p.thumbnail), None),
                        resolution=str(Resolution(line.resolution).label)
                        if ret.resolution == Resolution.MIXED and line.resolution
                        else "",
                    )
                    for line in lines
                ],
                reasons=sorted({reason_label(line.reason) for line in lines}),
                value=value.quantize(Decimal("0.01")),
                estimate=estimate,
                estimate_label=label,
                is_received=return_is_received(ret, lines),
                status_label=return_status_label(ret, lines),
            )
        )
    return rows
