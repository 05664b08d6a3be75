"""Shipments and their tracking events: the only code that writes Shipment, ShipmentLineItem
and TrackingEvent rows.

    fulfillments/create|update ─> shipment_sync_from_fulfillment ─┐
    fulfillment_events/create  ─> tracking_event_record ──────────┤ lock order, then shipment
    fulfillment_events/delete  ─> tracking_event_delete ──────────┤
    shipment_refresh_job / shipments_reconcile (tracking.refresh) ┘
              │
              v
    shipment_recompute (tracking.recompute): the stage from every known fact, new timeline
    lines, delays, and the news announced to notifications (tracking.announce)

Shopify delivers webhooks at least once and in no particular order
(https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates). A fact that was already
older than ``TrackingSettings.stale_event_hours`` when it reached us is recorded and marked
stale on the timeline, and announces nothing: no "out for delivery" email for last week's
scan.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from shopapp.background.queue import Queues
from shopapp.background.services import task_defer
from shopapp.models import Order, Shop
from shopapp.orders.reconcile import legacy_id
from shopapp.orders.services import order_event_record, parse_shopify_datetime
from shopapp.payloads import payload_int as _int
from tracking.common import (
    LABEL_STATUSES,
    OrderNotMirrored,
    ShipmentNotMirrored,
    is_stale_on_arrival,
    lower,
    text,
    tracking_settings_get,
)
from tracking.models import Shipment, ShipmentLineItem, Stage, TrackingEvent
from tracking.recompute import delay_open, delays_resolve, shipment_recompute
from tracking.stages import FULFILLMENT_FAILED_STATUSES, stage_for_status

logger = logging.getLogger(__name__)

# A webhook burst (fulfillments/update and its fulfillment_events/create arrive together)
# should settle before we read the fulfillment back through GraphQL: seconds
# (TRACKING_REFRESH_DELAY_SECONDS overrides).
REFRESH_DELAY_S = 20
# A shipment read through GraphQL this recently is not read again for another webhook.
REFRESH_DEBOUNCE = timedelta(seconds=60)
REFRESH_JOB_TIMEOUT_S = 120


def _enqueue_refresh_on_commit(shipment: Shipment) -> None:
    """Queue a GraphQL read of the shipment's fulfillment after this transaction commits.

    Never inside the webhook's own work (DESIGN: no Shopify call there). A task row: with
    Redis down, the sweep hands it over later.
    """
    if shipment.refreshed_at and shipment.refreshed_at > timezone.now() - REFRESH_DEBOUNCE:
        return
    from tracking.jobs import shipment_refresh_job

    delay_s = int(getattr(settings, "TRACKING_REFRESH_DELAY_SECONDS", REFRESH_DELAY_S))
    task_defer(
        shipment_refresh_job,
        shop=shipment.shop,
        kwargs={"shipment_id": shipment.pk},
        # One pending read per shipment: a burst of fulfillment webhooks (a seed, a carrier
        # catching up) does not pile up reads of the same fulfillment ahead of other work.
        key=f"tracking.refresh:{shipment.pk}",
        queue=Queues.SYNCS,
        delay=timedelta(seconds=delay_s) if delay_s else None,
        timeout_s=REFRESH_JOB_TIMEOUT_S,
        retry_intervals_s=(30, 120, 600),
    )


# -- fulfillments ----------------------------------------------------------------------------


def _tracking_lists(payload: dict) -> tuple[list[str], list[str]]:
    # REST carries the first number and URL alone and all of them in the plural fields.
    numbers = [str(n) for n in payload.get("tracking_numbers") or [] if n]
    if not numbers and payload.get("tracking_number"):
        numbers = [str(payload["tracking_number"])]
    urls = [str(u) for u in payload.get("tracking_urls") or [] if u]
    if not urls and payload.get("tracking_url"):
        urls = [str(payload["tracking_url"])]
    return numbers, urls


def _fulfillment_fields(payload: dict) -> dict[str, Any]:
    numbers, urls = _tracking_lists(payload)
    destination = payload.get("destination") or {}
    return {
        "admin_graphql_api_id": text(payload.get("admin_graphql_api_id"), 255),
        "name": text(payload.get("name"), 64),
        "status": lower(payload.get("status"))[:64],
        "shipment_status": lower(payload.get("shipment_status"))[:64],
        "tracking_company": text(payload.get("tracking_company"), 255),
        "tracking_numbers": numbers,
        "tracking_urls": urls,
        # The destination is the shopper's address: only its country is kept (domestic vs
        # international delay thresholds).
        "destination_country_code": text(
            destination.get("country_code") if isinstance(destination, dict) else "", 8
        ).upper(),
        # And its region, for the delivery estimates' grouping (tracking.estimates).
        "destination_province_code": text(
            destination.get("province_code") if isinstance(destination, dict) else "", 16
        ).upper(),
        "destination_province": text(
            destination.get("province") if isinstance(destination, dict) else "", 255
        ),
        "shopify_created_at": parse_shopify_datetime(payload.get("created_at")),
        "shopify_updated_at": parse_shopify_datetime(payload.get("updated_at")),
    }


def _line_items_sync(*, shop: Shop, shipment: Shipment, items: list[dict]) -> None:
    quantities: dict[int, int] = {}
    for item in items:
        line_item_id = _int(item.get("id"))
        if line_item_id is not None:
            quantities[line_item_id] = max(_int(item.get("quantity")) or 0, 0)
    if not quantities:
        return
    existing = {li.line_item_shopify_id: li for li in shipment.line_items.all()}
    to_create, to_update = [], []
    for line_item_id, quantity in quantities.items():
        current = existing.get(line_item_id)
        if current is None:
            to_create.append(
                ShipmentLineItem(
                    shop=shop,
                    shipment=shipment,
                    line_item_shopify_id=line_item_id,
                    quantity=quantity,
                )
            )
        elif current.quantity != quantity:
            current.quantity = quantity
            to_update.append(current)
    ShipmentLineItem.objects.bulk_create(to_create, ignore_conflicts=True)
    if to_update:
        ShipmentLineItem.objects.bulk_update(to_update, ["quantity"])


def _destination_from_order(fields: dict[str, Any], order: Order) -> dict[str, Any]:
    """A new shipment's service is the order's shipping rate; one read without its destination
    (GraphQL) takes the order's shipping country and region, when they are the same country."""
    fields = {**fields, "service": order.shipping_method}
    country = fields["destination_country_code"] or order.shipping_country_code.upper()
    if not fields["destination_province_code"] and country == order.shipping_country_code.upper():
        fields = {**fields, "destination_province_code": order.shipping_province_code.upper()}
    return {**fields, "destination_country_code": country}


