"""What a shopper may return from an order, item by item, and what they would get back.

Two readings, one set of rules:

    order_eligibility_local(shop, order)   every portal page view: no Admin API call in the
      ├─ units shipped: the order's live shipments (fulfillments/create|update webhooks)
      ├─ units held: every local return not declined or canceled (the portal's own and those
      │     made in Shopify's admin, from returns/* webhooks), less what a refund already took
      │     off the line (orders/updated: current_quantity)
      ├─ product tags, type and variants: ProductInfo, read from Shopify once per product and
      │     reused for PRODUCT_FACTS_PAGE_TTL
      └─ fallback: an order Shopify calls fulfilled with no shipment here (older than the
            install, a webhook still on its way) has its fulfillments read once through
            tracking.refresh and stored; from then on it is local like the rest

    order_eligibility(shop, order)         the submission: Shopify decides
      ├─ Shopify: returnableFulfillments(orderId:)  what is still returnable after earlier
      │     returns (shopify.dev "Build a return management workflow"), with the fulfillment
      │     line item ids a returnRequest needs; plus product tags/type (ProductInfo cache)
      └─ local: requests stored but not yet accepted by Shopify hold their units too, so the
            same items cannot be requested twice while a request is open

    both ─ policy: final-sale tags, product types, discounted items, the window counted from
            delivery (Shipment.delivered_at) or fulfillment + transit allowance (Shopify's own
            self-serve rule, help.shopify.com "Return rules")

Where the two disagree (a webhook not delivered yet), the submission's reading wins and the
portal tells the shopper what changed. Shopify errors (unreachable, throttled) propagate: the
caller says "try again", it never guesses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _

from returns import shopify
from returns.models import (
    ProductInfo,
    Resolution,
    ReturnLineItem,
    ReturnPolicy,
    ReturnRequest,
)
from returns.policy import percent, policy_list, return_policy_get
from shopapp.admin_api.client import admin_client_for_shop
from shopapp.auth.selectors import shop_zone
from shopapp.models import LineItem, Order, Shop
from shopapp.rawsql import rows_fetch
from tracking.refresh import order_shipments_refresh
from tracking.selectors import LineItemShipping, line_item_shipping, line_items_shipped

logger = logging.getLogger(__name__)

# Product tags and types change rarely and are not pushed to the app (no products/* topic):
# a quarter of an hour bounds how long a newly "final sale" product can still be returned,
# while the several portal pages of one shopper's visit cost one product read.
PRODUCT_INFO_TTL = timedelta(minutes=15)
# Page views take product facts (tags, type, variants) this old: the submission reads tags and
# type again when older than PRODUCT_INFO_TTL and the exchange variant's stock afresh, so a
# page may show what a product was a few hours ago but never accepts a return on it.
PRODUCT_FACTS_PAGE_TTL = timedelta(hours=6)
# An order's fulfillments read through the fallback are not read again for this long, even
# when Shopify's answer still leaves a line without a shipment (beyond the query's first page).
FULFILLMENTS_FETCH_INTERVAL_SECONDS = 60 * 60
REDIS_TIMEOUT_SECONDS = 0.25
# Fulfillment statuses on order lines (REST ``fulfillment_status``) that say units left.
_SHIPPED_LINE_STATUSES = frozenset({"fulfilled", "partial"})
CENT = Decimal("0.01")

# Statuses in which a local request still holds its units.
OPEN_STATUSES = (
    ReturnRequest.Status.SUBMITTED,
    ReturnRequest.Status.REQUESTED,
    ReturnRequest.Status.OPEN,
)
# Statuses whose units went back to the shopper's hands (returnDeclineRequest, returnCancel):
# every other status, including ones Shopify adds later, keeps its units out of reach.
RELEASED_STATUSES = (ReturnRequest.Status.DECLINED, ReturnRequest.Status.CANCELED)


class ReasonCode:
    ELIGIBLE = ""
    ORDER_CANCELLED = "order_cancelled"
    GIFT_CARD = "gift_card"
    NOT_FULFILLED = "not_fulfilled"
    FINAL_SALE = "final_sale"
    EXCLUDED_TYPE = "excluded_product_type"
    DISCOUNTED = "discounted"
    WINDOW_ENDED = "window_ended"
    NOT_DELIVERED = "not_delivered"
    OPEN_REQUEST = "open_request"
    ALREADY_RETURNED = "already_returned"


@dataclass
class ItemEligibility:
    line_item: LineItem
    returnable_quantity: int
    is_eligible: bool
    reason_code: str
    reason_text: str
    fulfillment_line_item_gid: str
    # Every fulfillment line still holding returnable units: (gid, quantity). A line item
    # shipped in two parcels has two.
    fulfillment_lines: list[tuple[str, int]] = field(default_factory=list)
    # The last day of the window (None when unknown, e.g. not shipped).
    window_ends_at: datetime | None = None
    # The product's variants [(id, title, available for sale)] as stored (local reading);
    # None when this reading did not look (Shopify's).
    product_variants: list[tuple[int, str, bool]] | None = None
    # The product's type as Shopify names it ("Serum"), lowercased; "" when unknown. Picks
    # the reasons offered for the item (returns.policy.reasons_for_product_type).
    product_type: str = ""


@dataclass(frozen=True)
class Estimate:
    subtotal: Decimal
    restocking_fee: Decimal
    shipping_fee: Decimal
    total: Decimal
    currency: str


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_item_unit_value(line_item: LineItem) -> Decimal:
    """What one unit cost the shopper: price less its share of the line's discount."""
    if not line_item.quantity:
        return _money(line_item.price)
    return _money(line_item.price - line_item.total_discount / line_item.quantity)


