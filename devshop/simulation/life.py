"""The store's background life: one tick moves parcels and returns along, a seed makes orders
in every state.
"""

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from devshop.models import (
    DevFulfillment,
    DevOrder,
    DevReturn,
    DevReverseFulfillmentOrder,
    DevShop,
)
from devshop.orders import dev_now, dev_order_create_fake
from devshop.payloads import (
    ACTIVE_FULFILLMENT_STATUSES,
)
from devshop.simulation.carriers import carrier_for
from devshop.simulation.fulfilments import (
    Status,
    _unfulfilled,
    dev_fulfillment_advance,
    dev_fulfillment_create,
    dev_fulfillment_step,
    dev_order_cancel,
    dev_order_fulfil,
)

logger = logging.getLogger(__name__)


# Returns the simulated merchant makes in Shopify's admin: a chance per tick (the demo ticks
# every 5 s, so about one every two minutes) and a cap per shop, so the app's own returns,
# which the merchant handles in the app, stay the bulk of its queue.
MERCHANT_RETURN_CHANCE = 0.04


MERCHANT_RETURNS_MAX = 5


MERCHANT_RETURN_REASONS = [
    "SIZE_TOO_SMALL",
    "SIZE_TOO_LARGE",
    "DEFECTIVE",
    "WRONG_ITEM",
    "UNWANTED",
]


# A buyer sends an approved return back: a chance per tick (the pace of the merchant's own
# returns, 0.5 × 0.6).
BUYER_SHIPS_BACK_CHANCE = 0.3


@dataclass(frozen=True)
class Pace:
    """How fast parcels move, in wall-clock time (what a person watching sees).

    ``scan_chance``: a moving parcel's chance of a scan per tick. ``min_scan_gap_seconds``: a
    parcel scanned this recently waits. ``hold_seconds``: a parcel the carrier reported
    delayed, or that missed its delivery or waits at a pickup point, stays so this long, so
    the app's Delays view and the shopper's page show it while someone looks."""

    scan_chance: float = 0.5
    min_scan_gap_seconds: float = 0
    hold_seconds: float = 0

    def __post_init__(self) -> None:
        if not 0 <= self.scan_chance <= 1:
            raise ValueError("scan_chance is a probability: 0 ≤ scan_chance ≤ 1")
        if self.min_scan_gap_seconds < 0 or self.hold_seconds < 0:
            raise ValueError("min_scan_gap_seconds and hold_seconds cannot be negative")


# The tests' and scripts' pace: every tick may move every parcel.
FAST_PACE = Pace()
# The demo's (a tick every 5 s): a parcel moves about once a minute at most, and a delay or a
# missed delivery stays on screen for ten minutes before the parcel moves on.
DEMO_PACE = Pace(scan_chance=0.3, min_scan_gap_seconds=60, hold_seconds=600)
# Statuses a parcel stays in for ``Pace.hold_seconds`` (FAILURE is terminal: it stays).
HOLD_STATUSES = ["delayed", "attempted_delivery", "ready_for_pickup"]