def order_locked(*, shop: Shop, order_shopify_id: int | None) -> Order:
    order = (
        Order.objects.select_for_update().filter(shop=shop, shopify_id=order_shopify_id).first()
        if order_shopify_id is not None
        else None
    )
    if order is None:
        raise OrderNotMirrored(f"order {order_shopify_id} is not mirrored yet")
    return order


def shipment_upsert(*, shop: Shop, order: Order, payload: dict) -> tuple[Shipment, bool, bool]:
    """Create or update a shipment from a REST-shaped fulfillment, under the order's lock.

    Returns (shipment, created, changed). A payload older than the stored ``updated_at``
    changes nothing (changed False); an equal one is an idempotent no-op.
    """
    fulfillment_id = _int(payload.get("id"))
    assert fulfillment_id is not None  # noqa: S101 - checked by every caller
    fields = _fulfillment_fields(payload)
    shipment = (
        Shipment.objects.select_for_update()
        .filter(shop=shop, fulfillment_id=fulfillment_id)
        .first()
    )
    if shipment is None:
        try:
            with transaction.atomic():
                shipment = Shipment.objects.create(
                    shop=shop,
                    order=order,
                    fulfillment_id=fulfillment_id,
                    **_destination_from_order(fields, order),
                )
        except IntegrityError:
            shipment = Shipment.objects.select_for_update().get(
                shop=shop, fulfillment_id=fulfillment_id
            )
        else:
            _line_items_sync(shop=shop, shipment=shipment, items=payload.get("line_items") or [])
            return shipment, True, True
    stored, incoming = shipment.shopify_updated_at, fields["shopify_updated_at"]
    if stored and incoming and incoming <= stored:
        if incoming < stored:
            logger.info(
                "tracking.fulfillment.stale",
                extra={"shop": shop.myshopify_domain, "fulfillment_id": fulfillment_id},
            )
        return shipment, False, False
    # GraphQL reads carry no destination: keep what the webhook said.
    for name in ("destination_country_code", "destination_province_code", "destination_province"):
        if not fields[name]:
            fields.pop(name)
    for name, value in fields.items():
        setattr(shipment, name, value)
    shipment.save()
    _line_items_sync(shop=shop, shipment=shipment, items=payload.get("line_items") or [])
    return shipment, False, True