def _product_info(
    *, shop: Shop, product_ids: set[int], now: datetime
) -> tuple[dict[int, ProductInfo], bool]:
    fresh = {
        info.product_id: info
        for info in ProductInfo.objects.filter(
            shop=shop, product_id__in=product_ids, fetched_at__gte=now - PRODUCT_INFO_TTL
        )
    }
    return fresh, product_ids <= set(fresh)


def _product_info_store(
    *, shop: Shop, products: dict[int, tuple[int, list[str], str]], now: datetime
) -> dict[int, ProductInfo]:
    """Store what Shopify said of the products, one statement whatever their number (an
    upsert on the shop's product id; two lines of one product name it once)."""
    stored: dict[int, ProductInfo] = {}
    for product_id, tags, product_type in products.values():
        stored[product_id] = ProductInfo(
            shop=shop,
            product_id=product_id,
            tags=tags,
            product_type=product_type[:255],
            fetched_at=now,
        )
    if stored:
        ProductInfo.objects.bulk_create(
            list(stored.values()),
            update_conflicts=True,
            unique_fields=["shop", "product_id"],
            update_fields=["tags", "product_type", "fetched_at"],
        )
    return stored


def _pending_quantities(*, shop: Shop, order: Order) -> dict[int, int]:
    """Units held by local requests Shopify does not know yet (returnableFulfillments already
    leaves out units in Shopify's own REQUESTED/OPEN returns)."""
    rows = (
        ReturnLineItem.objects.filter(
            shop=shop,
            return_request__order=order,
            return_request__status__in=OPEN_STATUSES,
            return_request__shopify_return_id__isnull=True,
        )
        .values("line_item_id")
        .annotate(n=Sum("quantity"))
    )
    return {row["line_item_id"]: int(row["n"] or 0) for row in rows}


def _open_line_item_ids(*, shop: Shop, order: Order) -> set[int]:
    return set(
        ReturnLineItem.objects.filter(
            shop=shop, return_request__order=order, return_request__status__in=OPEN_STATUSES
        ).values_list("line_item_id", flat=True)
    )


def _window_ends(
    *, order: Order, line_item: LineItem, dates: LineItemShipping, policy
) -> datetime | None:
    """Delivery + window; without a delivery event, fulfillment + transit allowance + window."""
    window = timedelta(days=policy.window_days)
    delivered_at = dates.delivered.get(line_item.shopify_id)
    if delivered_at:
        return delivered_at + window
    allowance = timedelta(days=policy.transit_allowance_days)
    shipped_at = dates.shipped.get(line_item.shopify_id)
    if shipped_at:
        return shipped_at + allowance + window
    # Shopify says it shipped but the shipment has not reached the mirror yet: count from
    # the order, the earliest the parcel can have left.
    start = order.processed_at or order.shopify_created_at
    return start + allowance + window if start else None


