"""Helpers for the tracking tests: orders and fulfillments from Shopify's sample payloads,
and what notifications received from tracking, read from its own rows."""

import itertools
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from notifications.models import (
    Message,
    NotificationSettings,
    Sequence,
    SequenceStep,
    ShipmentFacts,
    Trigger,
)
from shopapp.models import Order, OrderEvent, Shop
from shopapp.orders.services import order_upsert
from tests.shopapp.webhook_support import fixture_json
from tracking.services import shipment_sync_from_fulfillment, tracking_event_record

SOURCE = OrderEvent.Source.WEBHOOK
LINE_ITEM_IDS = [
    487817672276298554,
    789012345678901234,
    890123456789012345,
    976318377106520349,
    315789986012684393,
]
_ids = itertools.count(9_000_000)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def order_create(shop, *, order_id: int | None = None, **changes) -> Order:
    """The orders/create sample as a paid, open order (the sample itself is cancelled)."""
    payload = fixture_json("orders/create")
    payload.update(
        {
            "cancelled_at": None,
            "cancel_reason": None,
            "financial_status": "paid",
            "updated_at": iso(timezone.now() - timedelta(days=1)),
        }
    )
    if order_id is not None:
        payload["id"] = order_id
    payload.update(changes)
    return order_upsert(shop=shop, payload=payload, source=SOURCE)


def fulfillment_payload(
    order: Order,
    *,
    fulfillment_id: int,
    line_item_ids: list[int] | None = None,
    updated_at: datetime | None = None,
    **changes,
) -> dict:
    payload = fixture_json("fulfillments/create")
    ids = LINE_ITEM_IDS if line_item_ids is None else line_item_ids
    payload["line_items"] = [li for li in payload["line_items"] if li["id"] in ids]
    moment = updated_at or timezone.now()
    payload.update(
        {
            "id": fulfillment_id,
            "order_id": order.shopify_id,
            "name": f"{order.name}.{fulfillment_id % 10}",
            "status": "success",
            "created_at": iso(moment),
            "updated_at": iso(moment),
            "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
        }
    )
    payload.update(changes)
    return payload


def fulfil(shop, order: Order, *, fulfillment_id: int, received_at=None, **kwargs):
    return shipment_sync_from_fulfillment(
        shop=shop,
        payload=fulfillment_payload(order, fulfillment_id=fulfillment_id, **kwargs),
        source=SOURCE,
        received_at=received_at,
    )


def event_payload(
    *, fulfillment_id: int, order_id: int, status: str, happened_at: datetime, **changes
) -> dict:
    payload = fixture_json("fulfillment_events/create")
    event_id = changes.pop("id", None) or next(_ids)
    payload.update(
        {
            "id": event_id,
            "fulfillment_id": fulfillment_id,
            "order_id": order_id,
            "status": status,
            "happened_at": iso(happened_at),
            "created_at": iso(happened_at),
            "updated_at": iso(happened_at),
            "admin_graphql_api_id": f"gid://shopify/FulfillmentEvent/{event_id}",
        }
    )
    payload.update(changes)
    return payload


def scan(shop, shipment, status: str, happened_at: datetime | None = None, **changes):
    return tracking_event_record(
        shop=shop,
        payload=event_payload(
            fulfillment_id=shipment.fulfillment_id,
            order_id=shipment.order.shopify_id,
            status=status,
            happened_at=happened_at or timezone.now(),
            **changes,
        ),
        source=SOURCE,
    )


class Announced:
    """What tracking announced to notifications, read back from notifications' own rows (no
    stand-in for another app of ours). A listened shop has one enabled email step for every
    trigger and sends each parcel's news on its own, so each announcement is one message."""

    def __init__(self) -> None:
        self.since_id = 0

    def listen(self, shop: Shop) -> None:
        NotificationSettings.objects.update_or_create(
            shop=shop, defaults={"combine_shipments_minutes": 0}
        )
        for trigger in Trigger.values:
            sequence = Sequence.objects.create(
                shop=shop, key=f"listen-{trigger}", name=trigger, trigger=trigger
            )
            SequenceStep.objects.create(shop=shop, sequence=sequence, template_key=trigger)

    @property
    def calls(self) -> list[dict]:
        messages = (
            Message.objects.filter(pk__gt=self.since_id)
            .select_related("shop", "order")
            .order_by("id")
        )
        return [
            {
                "shop": m.shop,
                "order": m.order,
                "trigger": m.trigger,
                "news": (m.snapshot or {}).get("news") or {},
                "shipments": (m.snapshot or {}).get("shipments") or [],
            }
            for m in messages
        ]

    @property
    def triggers(self) -> list[str]:
        return [c["trigger"] for c in self.calls]

    def clear(self) -> None:
        self.since_id = Message.objects.order_by("-id").values_list("id", flat=True).first() or 0


def announced_for(*shops: Shop) -> Announced:
    announced = Announced()
    for shop in shops:
        announced.listen(shop)
    return announced


def parcel_facts(shop: Shop, fulfillment_id: int) -> ShipmentFacts | None:
    """What notifications now knows of the parcel (every piece of news keeps it current)."""
    return ShipmentFacts.objects.filter(shop=shop, fulfillment_id=fulfillment_id).first()
