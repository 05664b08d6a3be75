"""Fulfilments and their scans as the store's carriers would make them; cancellation;
the order's state for the control API.
"""

import logging
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Sum

from devshop.models import (
    DevFulfillment,
    DevFulfillmentEvent,
    DevFulfillmentLineItem,
    DevLineItem,
    DevOrder,
    DevReturn,
)
from devshop.orders import dev_now, dev_order_touch, dev_order_webhooks_emit
from devshop.payloads import (
    ACTIVE_FULFILLMENT_STATUSES,
    fulfillment_event_payload,
    fulfillment_payload,
    line_item_fulfilled_quantity,
)
from devshop.simulation.carriers import (
    CARRIERS,
    COUNTRY_NAMES,
    HUBS,
    SimulationError,
    _country,
    carrier_for,
)
from devshop.webhooks import dev_webhook_emit

logger = logging.getLogger(__name__)


Status = DevFulfillmentEvent.Status


# Where a shipment can go no further.
TERMINAL = {Status.DELIVERED, Status.FAILURE}


# The happy path, in order (a carrier may skip some of these).
HAPPY_PATH = [
    Status.LABEL_PURCHASED,
    Status.LABEL_PRINTED,
    Status.CONFIRMED,
    Status.CARRIER_PICKED_UP,
    Status.IN_TRANSIT,
    Status.OUT_FOR_DELIVERY,
    Status.DELIVERED,
]


# Branches and what comes before them.
BRANCH_PREFIX = {
    Status.ATTEMPTED_DELIVERY: Status.OUT_FOR_DELIVERY,
    Status.READY_FOR_PICKUP: Status.ATTEMPTED_DELIVERY,
    Status.DELAYED: Status.IN_TRANSIT,
    Status.FAILURE: Status.IN_TRANSIT,
}


MESSAGES = {
    Status.LABEL_PURCHASED: "Shipping label created",
    Status.LABEL_PRINTED: "Label printed, awaiting carrier pickup",
    Status.CONFIRMED: "Shipment information sent to carrier",
    Status.CARRIER_PICKED_UP: "Picked up by carrier",
    Status.IN_TRANSIT: "Arrived at sort facility",
    Status.OUT_FOR_DELIVERY: "Out for delivery",
    Status.ATTEMPTED_DELIVERY: "Delivery attempted, nobody available to receive",
    Status.READY_FOR_PICKUP: "Available for pickup at the local post office",
    Status.DELAYED: "Delayed: weather conditions in the area",
    Status.FAILURE: "Exception: address could not be verified, returning to sender",
    Status.DELIVERED: "Delivered, left at front door",
}


# One shipment in ten never gets a scan after its label: "stuck" (seen as a stall by apps).
STUCK_MODULO = 10


def _unfulfilled(order: DevOrder) -> list[tuple[DevLineItem, int]]:
    # An exchange the buyer still owes money for is held (AWAITING_PAYMENT): not shippable.
    items = (
        DevLineItem.objects.filter(order=order, requires_shipping=True)
        .exclude(exchange_line_items__hold_reason="AWAITING_PAYMENT")
        .order_by("id")
    )
    pending = []
    for item in items:
        remaining = item.current_quantity - line_item_fulfilled_quantity(item)
        if remaining > 0:
            pending.append((item, remaining))
    return pending


def _nothing_to_fulfil(order: DevOrder) -> bool:
    """Shopify's changelog for 2026-10 ("OrderDisplayFulfillmentStatus now returns
    FULFILLMENT_NOT_REQUIRED for orders with no items to fulfill"): an order closed by
    cancellation, or whose every unit was refunded or edited away, has nothing to fulfil. Items
    that need no shipping (gift cards, downloads) still do: Shopify fulfils them too."""
    if order.cancelled_at is not None:
        return True
    return not DevLineItem.objects.filter(order=order, current_quantity__gt=0).exists()


def _order_fulfillment_status_refresh(order: DevOrder) -> None:
    remaining = sum(quantity for _, quantity in _unfulfilled(order))
    shipped = DevFulfillment.objects.filter(
        order=order, status__in=ACTIVE_FULFILLMENT_STATUSES
    ).exists()
    if remaining == 0 and shipped:
        order.fulfillment_status = DevOrder.FulfillmentStatus.FULFILLED
    elif shipped:
        order.fulfillment_status = DevOrder.FulfillmentStatus.PARTIALLY_FULFILLED
    elif _nothing_to_fulfil(order):
        order.fulfillment_status = DevOrder.FulfillmentStatus.FULFILLMENT_NOT_REQUIRED
    else:
        order.fulfillment_status = DevOrder.FulfillmentStatus.UNFULFILLED