def _on_its_way(
    *, order: Order, line_item: LineItem, dates: LineItemShipping, policy, now: datetime
) -> bool:
    """Shipped, not delivered, and still within the transit allowance: the window counts from
    delivery, so the return starts then. No delivery scan past the allowance (a carrier that
    never reports one): taken as delivered, as Shopify's self-serve returns do."""
    if line_item.shopify_id in dates.delivered:
        return False
    shipped_at = dates.shipped.get(line_item.shopify_id) or order.processed_at
    shipped_at = shipped_at or order.shopify_created_at
    if shipped_at is None:
        return False
    return now < shipped_at + timedelta(days=policy.transit_allowance_days)


def _date_text(shop: Shop, moment: datetime) -> str:
    return dateformat.format(timezone.localtime(moment, shop_zone(shop)), "j F Y")


def order_eligibility(
    *, shop: Shop, order: Order, now: datetime | None = None
) -> list[ItemEligibility]:
    """One ItemEligibility per line item of ``order`` (gift cards and removed lines included,
    with their reason), in the order's line order, as Shopify's returnableFulfillments has it
    now: the submission's reading (one or more Admin API calls)."""
    if order.shop_id != shop.pk:
        raise ValueError("order does not belong to shop")
    now = now or timezone.now()
    line_items = list(LineItem.objects.filter(shop=shop, order=order).order_by("id"))
    product_ids = {li.product_id for li in line_items if li.product_id}
    products, cached = _product_info(shop=shop, product_ids=product_ids, now=now)

    client = admin_client_for_shop(shop)
    fetched = shopify.eligibility_fetch(
        client,
        order_gid=order.admin_graphql_api_id or shopify.gid("Order", order.shopify_id),
        with_products=not cached,
    )
    if not cached:
        products.update(_product_info_store(shop=shop, products=fetched["products"], now=now))
    returnable = fetched["returnable"]
    pending = _pending_quantities(shop=shop, order=order)
    # Read once, for every line, when a line first has nothing returnable.
    went_back: set[int] | None = None
    units: dict[int, _Units] = {}
    for li in line_items:
        lines = returnable.get(li.shopify_id, [])
        shopify_quantity = sum(q for _gid, q in lines)
        quantity = max(0, shopify_quantity - pending.get(li.pk, 0))
        returned = True
        if quantity <= 0 and shopify_quantity <= 0:
            if went_back is None:
                went_back = _returned_line_item_ids(shop=shop, line_items=line_items)
            returned = li.pk in went_back
        units[li.pk] = _Units(quantity=quantity, lines=list(lines), has_gone_back=returned)
    return _rules(
        shop=shop,
        order=order,
        line_items=line_items,
        units=units,
        products=products,
        open_items=_open_line_item_ids(shop=shop, order=order),
        dates=line_item_shipping(shop=shop, order=order),
        now=now,
    )


def order_eligibility_local(
    *,
    shop: Shop,
    order: Order,
    now: datetime | None = None,
    policy: ReturnPolicy | None = None,
) -> list[ItemEligibility]:
    """The same items, reasons and quantities as ``order_eligibility``, read from what the
    webhooks stored: no Admin API call once the order's shipments and products are known
    (the module's docstring). ``fulfillment_lines`` are empty: only the submission, which
    reads Shopify, needs their ids. ``policy``: the shop's, when the caller read it already.

    Every page view runs it, so its statements are plain SQL (shopapp.rawsql: compiling a
    queryset costs more CPU than PostgreSQL's work for these indexed reads)."""
    if order.shop_id != shop.pk:
        raise ValueError("order does not belong to shop")
    now = now or timezone.now()
    line_items = rows_fetch(
        LineItem, '"shop_id" = %s AND "order_id" = %s ORDER BY "id"', [shop.pk, order.pk]
    )
    product_ids = {li.product_id for li in line_items if li.product_id}
    products = _product_facts(shop=shop, product_ids=product_ids, now=now)
    dates = line_item_shipping(shop=shop, order=order)
    if _fulfillments_missing(order, line_items, dates) and _fulfillments_fetch_claim(shop, order):
        # Shopify says units left that no shipment here carries: read the order's
        # fulfillments once and store them (tracking's own refresh), then read them here.
        logger.info(
            "returns.eligibility.fulfillments_fetched",
            extra={"shop": shop.myshopify_domain, "order_id": order.pk},
        )
        order_shipments_refresh(shop=shop, order=order)
        dates = line_item_shipping(shop=shop, order=order)
    held, open_items = _held_units(shop=shop, order=order)
    units: dict[int, _Units] = {}
    for li in line_items:
        shipped = dates.quantities.get(li.shopify_id, 0)
        in_returns, processed = held.get(li.pk, (0, 0))
        # Two bounds, both true: units shipped less those in returns; and units still on the
        # line (a refund takes them off: current_quantity) less those in returns that no
        # refund took off yet. A refund before shipping lowers the second only, a refund of a
        # returned unit lowers neither twice.
        quantity = max(0, min(shipped - in_returns, li.current_quantity - (in_returns - processed)))
        returned = shipped > 0 or in_returns > 0 or li.current_quantity < li.quantity
        units[li.pk] = _Units(quantity=quantity, lines=[], has_gone_back=returned)
    return _rules(
        shop=shop,
        order=order,
        line_items=line_items,
        units=units,
        products=products,
        open_items=open_items,
        dates=dates,
        now=now,
        with_variants=True,
        policy=policy,
    )