def shipment_sync_from_fulfillment(
    *, shop: Shop, payload: dict, source: str, received_at: datetime | None = None
) -> Shipment | None:
    """fulfillments/create and fulfillments/update: keep the shipment, move its stage.

    Raises OrderNotMirrored (retryable) when the order is not mirrored yet: we do not invent a
    placeholder order (it would carry no payment or line-item facts, and delay detection and
    the tracking page would read wrong ones) and do not call Shopify inside the webhook job;
    RQ's retries wait for orders/create or the next reconciliation, which both go through
    order_upsert. Queues a GraphQL refresh when the webhook lacks details (the REST fulfillment
    carries no events and no estimated delivery).
    """
    fulfillment_id = _int(payload.get("id"))
    if fulfillment_id is None:
        logger.warning("tracking.fulfillment.no_id", extra={"shop": shop.myshopify_domain})
        return None
    received_at = received_at or timezone.now()
    with transaction.atomic():
        order = order_locked(shop=shop, order_shopify_id=_int(payload.get("order_id")))
        shipment, created, changed = shipment_upsert(shop=shop, order=order, payload=payload)
        if not changed:
            return shipment
        shipment_recompute(
            shop=shop, order=order, shipment=shipment, source=source, received_at=received_at
        )
        if _needs_refresh(shipment):
            _enqueue_refresh_on_commit(shipment)
    logger.info(
        "tracking.fulfillment.synced",
        extra={
            "shop": shop.myshopify_domain,
            "fulfillment_id": fulfillment_id,
            "is_new": created,
            "stage": shipment.stage,
        },
    )
    return shipment


def _needs_refresh(shipment: Shipment) -> bool:
    """Whether the webhook left us without the details a shopper will ask for."""
    if shipment.status in FULFILLMENT_FAILED_STATUSES:
        return False
    if not shipment.tracking_numbers:
        # No tracking: the carrier will never send events for it.
        return False
    status = shipment.shipment_status
    if status and not shipment.events.filter(status=status, deleted_at__isnull=True).exists():
        # Shopify moved shipment_status from an event we have not seen (yet).
        return True
    # Estimates come with GraphQL (REST Fulfillment has none): read them once per shipment.
    return (
        shipment.estimated_delivery_at is None
        and shipment.stage != Stage.DELIVERED
        and shipment.refreshed_at is None
    )


# -- fulfillment events ----------------------------------------------------------------------


def _event_fields(payload: dict) -> dict[str, Any]:
    status = lower(payload.get("status"))[:64]
    return {
        "status": status,
        "stage": stage_for_status(status).value,
        "message": text(payload.get("message"), 2000),
        "city": text(payload.get("city"), 255),
        "province": text(payload.get("province"), 255),
        "country": text(payload.get("country"), 255),
        "zip": text(payload.get("zip"), 32),
        "estimated_delivery_at": parse_shopify_datetime(payload.get("estimated_delivery_at")),
    }


def tracking_event_insert(
    *,
    shop: Shop,
    shipment: Shipment,
    payload: dict,
    received_at: datetime,
    deleted_at: datetime | None = None,
) -> tuple[TrackingEvent | None, bool]:
    """Insert one TrackingEvent; idempotent on Shopify's event id. Returns (event, created)."""
    event_id = _int(payload.get("id")) or legacy_id(payload.get("admin_graphql_api_id"))
    happened_at = parse_shopify_datetime(payload.get("happened_at")) or parse_shopify_datetime(
        payload.get("created_at")
    )
    if event_id is None or happened_at is None:
        logger.warning(
            "tracking.event.incomplete",
            extra={"shop": shop.myshopify_domain, "fulfillment_id": shipment.fulfillment_id},
        )
        return None, False
    try:
        with transaction.atomic():
            event = TrackingEvent.objects.create(
                shop=shop,
                shipment=shipment,
                shopify_id=event_id,
                happened_at=happened_at,
                is_stale=is_stale_on_arrival(
                    shop=shop, happened_at=happened_at, received_at=received_at
                ),
                deleted_at=deleted_at,
                **_event_fields(payload),
            )
    except IntegrityError:
        return TrackingEvent.objects.filter(shop=shop, shopify_id=event_id).first(), False
    return event, True