@transaction.atomic
def dev_fulfillment_create(
    *,
    order: DevOrder,
    lines: list[tuple[DevLineItem, int]] | None = None,
    carrier: str | None = None,
    created_at: datetime | None = None,
) -> DevFulfillment:
    """Ship ``lines`` (default: everything unfulfilled) in one parcel, as a merchant marking
    items fulfilled with a tracking number. One merchant action: fulfillments/create, then
    orders/fulfilled or orders/partially_fulfilled, and orders/updated, one event id."""
    order = DevOrder.objects.select_for_update().get(pk=order.pk)
    if order.cancelled_at is not None:
        raise SimulationError(f"order {order.name} is cancelled")
    pending = dict((item.pk, quantity) for item, quantity in _unfulfilled(order))
    lines = lines if lines is not None else _unfulfilled(order)
    if not lines:
        raise SimulationError(f"order {order.name} has nothing left to fulfil")
    for item, quantity in lines:
        if item.order_id != order.pk:
            raise SimulationError(f"line item {item.shopify_id} is not on order {order.name}")
        if quantity <= 0 or quantity > pending.get(item.pk, 0):
            raise SimulationError(
                f"line item {item.shopify_id}: {quantity} exceeds the unfulfilled quantity"
            )
    chosen = carrier_for(order, carrier)
    number = chosen.number()
    now = created_at or dev_now()
    count = DevFulfillment.objects.filter(order=order).count()
    fulfillment = DevFulfillment.objects.create(
        order=order,
        name=f"{order.name}.{count + 1}",
        status=DevFulfillment.Status.SUCCESS,
        shipment_status="",
        display_status="FULFILLED",
        tracking_company=chosen.name,
        tracking_numbers=[number],
        tracking_urls=[chosen.url_template.format(n=number)],
        location_name="Main warehouse",
        created_at=now,
        updated_at=now,
    )
    for item, quantity in lines:
        DevFulfillmentLineItem.objects.create(
            fulfillment=fulfillment, line_item=item, quantity=quantity
        )
    _order_fulfillment_status_refresh(order)
    dev_order_touch(order)
    order.save(update_fields=["fulfillment_status", "updated_at"])

    event_id = str(uuid.uuid4())
    dev_webhook_emit(
        shop=order.shop,
        topic="fulfillments/create",
        payload=fulfillment_payload(fulfillment),
        event_id=event_id,
        triggered_at=dev_now(),
    )
    fulfilled = order.fulfillment_status == DevOrder.FulfillmentStatus.FULFILLED
    dev_order_webhooks_emit(
        order=order,
        topics=[
            "orders/fulfilled" if fulfilled else "orders/partially_fulfilled",
            "orders/updated",
        ],
        event_id=event_id,
    )
    logger.info(
        "devshop.simulation.fulfilled",
        extra={
            "shop": order.shop.myshopify_domain,
            "order_id": order.shopify_id,
            "fulfillment_id": fulfillment.shopify_id,
            "carrier": chosen.name,
        },
    )
    return fulfillment


def dev_order_fulfil(
    *,
    order: DevOrder,
    split: bool = False,
    carrier: str | None = None,
    created_at: datetime | None = None,
) -> list[DevFulfillment]:
    """Fulfil the whole order: one parcel, or (``split``) one parcel per line item (a line of
    several units may itself be split in two), as when items ship from stock at different
    times. Each parcel is its own merchant action."""
    pending = _unfulfilled(order)
    if not pending:
        raise SimulationError(f"order {order.name} has nothing left to fulfil")
    if not split:
        return [dev_fulfillment_create(order=order, carrier=carrier, created_at=created_at)]
    parcels: list[list[tuple[DevLineItem, int]]] = []
    for item, quantity in pending:
        if quantity > 1 and len(pending) == 1:
            first = quantity // 2
            parcels += [[(item, first)], [(item, quantity - first)]]
        else:
            parcels.append([(item, quantity)])
    return [
        dev_fulfillment_create(order=order, lines=lines, carrier=carrier, created_at=created_at)
        for lines in parcels
    ]