@dataclass(frozen=True)
class _Units:
    # Units the shopper may return now.
    quantity: int
    # Shopify's fulfillment lines holding them: [(gid, units)] (Shopify's reading only).
    lines: list[tuple[str, int]]
    # When none: whether units went back already (returned, refunded) rather than never left.
    has_gone_back: bool


def _rules(
    *,
    shop: Shop,
    order: Order,
    line_items: list[LineItem],
    units: dict[int, _Units],
    products: dict[int, ProductInfo],
    open_items: set[int],
    dates: LineItemShipping,
    now: datetime,
    with_variants: bool = False,
    policy: ReturnPolicy | None = None,
) -> list[ItemEligibility]:
    policy = policy if policy is not None else return_policy_get(shop=shop)
    excluded_tags = set(policy_list(policy.excluded_product_tags))
    excluded_types = set(policy_list(policy.excluded_product_types))
    results = []
    for li in line_items:
        unit = units[li.pk]
        quantity = unit.quantity
        info = products.get(li.product_id) if li.product_id else None
        tags = {t.strip().lower() for t in info.tags} if info else set()
        product_type = (info.product_type if info else "").strip().lower()
        ends = _window_ends(order=order, line_item=li, dates=dates, policy=policy)

        code, text = ReasonCode.ELIGIBLE, ""
        if order.cancelled_at:
            code, text = ReasonCode.ORDER_CANCELLED, _("The order was cancelled")
        elif li.is_gift_card:
            code, text = ReasonCode.GIFT_CARD, _("Gift cards can't be returned")
        elif tags & excluded_tags:
            code, text = ReasonCode.FINAL_SALE, _("Final sale")
        elif product_type and product_type in excluded_types:
            code, text = ReasonCode.EXCLUDED_TYPE, _("This type of item can't be returned")
        elif policy.exclude_discounted_items and li.total_discount > 0:
            code, text = ReasonCode.DISCOUNTED, _("Discounted items can't be returned")
        elif quantity <= 0 and li.pk in open_items:
            code, text = ReasonCode.OPEN_REQUEST, _("A return for this item is already open")
        elif quantity <= 0 and not unit.has_gone_back:
            code, text = ReasonCode.NOT_FULFILLED, _("Not shipped yet")
        elif quantity <= 0:
            code, text = ReasonCode.ALREADY_RETURNED, _("Already returned")
        elif not policy.allows_return_before_delivery and _on_its_way(
            order=order, line_item=li, dates=dates, policy=policy, now=now
        ):
            code = ReasonCode.NOT_DELIVERED
            text = _("On its way: it can be returned once it's delivered")
        elif ends is not None and now > ends:
            code = ReasonCode.WINDOW_ENDED
            text = _("The return window ended on %(date)s") % {"date": _date_text(shop, ends)}

        is_eligible = code == ReasonCode.ELIGIBLE
        variants = None
        if with_variants:
            variants = [(int(v[0]), str(v[1]), bool(v[2])) for v in info.variants] if info else []
        results.append(
            ItemEligibility(
                line_item=li,
                returnable_quantity=quantity if is_eligible else 0,
                is_eligible=is_eligible,
                reason_code=code,
                reason_text=text,
                fulfillment_line_item_gid=unit.lines[0][0] if unit.lines else "",
                fulfillment_lines=list(unit.lines),
                window_ends_at=ends,
                product_variants=variants,
                product_type=product_type,
            )
        )
    return results