def _shipment_for_event(*, shop: Shop, payload: dict) -> tuple[Order, Shipment]:
    """Lock the event's order, then its shipment (always in that order: no deadlock with the
    fulfillment path, and the all-delivered check sees every shipment of the order settled)."""
    fulfillment_id = _int(payload.get("fulfillment_id"))
    if fulfillment_id is None:
        raise ShipmentNotMirrored("a fulfillment event without its fulfillment's id")
    order_pk = (
        Shipment.objects.filter(shop=shop, fulfillment_id=fulfillment_id)
        .values_list("order_id", flat=True)
        .first()
    )
    if order_pk is None:
        raise ShipmentNotMirrored(f"fulfillment {fulfillment_id} is not mirrored yet")
    order = Order.objects.select_for_update().get(shop=shop, pk=order_pk)
    shipment = Shipment.objects.select_for_update().get(shop=shop, fulfillment_id=fulfillment_id)
    return order, shipment


def tracking_event_record(
    *, shop: Shop, payload: dict, source: str, received_at: datetime | None = None
) -> TrackingEvent | None:
    """fulfillment_events/create: keep the scan and move the shipment's stage.

    Idempotent on the event id (a repeat changes nothing and triggers nothing). Raises
    ShipmentNotMirrored (retryable) when the fulfillment is not mirrored yet.
    """
    received_at = received_at or timezone.now()
    with transaction.atomic():
        order, shipment = _shipment_for_event(shop=shop, payload=payload)
        event, created = tracking_event_insert(
            shop=shop, shipment=shipment, payload=payload, received_at=received_at
        )
        if created:
            shipment_recompute(
                shop=shop, order=order, shipment=shipment, source=source, received_at=received_at
            )
    if event is not None:
        logger.info(
            "tracking.event.recorded",
            extra={
                "shop": shop.myshopify_domain,
                "fulfillment_id": shipment.fulfillment_id,
                "event_id": event.shopify_id,
                "is_new": created,
                "stale": event.is_stale,
            },
        )
    return event


def tracking_event_delete(
    *, shop: Shop, payload: dict, source: str, received_at: datetime | None = None
) -> TrackingEvent | None:
    """fulfillment_events/delete: hide the scan and recompute the stage.

    The event is kept (the admin still sees it) with ``deleted_at``. A delete that arrives
    before its create leaves a deleted row, so the late create cannot bring it back. A stage
    that moves back because of a delete is a merchant's correction: it is put on the
    timeline but triggers nothing.
    """
    received_at = received_at or timezone.now()
    with transaction.atomic():
        order, shipment = _shipment_for_event(shop=shop, payload=payload)
        event_id = _int(payload.get("id"))
        event = (
            TrackingEvent.objects.select_for_update().filter(shop=shop, shopify_id=event_id).first()
            if event_id is not None
            else None
        )
        if event is None:
            event, _ = tracking_event_insert(
                shop=shop,
                shipment=shipment,
                payload=payload,
                received_at=received_at,
                deleted_at=received_at,
            )
            return event
        if event.deleted_at is not None:
            return event
        event.deleted_at = received_at
        event.save(update_fields=["deleted_at"])
        order_event_record(
            shop=shop,
            order=order,
            kind="shipment.event_deleted",
            occurred_at=received_at,
            source=source,
            summary=f"Tracking update removed from shipment {shipment}",
            detail={"shipment_id": shipment.pk, "event_id": event.shopify_id},
            dedupe_key=f"shipment:{shipment.fulfillment_id}:event_deleted:{event.shopify_id}",
        )
        shipment_recompute(
            shop=shop,
            order=order,
            shipment=shipment,
            source=source,
            received_at=received_at,
            may_trigger=False,
        )
    return event


__all__ = [
    "LABEL_STATUSES",
    "OrderNotMirrored",
    "ShipmentNotMirrored",
    "delay_open",
    "delays_resolve",
    "shipment_sync_from_fulfillment",
    "shipment_upsert",
    "tracking_event_delete",
    "tracking_event_insert",
    "tracking_event_record",
    "tracking_settings_get",
]