def _scan_place(fulfillment: DevFulfillment, status: str) -> dict[str, Any]:
    order = fulfillment.order
    country = _country(order)
    address = order.shipping_address or {}
    if status in {
        Status.OUT_FOR_DELIVERY,
        Status.ATTEMPTED_DELIVERY,
        Status.DELIVERED,
        Status.READY_FOR_PICKUP,
    }:
        return {
            "city": address.get("city") or "",
            "province": address.get("province") or "",
            "country": COUNTRY_NAMES.get(country, country),
            "zip": address.get("zip") or "",
            "address1": address.get("address1") if status == Status.DELIVERED else "",
            "latitude": None,
            "longitude": None,
        }
    if status in {Status.LABEL_PURCHASED, Status.LABEL_PRINTED, Status.CONFIRMED}:
        # Labels are made at the shop, which has no scan location.
        return {"country": COUNTRY_NAMES.get(country, country)}
    city, province, zip_code, lat, lon = random.choice(HUBS[country])
    return {
        "city": city,
        "province": province,
        "country": COUNTRY_NAMES.get(country, country),
        "zip": zip_code,
        "latitude": lat,
        "longitude": lon,
    }


@transaction.atomic
def dev_fulfillment_event_create(
    *,
    fulfillment: DevFulfillment,
    status: str,
    happened_at: datetime | None = None,
    message: str | None = None,
    place: dict[str, Any] | None = None,
    estimated_delivery_at: datetime | None = None,
) -> DevFulfillmentEvent:
    """One carrier scan. Sets the fulfillment's shipment_status and display status; fires
    fulfillment_events/create and, when shipment_status changes, fulfillments/update (one
    event id). ``place`` (city, province, country, zip, address1, latitude, longitude)
    defaults to a plausible one for the status."""
    status = status.upper()
    if status not in Status.values:
        raise SimulationError(f"unknown fulfillment event status {status!r}")
    fulfillment = (
        DevFulfillment.objects.select_for_update()
        .select_related("order__shop")
        .get(pk=fulfillment.pk)
    )
    if fulfillment.status not in ACTIVE_FULFILLMENT_STATUSES:
        raise SimulationError(f"fulfillment {fulfillment.name} is {fulfillment.status.lower()}")
    now = dev_now()
    happened_at = happened_at or now
    carrier = CARRIERS.get(fulfillment.tracking_company)
    if estimated_delivery_at is None and (carrier is None or carrier.gives_estimates):
        estimated_delivery_at = fulfillment.estimated_delivery_at
        if status in {Status.CONFIRMED, Status.CARRIER_PICKED_UP} and estimated_delivery_at is None:
            estimated_delivery_at = (happened_at + timedelta(days=random.randint(3, 6))).replace(
                hour=20, minute=0, second=0
            )
        elif status == Status.DELAYED and estimated_delivery_at is not None:
            estimated_delivery_at = estimated_delivery_at + timedelta(days=2)
        elif status == Status.OUT_FOR_DELIVERY:
            estimated_delivery_at = happened_at.replace(hour=20, minute=0, second=0)
    fields = {"country": "", "city": "", "province": "", "zip": "", "address1": ""}
    fields.update(place if place is not None else _scan_place(fulfillment, status))
    event = DevFulfillmentEvent.objects.create(
        fulfillment=fulfillment,
        status=status,
        happened_at=happened_at,
        message=message if message is not None else MESSAGES.get(status, ""),
        address1=fields.get("address1") or "",
        city=fields.get("city") or "",
        province=fields.get("province") or "",
        country=fields.get("country") or "",
        zip=fields.get("zip") or "",
        latitude=fields.get("latitude"),
        longitude=fields.get("longitude"),
        estimated_delivery_at=estimated_delivery_at,
        created_at=max(now, happened_at),
    )
    previous = fulfillment.shipment_status
    fulfillment.shipment_status = status.lower()
    fulfillment.display_status = status
    fulfillment.estimated_delivery_at = estimated_delivery_at
    if status == Status.IN_TRANSIT and fulfillment.in_transit_at is None:
        fulfillment.in_transit_at = happened_at
    if status == Status.DELIVERED:
        fulfillment.delivered_at = happened_at
    fulfillment.updated_at = max(now, fulfillment.updated_at + timedelta(seconds=1))
    fulfillment.save()

    event_id = str(uuid.uuid4())
    shop = fulfillment.order.shop
    dev_webhook_emit(
        shop=shop,
        topic="fulfillment_events/create",
        payload=fulfillment_event_payload(event),
        event_id=event_id,
        triggered_at=now,
    )
    if previous != fulfillment.shipment_status:
        dev_webhook_emit(
            shop=shop,
            topic="fulfillments/update",
            payload=fulfillment_payload(fulfillment),
            event_id=event_id,
            triggered_at=now,
        )
    logger.info(
        "devshop.simulation.scan",
        extra={
            "shop": shop.myshopify_domain,
            "fulfillment_id": fulfillment.shopify_id,
            "status": status,
        },
    )
    return event