_HELD_UNITS_SQL = f"""
SELECT rli."line_item_id", rli."quantity", rli."processed_quantity", rr."status"
FROM "returns_returnlineitem" rli
INNER JOIN "returns_returnrequest" rr ON rr."id" = rli."return_request_id"
WHERE rli."shop_id" = %s AND rr."order_id" = %s
  AND rr."status" NOT IN ({", ".join(["%s"] * len(RELEASED_STATUSES))})
  AND rr."sync_state" <> %s
"""  # noqa: S608 - placeholders only


def _held_units(*, shop: Shop, order: Order) -> tuple[dict[int, tuple[int, int]], set[int]]:
    """({line item pk: (units in returns, of which refunded by returnProcess)}, lines in an
    open request), from every local return of the order that still holds its units: the
    portal's own (a request Shopify refused holds nothing) and those made in Shopify's admin.
    One query."""
    with connection.cursor() as cursor:
        cursor.execute(
            _HELD_UNITS_SQL,
            [
                shop.pk,
                order.pk,
                *(status.value for status in RELEASED_STATUSES),
                ReturnRequest.SyncState.FAILED.value,
            ],
        )
        rows = cursor.fetchall()
    held: dict[int, tuple[int, int]] = {}
    open_items: set[int] = set()
    for line_item_id, quantity, processed, status in rows:
        units, refunded = held.get(line_item_id, (0, 0))
        held[line_item_id] = (units + quantity, refunded + min(processed, quantity))
        if status in OPEN_STATUSES:
            open_items.add(line_item_id)
    return held, open_items


def _fulfillments_missing(
    order: Order, line_items: list[LineItem], dates: LineItemShipping
) -> bool:
    """A line Shopify calls (partially) fulfilled that no live shipment here carries."""
    if order.cancelled_at:
        return False
    return any(
        (li.fulfillment_status or "").lower() in _SHIPPED_LINE_STATUSES
        and not dates.quantities.get(li.shopify_id)
        for li in line_items
    )


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


def _fulfillments_fetch_claim(shop: Shop, order: Order) -> bool:
    """True when this view may read the order's fulfillments from Shopify: not read in the
    last FULFILLMENTS_FETCH_INTERVAL_SECONDS (shared by every web process through Redis).
    Redis down: granted; one read too many costs less than a wrong answer."""
    key = f"returns:fulfillments-fetched:{shop.pk}:{order.pk}"
    try:
        conn = _redis(settings.REDIS_URL)
        return bool(conn.set(key, "1", ex=FULFILLMENTS_FETCH_INTERVAL_SECONDS, nx=True))
    except redis.RedisError as exc:
        logger.warning(
            "returns.eligibility.fetch_claim_unavailable",
            extra={"shop": shop.myshopify_domain, "error": type(exc).__name__},
        )
        return True


def order_product_facts_refresh(*, shop: Shop, order: Order) -> int:
    """Store the facts of the order's products that are missing or older than
    PRODUCT_FACTS_PAGE_TTL (a new order's background read). Returns how many products the
    order names."""
    product_ids = set(
        LineItem.objects.filter(shop=shop, order=order, product_id__isnull=False).values_list(
            "product_id", flat=True
        )
    )
    _product_facts(shop=shop, product_ids={pid for pid in product_ids if pid}, now=timezone.now())
    return len(product_ids)


def _product_facts(*, shop: Shop, product_ids: set[int], now: datetime) -> dict[int, ProductInfo]:
    """The products' stored facts, those missing or older than PRODUCT_FACTS_PAGE_TTL read
    from Shopify first (one query per 15 products) and stored; a product Shopify no longer
    has is stored without tags or variants, so it is not asked for again on every view."""
    if not product_ids:
        return {}
    ids = sorted(product_ids)
    stored = {
        info.product_id: info
        for info in rows_fetch(
            ProductInfo,
            f'"shop_id" = %s AND "product_id" IN ({", ".join(["%s"] * len(ids))})',
            [shop.pk, *ids],
        )
    }
    oldest = now - PRODUCT_FACTS_PAGE_TTL
    due = sorted(
        pid
        for pid in product_ids
        if (read_at := stored[pid].variants_fetched_at if pid in stored else None) is None
        or read_at < oldest
    )
    if not due:
        return stored
    fetched = shopify.product_facts_fetch(admin_client_for_shop(shop), product_ids=due)
    rows = []
    for pid in due:
        tags, product_type, variants = fetched.get(pid, ([], "", []))
        rows.append(
            ProductInfo(
                shop=shop,
                product_id=pid,
                tags=tags,
                product_type=product_type[:255],
                fetched_at=now,
                variants=[list(v) for v in variants],
                variants_fetched_at=now,
            )
        )
    ProductInfo.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["shop", "product_id"],
        update_fields=["tags", "product_type", "fetched_at", "variants", "variants_fetched_at"],
    )
    stored.update({row.product_id: row for row in rows})
    return stored