def dev_simulate_tick(*, shop: DevShop, pace: Pace = FAST_PACE) -> dict[str, Any]:
    """One step of the store's background life: sometimes a new order, some unfulfilled
    orders shipped, one scan for each moving shipment (some wait), and returns.

    Returns the app made through the Admin API (returnRequest, returnCreate) are the
    merchant's to handle in the app: the simulation never approves, declines, receives or
    processes them; only their buyers act, shipping approved ones back (tracking attached).
    Now and then the simulated merchant makes a return of its own in Shopify's admin
    (returnCreate on a delivered order, ``made_by`` merchant, a few per shop) and takes it all
    the way: shipped back by the buyer, received (restocked), processed (refunded)."""
    summary: dict[str, Any] = {"created": [], "fulfilled": [], "scans": [], "cancelled": []}
    if random.random() < 0.35:
        summary["created"].append(dev_order_create_fake(shop=shop).shopify_id)
    unfulfilled = DevOrder.objects.filter(
        shop=shop,
        cancelled_at__isnull=True,
        fulfillment_status__in=[
            DevOrder.FulfillmentStatus.UNFULFILLED,
            DevOrder.FulfillmentStatus.PARTIALLY_FULFILLED,
        ],
    ).order_by("created_at")[:5]
    for order in unfulfilled:
        roll = random.random()
        if roll < 0.03 and order.fulfillment_status == DevOrder.FulfillmentStatus.UNFULFILLED:
            dev_order_cancel(order=order, reason=random.choice(["CUSTOMER", "INVENTORY"]))
            summary["cancelled"].append(order.shopify_id)
        elif roll < 0.4:
            for f in dev_order_fulfil(order=order, split=random.random() < 0.2):
                summary["fulfilled"].append(f.shopify_id)
    moving = DevFulfillment.objects.filter(
        order__shop=shop, status__in=ACTIVE_FULFILLMENT_STATUSES
    ).exclude(shipment_status__in=["delivered", "failure"])
    if pace.min_scan_gap_seconds or pace.hold_seconds:
        # Wall-clock time of each parcel's last scan (the event row's creation, not the
        # simulated clock's happened_at): held parcels leave the batch to the others.
        now = timezone.now()
        moving = moving.annotate(last_scan_at=Max("events__created_at")).exclude(
            Q(last_scan_at__gt=now - timedelta(seconds=pace.min_scan_gap_seconds))
            | Q(
                shipment_status__in=HOLD_STATUSES,
                last_scan_at__gt=now - timedelta(seconds=pace.hold_seconds),
            )
        )
    for fulfillment in moving.select_related("order")[:50]:
        if random.random() < pace.scan_chance:
            event = dev_fulfillment_step(fulfillment=fulfillment)
            if event is not None:
                summary["scans"].append(
                    {"fulfillment_id": fulfillment.shopify_id, "status": event.status}
                )
    returns: dict[str, list[int]] = {
        "merchant_created": [],
        "shipped_back": [],
        "disposed": [],
        "processed": [],
    }
    if random.random() < MERCHANT_RETURN_CHANCE:
        ret = _merchant_return_create(shop)
        if ret is not None:
            returns["merchant_created"].append(ret.shopify_id)
    # The merchant's own returns (never REQUESTED: returnCreate makes them OPEN).
    for ret in DevReturn.objects.filter(
        shop=shop, made_by=DevReturn.MadeBy.MERCHANT, status=DevReturn.Status.OPEN
    ).order_by("id")[:10]:
        if random.random() < 0.5:
            continue
        step = _return_step(ret)
        if step is not None:
            returns[step].append(ret.shopify_id)
    # The app's approved returns whose buyer has not sent them yet (the app may have attached
    # a label already: then the parcel is on its way and only the merchant acts, in the app).
    awaiting_buyer = (
        DevReturn.objects.filter(
            shop=shop,
            made_by=DevReturn.MadeBy.APP,
            status=DevReturn.Status.OPEN,
            reverse_fulfillment_orders__status=DevReverseFulfillmentOrder.Status.OPEN,
        )
        .exclude(reverse_fulfillment_orders__reverse_deliveries__isnull=False)
        .distinct()
        .order_by("id")[:10]
    )
    for ret in awaiting_buyer:
        if random.random() < BUYER_SHIPS_BACK_CHANCE and _return_ship_back(ret):
            returns["shipped_back"].append(ret.shopify_id)
    # Buyers pay what their exchange left due (the hold on its fulfilment is released).
    returns["exchange_paid"] = []
    for ret in DevReturn.objects.filter(shop=shop, exchange_amount_due__gt=0)[:5]:
        if random.random() < 0.3:
            from devshop.returns import dev_exchange_payment_collect

            dev_exchange_payment_collect(ret=ret)
            returns["exchange_paid"].append(ret.shopify_id)
    summary["returns"] = returns
    logger.info(
        "devshop.simulation.tick",
        extra={
            "shop": shop.myshopify_domain,
            "orders_created": len(summary["created"]),
            "fulfilled": len(summary["fulfilled"]),
            "scans": len(summary["scans"]),
        },
    )
    return summary


