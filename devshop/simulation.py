"""The store's life: fulfilments with carriers and tracking, shipment scans, cancellations,
and the background tick and the seed that the demo and tests drive.

    dev_order_fulfil          one or several fulfillments (split), carrier, tracking number/URL
        → fulfillments/create + orders/fulfilled | orders/partially_fulfilled + orders/updated
    dev_fulfillment_event_create   one carrier scan (FulfillmentEventStatus)
        → fulfillment_events/create (+ fulfillments/update when shipment_status changes)
    dev_fulfillment_advance   the plausible scans from where a shipment is to a target status
    dev_order_cancel          → orders/cancelled + orders/updated
    dev_simulate_tick         new orders sometimes, fulfil some, one scan per moving shipment;
                              buyers ship approved returns back; the merchant's own returns
                              (made in Shopify's admin) received and processed, the app's left
                              to the merchant in the app
    dev_simulate_seed         a few dozen orders in every state, with backdated timelines

Every action fires the topics Shopify fires for it with one X-Shopify-Event-Id. Statuses and
their REST spellings: shopify.dev, FulfillmentEventStatus and Fulfillment.shipment_status.
"""

import logging
import random
import string
import uuid
from dataclasses import dataclass
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
    DevReverseFulfillmentOrder,
    DevShop,
)
from devshop.orders import dev_now, dev_order_create_fake, dev_order_touch, dev_order_webhooks_emit
from devshop.payloads import (
    ACTIVE_FULFILLMENT_STATUSES,
    fulfillment_event_payload,
    fulfillment_payload,
    line_item_fulfilled_quantity,
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


# -- Carriers ---------------------------------------------------------------------------------


def _digits(n: int) -> str:
    return "".join(random.choices(string.digits, k=n))


def _ups() -> str:
    # 1Z + 6-character shipper number + 2-digit service + 8 digits (UPS's 18-character format).
    shipper = "".join(random.choices(string.ascii_uppercase + string.digits, k=6))
    return f"1Z{shipper}{random.choice(['01', '02', '03', '12'])}{_digits(8)}"


def _s10(prefix: str, country: str) -> str:
    """UPU S10 item id (Royal Mail, Colissimo…): 2 letters, 8 digits, check digit, country."""
    body = _digits(8)
    weights = [8, 6, 4, 2, 3, 5, 9, 7]
    check = 11 - sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11
    check = {10: 0, 11: 5}.get(check, check)
    return f"{prefix}{body}{check}{country}"


@dataclass(frozen=True)
class Carrier:
    # tracking_company as Shopify spells its supported carriers.
    name: str
    url_template: str
    number: Any
    # Shopify fills estimated_delivery_at only for these carriers (REST FulfillmentEvent docs).
    gives_estimates: bool


CARRIERS = {
    "UPS": Carrier("UPS", "https://www.ups.com/track?tracknum={n}", _ups, True),
    "USPS": Carrier(
        "USPS",
        "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}",
        lambda: "9400" + _digits(18),
        True,
    ),
    "FedEx": Carrier(
        "FedEx", "https://www.fedex.com/fedextrack/?trknbr={n}", lambda: _digits(12), True
    ),
    "DHL Express": Carrier(
        "DHL Express",
        "https://www.dhl.com/en/express/tracking.html?AWB={n}",
        lambda: _digits(10),
        False,
    ),
    "Canada Post": Carrier(
        "Canada Post",
        "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={n}",
        lambda: _digits(16),
        True,
    ),
    "Royal Mail": Carrier(
        "Royal Mail",
        "https://www.royalmail.com/track-your-item#/tracking-results/{n}",
        lambda: _s10(random.choice(["RB", "RN", "TT"]), "GB"),
        False,
    ),
    "Colissimo": Carrier(
        "Colissimo",
        "https://www.laposte.fr/outils/suivre-vos-envois?code={n}",
        lambda: "6A" + _digits(11),
        False,
    ),
    "DHL Parcel": Carrier(
        "DHL Parcel",
        "https://www.dhl.de/en/privatkunden/pakete-empfangen/verfolgen.html?piececode={n}",
        lambda: "00340434" + _digits(12),
        False,
    ),
    "Correos": Carrier(
        "Correos",
        "https://www.correos.es/es/en/tools/tracker/items/details?tracking-number={n}",
        lambda: "PQ" + _digits(20),
        False,
    ),
    "Australia Post": Carrier(
        "Australia Post",
        "https://auspost.com.au/mypost/track/details/{n}",
        lambda: _digits(22),
        False,
    ),
}
CARRIERS_BY_COUNTRY = {
    "US": ["UPS", "USPS", "FedEx"],
    "CA": ["Canada Post", "UPS", "FedEx"],
    "GB": ["Royal Mail", "DHL Express"],
    "FR": ["Colissimo", "DHL Express"],
    "DE": ["DHL Parcel", "DHL Express"],
    "ES": ["Correos", "DHL Express"],
    "AU": ["Australia Post", "DHL Express"],
}
# Sort hubs per destination country: city, province, ZIP, latitude, longitude.
HUBS = {
    "US": [
        ("Louisville", "Kentucky", "40209", 38.17, -85.73),
        ("Memphis", "Tennessee", "38118", 35.04, -89.98),
        ("Chicago", "Illinois", "60666", 41.97, -87.90),
        ("Dallas", "Texas", "75261", 32.90, -97.04),
        ("Ontario", "California", "91761", 34.06, -117.60),
    ],
    "CA": [
        ("Mississauga", "Ontario", "L5T 2T9", 43.64, -79.66),
        ("Montreal", "Quebec", "H4S 1Y9", 45.47, -73.74),
        ("Calgary", "Alberta", "T2E 7A2", 51.09, -114.01),
    ],
    "GB": [
        ("Coventry", "England", "CV1 2AA", 52.41, -1.51),
        ("Warrington", "England", "WA5 7WA", 53.39, -2.59),
        ("Glasgow", "Scotland", "G2 1AA", 55.86, -4.25),
    ],
    "FR": [
        ("Roissy-en-France", "Île-de-France", "95700", 49.00, 2.51),
        ("Lyon", "Auvergne-Rhône-Alpes", "69007", 45.75, 4.84),
    ],
    "DE": [
        ("Leipzig", "Sachsen", "04435", 51.42, 12.23),
        ("Köln", "Nordrhein-Westfalen", "51147", 50.87, 7.14),
    ],
    "ES": [
        ("Madrid", "Madrid", "28042", 40.47, -3.57),
        ("Zaragoza", "Aragón", "50197", 41.62, -0.98),
    ],
    "AU": [
        ("Sydney", "New South Wales", "2020", -33.94, 151.17),
        ("Melbourne", "Victoria", "3045", -37.67, 144.84),
    ],
}
COUNTRY_NAMES = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "FR": "France",
    "DE": "Germany",
    "ES": "Spain",
    "AU": "Australia",
}