def _returned_line_item_ids(*, shop: Shop, line_items: list[LineItem]) -> set[int]:
    """The lines (pks) of which units went back already: Shopify holds none returnable any
    more because of a return, not because the line never shipped. Shipped (any shipment of
    the shop carried it), named in a local return, or refunded. Two queries for all lines."""
    carried = line_items_shipped(shop=shop, line_item_ids=[li.shopify_id for li in line_items])
    returned = set(
        ReturnLineItem.objects.filter(shop=shop, line_item__in=line_items).values_list(
            "line_item_id", flat=True
        )
    )
    return {
        li.pk
        for li in line_items
        if li.shopify_id in carried or li.pk in returned or li.current_quantity < li.quantity
    }


@dataclass(frozen=True)
class ItemQuote:
    """One item of a quote: what it cost, the fee kept back, the bonus, what it brings back."""

    line_item: LineItem
    quantity: int
    resolution: str
    unit_value: Decimal
    subtotal: Decimal
    restocking_fee: Decimal
    bonus: Decimal
    # Before the return shipping fee, which the quote takes once for the whole return.
    total: Decimal
    # An exchange whose new item's price is known (a different product, chosen from
    # returns.catalogue): its price per unit, and what the shopper owes for it (dearer).
    exchange_unit_price: Decimal | None = None
    amount_due: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class Quote:
    """What a return brings back, item by item and per resolution. The shipping fee is taken
    once, from the refund first, then from the store credit; nothing goes below zero."""

    items: list[ItemQuote]
    shipping_fee: Decimal
    refund_total: Decimal
    store_credit_total: Decimal
    store_credit_bonus: Decimal
    currency: str
    # What the shopper owes for exchanges dearer than what they send back, once the refunds
    # of the other items are set against it: Shopify collects it as the order's outstanding
    # balance before the new item ships (returns.catalogue).
    amount_due: Decimal = Decimal("0.00")

    @property
    def subtotal(self) -> Decimal:
        return _money(sum((i.subtotal for i in self.items), Decimal("0")))

    @property
    def restocking_fee(self) -> Decimal:
        return _money(sum((i.restocking_fee for i in self.items), Decimal("0")))

    @property
    def total(self) -> Decimal:
        return self.refund_total + self.store_credit_total

    @property
    def has_exchange(self) -> bool:
        return any(i.resolution == Resolution.EXCHANGE for i in self.items)