def _merchant_return_create(shop: DevShop) -> DevReturn | None:
    """The merchant makes a return in Shopify's admin (returnCreate, OPEN at once, fires
    returns/approve) for some delivered units of a delivered order that has no return yet, up
    to ``MERCHANT_RETURNS_MAX`` per shop. None when the cap is reached or no order fits."""
    from devshop.returns import dev_return_create, returnable_fulfillments

    made = DevReturn.objects.filter(shop=shop, made_by=DevReturn.MadeBy.MERCHANT).count()
    if made >= MERCHANT_RETURNS_MAX:
        return None
    candidates = list(
        DevOrder.objects.filter(
            shop=shop,
            cancelled_at__isnull=True,
            fulfillments__status__in=ACTIVE_FULFILLMENT_STATUSES,
            fulfillments__shipment_status=Status.DELIVERED.lower(),
            returns__isnull=True,
        )
        .distinct()
        .order_by("id")
        .values_list("pk", flat=True)[:50]
    )
    if not candidates:
        return None
    order = DevOrder.objects.get(pk=random.choice(candidates))
    delivered = [
        (fli, quantity)
        for found in returnable_fulfillments(order=order)
        if (found["fulfillment"].shipment_status or "").upper() == Status.DELIVERED
        for fli, quantity in found["lines"]
    ]
    if not delivered:
        return None
    picked = random.sample(delivered, k=random.randint(1, len(delivered)))
    lines = [
        {
            "fulfillment_line_item_id": fli.shopify_id,
            "quantity": random.randint(1, quantity),
            "return_reason": random.choice(MERCHANT_RETURN_REASONS),
        }
        for fli, quantity in picked
    ]
    # One transaction: the app's returns are the default, so the return must never be seen
    # (by a concurrent tick) before it is marked as the merchant's.
    with transaction.atomic():
        ret = dev_return_create(order=order, lines=lines)
        ret.made_by = DevReturn.MadeBy.MERCHANT
        ret.save(update_fields=["made_by"])
    logger.info(
        "devshop.simulation.merchant_return",
        extra={"shop": shop.myshopify_domain, "return_id": ret.shopify_id},
    )
    return ret


def _return_ship_back(ret: DevReturn) -> bool:
    """The buyer sends an approved return back: a reverse delivery for every line, with the
    carrier's tracking (reverse_deliveries/attach_deliverable). False when there is nothing
    to send (no open reverse fulfillment order) or it is already on its way."""
    from devshop.returns import dev_reverse_delivery_create

    rfo = ret.reverse_fulfillment_orders.filter(status="OPEN").first()
    if rfo is None or rfo.reverse_deliveries.exists():
        return False
    carrier = carrier_for(ret.order)
    number = carrier.number()
    dev_reverse_delivery_create(
        rfo=rfo,
        lines=[],
        tracking={"number": number, "url": carrier.url_template.format(n=number)},
    )
    return True