def _path_to(current: str, target: str) -> list[str]:
    """The statuses a shipment at ``current`` plausibly passes through to reach ``target``."""
    current, target = current.upper(), target.upper()
    if target in BRANCH_PREFIX:
        before = _path_to(current, BRANCH_PREFIX[target])
        reached = before[-1] if before else current
        return [*before, target] if reached != target else before
    if target not in HAPPY_PATH:
        raise SimulationError(f"unknown fulfillment event status {target!r}")
    goal = HAPPY_PATH.index(target)
    if current in HAPPY_PATH:
        start = HAPPY_PATH.index(current) + 1
    elif current in {Status.DELAYED}:
        start = HAPPY_PATH.index(Status.IN_TRANSIT)
    elif current == Status.ATTEMPTED_DELIVERY:
        # The carrier tries again the next day.
        start = HAPPY_PATH.index(Status.OUT_FOR_DELIVERY)
    elif current == Status.READY_FOR_PICKUP:
        # The shopper collects it: straight to delivered.
        start = HAPPY_PATH.index(Status.DELIVERED)
    else:
        start = 0
    return HAPPY_PATH[start : goal + 1] if goal >= start else []


def dev_fulfillment_advance(
    *, fulfillment: DevFulfillment, to: str, start_at: datetime | None = None
) -> list[DevFulfillmentEvent]:
    """Walk a shipment to ``to`` through the scans a carrier would plausibly report (each one
    its own event and webhooks). ``start_at`` backdates the scans, a few hours apart."""
    current = fulfillment.shipment_status or ""
    if current.upper() in TERMINAL:
        raise SimulationError(f"fulfillment {fulfillment.name} is already {current}")
    path = _path_to(current, to)
    if not path:
        raise SimulationError(f"fulfillment {fulfillment.name} is past {to.lower()}")
    events = []
    moment = start_at
    for status in path:
        events.append(
            dev_fulfillment_event_create(fulfillment=fulfillment, status=status, happened_at=moment)
        )
        if moment is not None:
            moment = min(moment + timedelta(hours=random.randint(3, 16)), dev_now())
    return events


def _next_status(current: str, in_transit_scans: int) -> str | None:
    """One plausible next scan from ``current`` (None: the shipment is done)."""
    current = current.upper()
    roll = random.random()
    if current in TERMINAL:
        return None
    if current in {"", Status.LABEL_PURCHASED, Status.LABEL_PRINTED}:
        return Status.CONFIRMED if current else Status.LABEL_PURCHASED
    if current == Status.CONFIRMED:
        return Status.CARRIER_PICKED_UP
    if current in {Status.CARRIER_PICKED_UP, Status.DELAYED}:
        return Status.IN_TRANSIT
    if current == Status.IN_TRANSIT:
        if roll < 0.04:
            return Status.FAILURE
        if roll < 0.12:
            return Status.DELAYED
        return Status.IN_TRANSIT if in_transit_scans < 2 and roll < 0.6 else Status.OUT_FOR_DELIVERY
    if current == Status.OUT_FOR_DELIVERY:
        return Status.ATTEMPTED_DELIVERY if roll < 0.12 else Status.DELIVERED
    if current == Status.ATTEMPTED_DELIVERY:
        return Status.READY_FOR_PICKUP if roll < 0.3 else Status.OUT_FOR_DELIVERY
    if current == Status.READY_FOR_PICKUP:
        return Status.DELIVERED
    return None