class SimulationError(ValueError):
    """A change the store refuses (what Shopify's admin would refuse too)."""


def _country(order: DevOrder) -> str:
    code = (order.shipping_address or {}).get("country_code") or "US"
    return code if code in HUBS else "US"


def carrier_for(order: DevOrder, name: str | None = None) -> Carrier:
    if name:
        if name not in CARRIERS:
            raise SimulationError(f"unknown carrier {name!r}; known: {', '.join(CARRIERS)}")
        return CARRIERS[name]
    return CARRIERS[random.choice(CARRIERS_BY_COUNTRY.get(_country(order), ["UPS"]))]


# -- Fulfilments ------------------------------------------------------------------------------


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


def _order_fulfillment_status_refresh(order: DevOrder) -> None:
    remaining = sum(quantity for _, quantity in _unfulfilled(order))
    shipped = DevFulfillment.objects.filter(
        order=order, status__in=ACTIVE_FULFILLMENT_STATUSES
    ).exists()
    if remaining == 0 and shipped:
        order.fulfillment_status = DevOrder.FulfillmentStatus.FULFILLED
    elif shipped:
        order.fulfillment_status = DevOrder.FulfillmentStatus.PARTIALLY_FULFILLED
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


# -- Shipment scans ---------------------------------------------------------------------------


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


# -- Cancellation -----------------------------------------------------------------------------


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
    dev_order_touch(order)
    order.save()
    dev_order_webhooks_emit(order=order, topics=["orders/cancelled", "orders/updated"])
    return order


# -- Tick and seed ----------------------------------------------------------------------------


def dev_simulate_tick(*, shop: DevShop) -> dict[str, Any]:
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
    for fulfillment in moving.select_related("order")[:50]:
        if random.random() < 0.5:
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