def _return_step(ret: DevReturn) -> str | None:
    """One step of the life of a return the merchant made, each after the one before: the
    buyer ships it back (tracking attached), the merchant receives it (every unit restocked),
    then processes it (refund). None when nobody gets to it this tick."""
    from devshop.returns import (
        Disposition,
        dev_return_process,
        dev_reverse_fulfillment_order_dispose,
        rfo_line_disposed_quantity,
        shop_location_id,
    )

    rfo = ret.reverse_fulfillment_orders.filter(status="OPEN").first()
    if rfo is not None and not rfo.reverse_deliveries.exists():
        return "shipped_back" if random.random() < 0.6 and _return_ship_back(ret) else None
    if rfo is not None:
        if random.random() >= 0.7:
            return None
        left = [
            (line, line.total_quantity - rfo_line_disposed_quantity(line))
            for line in rfo.line_items.all()
        ]
        dispositions = [
            Disposition(
                rfo_line_item_id=line.shopify_id,
                quantity=quantity,
                type="RESTOCKED",
                location_id=shop_location_id(ret.shop),
                path=("dispositionInputs", str(index)),
            )
            for index, (line, quantity) in enumerate(left)
            if quantity > 0
        ]
        if dispositions:
            dev_reverse_fulfillment_order_dispose(shop=ret.shop, dispositions=dispositions)
            return "disposed"
    dev_return_process(ret=ret, lines=None, refund=None)
    return "processed"


# States the seed spreads orders over: (name, weight). Names are what the seed reports.
SEED_STATES = [
    ("unfulfilled", 4),
    ("partially_fulfilled", 3),
    ("label_purchased", 2),
    ("in_transit", 5),
    ("out_for_delivery", 3),
    ("attempted_delivery", 2),
    ("ready_for_pickup", 1),
    ("delayed", 2),
    ("failure", 2),
    ("delivered", 8),
    ("cancelled", 2),
    ("split_mixed", 2),
]


SEED_COUNTRIES = ["US", "US", "CA", "GB", "FR", "DE", "ES", "AU"]


def _seed_states(count: int) -> list[str]:
    # Every state at least once when there is room, the rest by weight.
    names = [name for name, _ in SEED_STATES]
    states = names[:count]
    weights = [w for _, w in SEED_STATES]
    states += random.choices(names, weights=weights, k=max(0, count - len(states)))
    random.shuffle(states)
    return states


def dev_simulate_seed(*, shop: DevShop, orders: int = 36) -> dict[str, list[int]]:
    """A few dozen orders in every state, with timelines backdated over the last days (orders
    created 1–12 days ago, scans hours apart, never in the future). Returns order ids by
    state."""
    by_state: dict[str, list[int]] = {}
    for state in _seed_states(orders):
        age = timedelta(days=random.randint(1, 12), hours=random.randint(0, 23))
        created = dev_now() - age
        overrides: dict[str, Any] = {
            "created_at": created.isoformat(),
            "processed_at": created.isoformat(),
            "country_code": random.choice(SEED_COUNTRIES),
        }
        if state in {"partially_fulfilled", "split_mixed"}:
            overrides["line_items"] = random.choice([2, 3])
        order = dev_order_create_fake(shop=shop, overrides=overrides)
        shipped_at = created + timedelta(hours=random.randint(4, 30))
        scans_from = shipped_at + timedelta(hours=1)
        if state == "cancelled":
            dev_order_cancel(order=order, reason=random.choice(["CUSTOMER", "INVENTORY", "FRAUD"]))
        elif state == "partially_fulfilled":
            item, quantity = _unfulfilled(order)[0]
            f = dev_fulfillment_create(order=order, lines=[(item, quantity)], created_at=shipped_at)
            dev_fulfillment_advance(fulfillment=f, to="IN_TRANSIT", start_at=scans_from)
        elif state == "split_mixed":
            parcels = dev_order_fulfil(order=order, split=True, created_at=shipped_at)
            dev_fulfillment_advance(fulfillment=parcels[0], to="DELIVERED", start_at=scans_from)
            dev_fulfillment_advance(fulfillment=parcels[-1], to="IN_TRANSIT", start_at=scans_from)
        elif state != "unfulfilled":
            (f,) = dev_order_fulfil(order=order, created_at=shipped_at)
            dev_fulfillment_advance(fulfillment=f, to=state.upper(), start_at=scans_from)
        by_state.setdefault(state, []).append(order.shopify_id)
    logger.info(
        "devshop.simulation.seeded", extra={"shop": shop.myshopify_domain, "orders": orders}
    )
    return by_state