def fulfillment_is_stuck(fulfillment: DevFulfillment) -> bool:
    """A shipment the carrier never scans after its label (one in ten, fixed per shipment)."""
    return fulfillment.shopify_id % STUCK_MODULO == 0


def dev_fulfillment_step(*, fulfillment: DevFulfillment) -> DevFulfillmentEvent | None:
    """One plausible next scan, or None when the shipment is done or stuck."""
    current = fulfillment.shipment_status or ""
    if fulfillment_is_stuck(fulfillment) and current.upper() == Status.LABEL_PURCHASED:
        return None
    scans = fulfillment.events.filter(status=Status.IN_TRANSIT).count()
    status = _next_status(current, scans)
    if status is None:
        return None
    return dev_fulfillment_event_create(fulfillment=fulfillment, status=status)


@transaction.atomic
def dev_order_cancel(*, order: DevOrder, reason: str = DevOrder.CancelReason.CUSTOMER) -> DevOrder:
    """Cancel an unfulfilled order: payment voided (authorized) or refunded (paid), then
    orders/cancelled and orders/updated for the one action. Shopify refuses to cancel an
    order with active fulfillments; so does the devshop."""
    order = DevOrder.objects.select_for_update().get(pk=order.pk)
    reason = reason.upper()
    if reason not in DevOrder.CancelReason.values:
        raise SimulationError(f"unknown cancel reason {reason!r}")
    if order.cancelled_at is not None:
        raise SimulationError(f"order {order.name} is already cancelled")
    if DevFulfillment.objects.filter(order=order, status__in=ACTIVE_FULFILLMENT_STATUSES).exists():
        raise SimulationError(f"order {order.name} has fulfillments; cancel them first")
    now = dev_now()
    order.cancelled_at = now
    order.cancel_reason = reason
    order.financial_status = (
        DevOrder.FinancialStatus.REFUNDED
        if order.financial_status == DevOrder.FinancialStatus.PAID
        else DevOrder.FinancialStatus.VOIDED
    )
    order.closed_at = now
    _order_fulfillment_status_refresh(order)
    dev_order_touch(order)
    order.save()
    dev_order_webhooks_emit(order=order, topics=["orders/cancelled", "orders/updated"])
    return order


def order_state(order: DevOrder) -> dict[str, Any]:
    """The order as the control API reports it: status, fulfillments with their scans."""
    fulfillments = []
    for f in DevFulfillment.objects.filter(order=order).order_by("id"):
        fulfillments.append(
            {
                "id": f.shopify_id,
                "name": f.name,
                "status": f.status,
                "shipment_status": f.shipment_status or None,
                "tracking_company": f.tracking_company,
                "tracking_numbers": f.tracking_numbers,
                "tracking_urls": f.tracking_urls,
                "estimated_delivery_at": f.estimated_delivery_at.isoformat()
                if f.estimated_delivery_at
                else None,
                "quantity": int(f.fulfillment_line_items.aggregate(n=Sum("quantity"))["n"] or 0),
                "line_items": [
                    {
                        "fulfillment_line_item_id": fli.shopify_id,
                        "line_item_id": fli.line_item.shopify_id,
                        "quantity": fli.quantity,
                    }
                    for fli in f.fulfillment_line_items.select_related("line_item")
                ],
                "events": [
                    {
                        "id": e.shopify_id,
                        "status": e.status,
                        "happened_at": e.happened_at.isoformat(),
                    }
                    for e in f.events.all()
                ],
            }
        )
    return {
        "id": order.shopify_id,
        "name": order.name,
        "financial_status": order.financial_status,
        "fulfillment_status": order.fulfillment_status,
        "cancelled_at": order.cancelled_at.isoformat() if order.cancelled_at else None,
        "cancel_reason": order.cancel_reason or None,
        "updated_at": order.updated_at.isoformat(),
        "presentment_currency": order.presentment_currency,
        "customer_locale": order.customer_locale,
        "line_items": [
            {"id": i.shopify_id, "quantity": i.quantity}
            for i in DevLineItem.objects.filter(order=order).order_by("id")
        ],
        "fulfillments": fulfillments,
        "returns": [
            {"id": r.shopify_id, "status": r.status}
            for r in DevReturn.objects.filter(order=order).order_by("id")
        ],
    }