def return_quote(
    *,
    shop: Shop,
    order: Order,
    items: Iterable[tuple[LineItem | int, int, str] | tuple[LineItem | int, int, str, Any]],
    bonus_percent: Decimal | None = None,
    policy: ReturnPolicy | None = None,
    with_shipping_fee: bool = True,
) -> Quote:
    """What the shopper gets back for ``items`` ([(line item or its pk, quantity,
    resolution[, unit price of the item exchanged for])]): the one computation behind the
    review, the stored request and processing.

    Per item: its value (discounts deducted); refund and store credit keep the policy's
    restocking fee back; store credit adds ``bonus_percent`` (default: the policy's store
    credit bonus) of what is left; an exchange pays no restocking fee and its value goes to
    the new item: with the new item's price unknown (another size or colour, the same price)
    it brings nothing back; with it known, a cheaper item refunds the difference and a dearer
    one owes it, set against the refunds of the other items (the order's balance, as Shopify
    settles it at returnProcess) and shown as ``amount_due``. The return shipping fee, once
    per return (``with_shipping_fee``), comes off the refund, then off the store credit.
    Raises ValueError for a line item that is not the order's.
    """
    policy = policy if policy is not None else return_policy_get(shop=shop)
    # A policy just created holds its defaults as given (ints), not as read back (Decimals).
    bonus_rate = percent(
        Decimal(str(policy.store_credit_bonus_percent if bonus_percent is None else bonus_percent))
    )
    wanted = [
        (
            item[0],
            int(item[1]),
            str(item[2]),
            Decimal(str(item[3])) if len(item) > 3 and item[3] not in (None, "") else None,
        )
        for item in items
    ]
    ids = [li for li, _q, _r, _p in wanted if isinstance(li, int)]
    by_pk = (
        {li.pk: li for li in LineItem.objects.filter(shop=shop, order=order, pk__in=ids)}
        if ids
        else {}
    )
    quoted = []
    refund = credit = bonus_total = exchange_balance = Decimal("0")
    for li, quantity, resolution, exchange_price in wanted:
        line = by_pk.get(li) if isinstance(li, int) else li
        if line is None or line.order_id != order.pk or line.shop_id != shop.pk:
            raise ValueError("line item does not belong to the order")
        unit = line_item_unit_value(line)
        subtotal = _money(unit * quantity)
        restocking = bonus = total = due = Decimal("0.00")
        if resolution == Resolution.EXCHANGE and exchange_price is not None:
            difference = subtotal - _money(exchange_price * quantity)
            exchange_balance += difference
            total = max(difference, Decimal("0.00"))
            due = max(-difference, Decimal("0.00"))
        if resolution != Resolution.EXCHANGE:
            restocking = _money(subtotal * percent(Decimal(str(policy.restocking_fee_percent))))
            total = subtotal - restocking
        if resolution == Resolution.STORE_CREDIT:
            bonus = _money(total * bonus_rate)
            total += bonus
            credit += total
            bonus_total += bonus
        elif resolution != Resolution.EXCHANGE:
            refund += total
        quoted.append(
            ItemQuote(
                line_item=line,
                quantity=quantity,
                resolution=resolution,
                unit_value=unit,
                subtotal=subtotal,
                restocking_fee=restocking,
                bonus=bonus,
                total=_money(total),
                exchange_unit_price=exchange_price if resolution == Resolution.EXCHANGE else None,
                amount_due=_money(due),
            )
        )
    shipping_fee = (
        _money(Decimal(str(policy.return_shipping_fee)))
        if wanted and with_shipping_fee
        else Decimal("0.00")
    )
    # Exchanges settle on the order's payment: a cheaper one adds to the refund, a dearer one
    # is first paid from it; what is left owed is the amount due.
    refund += exchange_balance
    amount_due = max(-refund, Decimal("0"))
    refund = max(refund, Decimal("0"))
    from_refund = min(refund, shipping_fee)
    from_credit = min(credit, shipping_fee - from_refund)
    return Quote(
        items=quoted,
        shipping_fee=shipping_fee,
        refund_total=_money(refund - from_refund),
        store_credit_total=_money(credit - from_credit),
        store_credit_bonus=_money(bonus_total),
        currency=order.currency or shop.currency,
        amount_due=_money(amount_due),
    )


def quote_is_returnless(quote: Quote, policy: ReturnPolicy) -> bool:
    """Whether the shopper keeps the items: the policy allows it, nothing is exchanged (a new
    item is shipped, the old one comes back), and the items are worth at most the threshold."""
    threshold = Decimal(str(policy.keep_items_max_value or 0))
    return (
        threshold > 0
        and bool(quote.items)
        and not quote.has_exchange
        and quote.subtotal <= threshold
    )


def return_quote_for_policy(
    *,
    shop: Shop,
    order: Order,
    items: Iterable[tuple[LineItem | int, int, str] | tuple[LineItem | int, int, str, Any]],
    policy: ReturnPolicy,
) -> tuple[Quote, bool]:
    """The quote the shopper is shown and the request stores, and whether the items are kept:
    a return kept by the shopper pays no return shipping fee."""
    items = list(items)
    quote = return_quote(shop=shop, order=order, items=items, policy=policy)
    if not quote_is_returnless(quote, policy):
        return quote, False
    return (
        return_quote(shop=shop, order=order, items=items, policy=policy, with_shipping_fee=False),
        True,
    )


def return_estimate(
    *,
    shop: Shop,
    order: Order,
    items: Iterable[tuple[LineItem | int, int]],
    resolution: str,
) -> Estimate:
    """``return_quote`` for items that all share ``resolution``, without a store credit bonus
    (processing adds the request's own), as one line of totals."""
    quote = return_quote(
        shop=shop,
        order=order,
        items=[(li, q, resolution) for li, q in items],
        bonus_percent=Decimal("0"),
    )
    return Estimate(
        subtotal=quote.subtotal,
        restocking_fee=quote.restocking_fee,
        shipping_fee=quote.shipping_fee,
        total=quote.total,
        currency=quote.currency,
    )
