"""Shipments and their tracking events: the only code that writes Shipment, ShipmentLineItem,
TrackingEvent and Delay rows.

    fulfillments/create|update ─> shipment_sync_from_fulfillment ─┐
    fulfillment_events/create  ─> tracking_event_record ──────────┤ lock order, then shipment
    fulfillment_events/delete  ─> tracking_event_delete ──────────┤
    shipment_refresh_job / shipments_reconcile (GraphQL) ─────────┘
              │
              v
    _shipment_recompute: stage_resolve over every known fact
              ├─ first time at a stage ─> OrderEvent shipment.<stage>
              ├─ new estimated date ────> OrderEvent shipment.estimate_changed
              ├─ carrier "delayed" ─────> delay_open (Delay + shipment.delayed)
              ├─ every shipment delivered > OrderEvent order.all_delivered
              └─ each new OrderEvent, unless stale ─> notification_trigger

Shopify delivers webhooks at least once and in no particular order
(https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates). So the stage is recomputed
from the whole set of facts (``tracking.stages.stage_resolve``), never from the last one to
arrive; every timeline line has a ``dedupe_key`` and the unique constraint, not a prior read,
decides whether it is new; the trigger is called only for a new line. A fact that was already
older than ``TrackingSettings.stale_event_hours`` when it reached us is recorded and marked
stale on the timeline, and triggers nothing: no "out for delivery" email for last week's scan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from notifications import services as notifications_services
from shopapp.models import LineItem, Order, OrderEvent, Shop
from shopapp.orders.reconcile import legacy_id
from shopapp.orders.services import order_event_record, parse_shopify_datetime
from shopapp.payloads import payload_int as _int
from tracking.models import (
    Delay,
    Shipment,
    ShipmentLineItem,
    Stage,
    TrackingEvent,
    TrackingSettings,
)
from tracking.stages import (
    BRANCH_STAGES,
    FULFILLMENT_FAILED_STATUSES,
    StageSignal,
    stage_for_status,
    stage_is_branch,
    stage_label,
    stage_position,
    stage_resolve,
)

logger = logging.getLogger(__name__)

# shipment_status values that mean "a label exists" but no carrier has touched the parcel
# (REST Fulfillment.shipment_status, shopify.dev/docs/api/admin-rest/latest/resources/fulfillment).
LABEL_STATUSES = frozenset({"label_printed", "label_purchased", "confirmed"})
# Event stages that are not a carrier scan: "no movement for N days" is measured from scans.
_NOT_A_SCAN = frozenset({Stage.ORDERED, Stage.SHIPPED})

# A webhook burst (fulfillments/update and its fulfillment_events/create arrive together)
# should settle before we read the fulfillment back through GraphQL: seconds.
REFRESH_DELAY_S = 20
# A shipment read through GraphQL this recently is not read again for another webhook.
REFRESH_DEBOUNCE = timedelta(seconds=60)
REFRESH_JOB_TIMEOUT_S = 120


class OrderNotMirrored(Exception):
    """A fulfillment arrived before its order. Retryable: orders/create is normally first
    and reconciliation pulls a lost order within minutes; the webhook job's RQ retries
    (10 s … 30 min) wait for either."""


class ShipmentNotMirrored(Exception):
    """A fulfillment event arrived before its fulfillment. Retryable, as above."""


# -- small helpers ---------------------------------------------------------------------------


def _str(value: Any, max_length: int) -> str:
    return ("" if value is None else str(value))[:max_length]


def _lower(value: Any) -> str:
    return str(value).strip().lower() if value else ""


def shop_zone(shop: Shop) -> ZoneInfo:
    """The shop's IANA timezone (Shopify's ``iana_timezone``), UTC when unknown."""
    try:
        return ZoneInfo(shop.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def tracking_settings_get(*, shop: Shop) -> TrackingSettings:
    """The shop's tracking settings, created with the defaults on first use."""
    found = TrackingSettings.objects.filter(shop=shop).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return TrackingSettings.objects.create(shop=shop)
    except IntegrityError:
        # Another worker created them between our read and our insert.
        return TrackingSettings.objects.get(shop=shop)


def _notify(*, shop: Shop, order: Order, trigger: str, context: dict[str, Any]) -> None:
    # Through the module attribute, so that the notifications app (and tests) can replace it.
    notifications_services.notification_trigger(
        shop=shop, order=order, trigger=trigger, context=context
    )


def _timeline_and_trigger(
    *,
    shop: Shop,
    order: Order,
    kind: str,
    occurred_at: datetime,
    source: str,
    summary: str,
    dedupe_key: str,
    trigger: str,
    context: dict[str, Any],
    is_stale: bool,
    may_trigger: bool = True,
) -> bool:
    """One timeline line, and the trigger once, for a new line only. Returns whether new."""
    detail = {**context, "stale": is_stale}
    recorded = order_event_record(
        shop=shop,
        order=order,
        kind=kind,
        occurred_at=occurred_at,
        source=source,
        summary=summary + (" (late update, no message sent)" if is_stale else ""),
        detail=_jsonable(detail),
        dedupe_key=dedupe_key,
    )
    if recorded is None:
        return False
    if may_trigger and not is_stale:
        # JSON-ready (ISO datetimes): notifications stores the context with its messages.
        _notify(shop=shop, order=order, trigger=trigger, context=_jsonable(detail))
    logger.info(
        "tracking.timeline.recorded",
        extra={
            "shop": shop.myshopify_domain,
            "order_id": order.shopify_id,
            "kind": kind,
            "stale": is_stale,
        },
    )
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _shipment_context(shipment: Shipment) -> dict[str, Any]:
    """What a notification about this shipment needs; no shopper data."""
    return {
        "shipment_id": shipment.pk,
        "fulfillment_id": shipment.fulfillment_id,
        "stage": shipment.stage,
        "tracking_company": shipment.tracking_company,
        "tracking_numbers": list(shipment.tracking_numbers or []),
        "tracking_urls": list(shipment.tracking_urls or []),
        "estimated_delivery_at": _jsonable(shipment.estimated_delivery_at),
        "delivered_at": _jsonable(shipment.delivered_at),
    }


def _enqueue_refresh_on_commit(shipment: Shipment) -> None:
    """Queue a GraphQL read of the shipment's fulfillment after this transaction commits.

    Never inside the webhook's own work (DESIGN: no Shopify call there), and never raising:
    with Redis down the periodic in-flight refresh repairs the shipment later.
    """
    if shipment.refreshed_at and shipment.refreshed_at > timezone.now() - REFRESH_DEBOUNCE:
        return
    shipment_id = shipment.pk

    def enqueue() -> None:
        import django_rq
        import redis
        from rq import Retry

        from tracking.jobs import shipment_refresh_job

        try:
            queue = django_rq.get_queue("default", commit_mode="auto")
            options = {
                "retry": Retry(max=3, interval=[30, 120, 600]),
                "job_timeout": REFRESH_JOB_TIMEOUT_S,
                # One pending refresh per shipment: a burst of fulfillment webhooks (a seed,
                # a carrier catching up) schedules the same job id again instead of piling
                # up reads of the same fulfillment ahead of other work.
                "job_id": f"tracking-shipment-refresh-{shipment_id}",
            }
            if REFRESH_DELAY_S:
                queue.enqueue_in(
                    timedelta(seconds=REFRESH_DELAY_S),
                    shipment_refresh_job,
                    shipment_id,
                    **options,
                )
            else:
                queue.enqueue(shipment_refresh_job, shipment_id, **options)
        except (redis.RedisError, OSError) as exc:
            logger.warning(
                "tracking.refresh.enqueue_failed",
                extra={"shipment_id": shipment_id, "error": type(exc).__name__},
            )

    transaction.on_commit(enqueue)


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
        "admin_graphql_api_id": _str(payload.get("admin_graphql_api_id"), 255),
        "name": _str(payload.get("name"), 64),
        "status": _lower(payload.get("status"))[:64],
        "shipment_status": _lower(payload.get("shipment_status"))[:64],
        "tracking_company": _str(payload.get("tracking_company"), 255),
        "tracking_numbers": numbers,
        "tracking_urls": urls,
        # The destination is the shopper's address: only its country is kept (domestic vs
        # international delay thresholds).
        "destination_country_code": _str(
            destination.get("country_code") if isinstance(destination, dict) else "", 8
        ).upper(),
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


def _order_locked(*, shop: Shop, order_shopify_id: int | None) -> Order:
    order = (
        Order.objects.select_for_update().filter(shop=shop, shopify_id=order_shopify_id).first()
        if order_shopify_id is not None
        else None
    )
    if order is None:
        raise OrderNotMirrored(f"order {order_shopify_id} is not mirrored yet")
    return order


def _shipment_upsert(*, shop: Shop, order: Order, payload: dict) -> tuple[Shipment, bool, bool]:
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
                    shop=shop, order=order, fulfillment_id=fulfillment_id, **fields
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
    if not fields["destination_country_code"]:
        fields.pop("destination_country_code")
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
        order = _order_locked(shop=shop, order_shopify_id=_int(payload.get("order_id")))
        shipment, created, changed = _shipment_upsert(shop=shop, order=order, payload=payload)
        if not changed:
            return shipment
        _shipment_recompute(
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
    status = _lower(payload.get("status"))[:64]
    return {
        "status": status,
        "stage": stage_for_status(status).value,
        "message": _str(payload.get("message"), 2000),
        "city": _str(payload.get("city"), 255),
        "province": _str(payload.get("province"), 255),
        "country": _str(payload.get("country"), 255),
        "zip": _str(payload.get("zip"), 32),
        "estimated_delivery_at": parse_shopify_datetime(payload.get("estimated_delivery_at")),
    }


def _is_stale(*, shop: Shop, happened_at: datetime | None, received_at: datetime) -> bool:
    if happened_at is None:
        return False
    hours = tracking_settings_get(shop=shop).stale_event_hours
    return happened_at < received_at - timedelta(hours=hours)


def _event_insert(
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
                is_stale=_is_stale(shop=shop, happened_at=happened_at, received_at=received_at),
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
        event, created = _event_insert(
            shop=shop, shipment=shipment, payload=payload, received_at=received_at
        )
        if created:
            _shipment_recompute(
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
        )
        if event is None:
            event, _ = _event_insert(
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
        _shipment_recompute(
            shop=shop,
            order=order,
            shipment=shipment,
            source=source,
            received_at=received_at,
            may_trigger=False,
        )
    return event


# -- the stage, its timeline and its triggers ------------------------------------------------


@dataclass(frozen=True)
class _Fact:
    shopify_id: int
    stage: Stage
    happened_at: datetime
    estimated_delivery_at: datetime | None
    is_stale: bool


def _shipment_recompute(
    *,
    shop: Shop,
    order: Order,
    shipment: Shipment,
    source: str,
    received_at: datetime,
    may_trigger: bool = True,
    estimate_override: datetime | None = None,
) -> None:
    """Derive stage, scan times and estimate from every known fact; record what is new.

    Called under the order's and the shipment's row locks.
    """
    facts = [
        _Fact(sid, Stage(stage) if stage else stage_for_status(status), at, eta, stale)
        for sid, stage, status, at, eta, stale in TrackingEvent.objects.filter(
            shipment=shipment, deleted_at__isnull=True
        ).values_list(
            "shopify_id", "stage", "status", "happened_at", "estimated_delivery_at", "is_stale"
        )
    ]
    old_stage = Stage(shipment.stage)
    old_estimate = shipment.estimated_delivery_at
    new_stage = stage_resolve(
        fulfillment_status=shipment.status,
        shipment_status=shipment.shipment_status or shipment.display_status,
        events=[StageSignal(f.stage, f.happened_at, f.shopify_id) for f in facts],
        shipment_status_at=shipment.shopify_updated_at,
    )

    scans = [f for f in facts if f.stage not in _NOT_A_SCAN]
    shipment.stage = new_stage
    shipment.last_event_at = max((f.happened_at for f in scans), default=None)
    moving = [
        f.happened_at
        for f in facts
        if f.stage not in BRANCH_STAGES and stage_position(f.stage) >= 2  # in transit or later
    ]
    if moving and (shipment.in_transit_at is None or min(moving) < shipment.in_transit_at):
        shipment.in_transit_at = min(moving)
    delivered = [f.happened_at for f in facts if f.stage == Stage.DELIVERED]
    if new_stage == Stage.DELIVERED:
        shipment.delivered_at = (
            max(delivered) if delivered else shipment.delivered_at or shipment.shopify_updated_at
        )
    elif shipment.delivered_at is not None and not delivered:
        shipment.delivered_at = None
    dated_estimates = [f for f in facts if f.estimated_delivery_at is not None]
    estimate_fact = max(dated_estimates, key=lambda f: f.happened_at, default=None)
    if estimate_override is not None:
        shipment.estimated_delivery_at = estimate_override
    elif estimate_fact is not None:
        shipment.estimated_delivery_at = estimate_fact.estimated_delivery_at
    shipment.save()

    context = _shipment_context(shipment)
    if new_stage != old_stage or not _stage_recorded(shop=shop, shipment=shipment):
        evidence = [f for f in facts if f.stage == new_stage]
        evidence_at = max((f.happened_at for f in evidence), default=None)
        if evidence_at is None:
            evidence_at = shipment.shopify_updated_at or received_at
        is_stale = _is_stale(shop=shop, happened_at=evidence_at, received_at=received_at)
        if new_stage == Stage.DELAYED:
            delayed = max(evidence, key=lambda f: f.happened_at, default=None)
            delay_open(
                shop=shop,
                order=order,
                shipment=shipment,
                kind=Delay.Kind.CARRIER_DELAYED,
                dedupe_key=f"shipment:{shipment.pk}:carrier_delayed:"
                + (str(delayed.shopify_id) if delayed else evidence_at.isoformat()),
                detected_at=evidence_at,
                detail={"event_id": delayed.shopify_id if delayed else None},
                is_stale=is_stale,
                source=source,
                may_trigger=may_trigger,
            )
        else:
            _timeline_and_trigger(
                shop=shop,
                order=order,
                kind=f"shipment.{new_stage.value}",
                occurred_at=evidence_at,
                source=source,
                summary=f"Shipment {shipment}: {stage_label(new_stage)}",
                dedupe_key=f"shipment:{shipment.fulfillment_id}:stage:{new_stage.value}",
                trigger=new_stage.value,
                context={**context, "happened_at": evidence_at, "previous_stage": old_stage},
                is_stale=is_stale,
                # A move back on the main line is a correction, not news for the shopper.
                may_trigger=may_trigger
                and (
                    stage_is_branch(new_stage)
                    or stage_position(new_stage) >= stage_position(old_stage)
                ),
            )

    if new_stage != Stage.DELAYED:
        delays_resolve(
            shop=shop,
            shipment=shipment,
            kinds=[Delay.Kind.CARRIER_DELAYED],
            at=received_at,
            only_if_stage_moved=True,
        )
    if shipment.last_event_at is not None:
        # A new scan ends "no movement" and "never scanned".
        Delay.objects.filter(
            shop=shop,
            shipment=shipment,
            resolved_at__isnull=True,
            kind__in=[Delay.Kind.NO_MOVEMENT, Delay.Kind.NEVER_SCANNED],
            detected_at__lt=shipment.last_event_at,
        ).update(resolved_at=received_at)
    if new_stage == Stage.DELIVERED:
        delays_resolve(shop=shop, shipment=shipment, kinds=None, at=received_at)

    new_estimate = shipment.estimated_delivery_at
    if new_estimate is not None and new_stage != Stage.DELIVERED:
        zone = shop_zone(shop)
        old_date = old_estimate.astimezone(zone).date() if old_estimate else None
        new_date = new_estimate.astimezone(zone).date()
        if old_date != new_date:
            carried_at = estimate_fact.happened_at if estimate_fact else received_at
            if estimate_override is not None:
                carried_at = received_at
            _timeline_and_trigger(
                shop=shop,
                order=order,
                kind="shipment.estimate_changed",
                occurred_at=carried_at,
                source=source,
                summary=f"Shipment {shipment}: estimated delivery {new_date.isoformat()}",
                dedupe_key=(
                    f"shipment:{shipment.fulfillment_id}:estimate:"
                    f"{old_date.isoformat() if old_date else 'none'}:{new_date.isoformat()}"
                ),
                trigger="estimate_changed",
                context={
                    **context,
                    "previous_estimated_delivery_at": _jsonable(old_estimate),
                },
                is_stale=_is_stale(shop=shop, happened_at=carried_at, received_at=received_at),
                may_trigger=may_trigger,
            )

    if new_stage == Stage.DELIVERED and old_stage != Stage.DELIVERED:
        _order_all_delivered_check(
            shop=shop,
            order=order,
            source=source,
            received_at=received_at,
            may_trigger=may_trigger,
        )


def _stage_recorded(*, shop: Shop, shipment: Shipment) -> bool:
    """Whether the shipment's current stage is already on the timeline (a new shipment's
    first stage is "recorded" only once written)."""
    if shipment.stage == Stage.DELAYED:
        return Delay.objects.filter(
            shop=shop, shipment=shipment, kind=Delay.Kind.CARRIER_DELAYED
        ).exists()
    return OrderEvent.objects.filter(
        shop=shop, dedupe_key=f"shipment:{shipment.fulfillment_id}:stage:{shipment.stage}"
    ).exists()


def _order_all_delivered_check(
    *, shop: Shop, order: Order, source: str, received_at: datetime, may_trigger: bool
) -> bool:
    """order.all_delivered once every shipment is delivered and they carry every item.

    Coverage is read from the shipments' own line items, so a delivered first half of a split
    order (orders/partially_fulfilled) never counts as all delivered, whatever order the
    webhooks came in.
    """
    shipments = list(
        Shipment.objects.filter(shop=shop, order=order).exclude(
            status__in=FULFILLMENT_FAILED_STATUSES
        )
    )
    if not shipments or any(s.stage != Stage.DELIVERED for s in shipments):
        return False
    shipped: dict[int, int] = {}
    for line_item_id, quantity in ShipmentLineItem.objects.filter(
        shop=shop, shipment__in=shipments
    ).values_list("line_item_shopify_id", "quantity"):
        shipped[line_item_id] = shipped.get(line_item_id, 0) + quantity
    to_ship = list(
        LineItem.objects.filter(
            shop=shop, order=order, requires_shipping=True, current_quantity__gt=0
        ).values_list("shopify_id", "current_quantity")
    )
    if to_ship:
        if any(shipped.get(sid, 0) < quantity for sid, quantity in to_ship):
            return False
    elif order.fulfillment_status != "fulfilled":
        return False
    delivered_at = max((s.delivered_at for s in shipments if s.delivered_at), default=received_at)
    return _timeline_and_trigger(
        shop=shop,
        order=order,
        kind="order.all_delivered",
        occurred_at=delivered_at,
        source=source,
        summary=f"All {len(shipments)} shipment(s) delivered",
        dedupe_key=f"order:{order.shopify_id}:all_delivered",
        trigger="all_delivered",
        context={
            "shipment_ids": [s.pk for s in shipments],
            "fulfillment_ids": [s.fulfillment_id for s in shipments],
            "delivered_at": delivered_at,
        },
        is_stale=_is_stale(shop=shop, happened_at=delivered_at, received_at=received_at),
        may_trigger=may_trigger,
    )


# -- delays ----------------------------------------------------------------------------------


DELAY_SUMMARIES = {
    Delay.Kind.UNFULFILLED: "Not shipped in time",
    Delay.Kind.NO_MOVEMENT: "No tracking movement",
    Delay.Kind.PAST_ESTIMATE: "Past the estimated delivery date",
    Delay.Kind.NEVER_SCANNED: "Label created but never scanned",
    Delay.Kind.CARRIER_DELAYED: "Carrier reported a delay",
}


def delay_open(
    *,
    shop: Shop,
    order: Order,
    shipment: Shipment | None,
    kind: str,
    dedupe_key: str,
    detected_at: datetime,
    detail: dict[str, Any] | None = None,
    is_stale: bool = False,
    source: str = OrderEvent.Source.SYSTEM,
    may_trigger: bool = True,
) -> Delay | None:
    """Record one delay finding: a Delay row, a timeline line and the "delayed" trigger.

    Once per ``dedupe_key`` whatever the cron or the webhooks repeat: the unique constraint
    decides. Returns the new Delay, or None when it was already found.
    """
    try:
        with transaction.atomic():
            delay = Delay.objects.create(
                shop=shop,
                order=order,
                shipment=shipment,
                kind=kind,
                dedupe_key=dedupe_key[:255],
                detected_at=detected_at,
                detail=_jsonable(detail or {}),
            )
    except IntegrityError:
        return None
    context: dict[str, Any] = {
        "kind": kind,
        "delay_id": delay.pk,
        "detected_at": detected_at,
        "shipment_id": shipment.pk if shipment else None,
        **(_shipment_context(shipment) if shipment else {}),
        **(detail or {}),
    }
    _timeline_and_trigger(
        shop=shop,
        order=order,
        kind="shipment.delayed" if shipment else "order.delayed",
        occurred_at=detected_at,
        source=source,
        summary=DELAY_SUMMARIES.get(Delay.Kind(kind), "Delayed")
        + (f" (shipment {shipment})" if shipment else ""),
        dedupe_key=f"delay:{delay.dedupe_key}",
        trigger="delayed",
        context=context,
        is_stale=is_stale,
        may_trigger=may_trigger,
    )
    logger.info(
        "tracking.delay.opened",
        extra={"shop": shop.myshopify_domain, "order_id": order.shopify_id, "kind": kind},
    )
    return delay


def delays_resolve(
    *,
    shop: Shop,
    shipment: Shipment,
    kinds: list[str] | None,
    at: datetime,
    only_if_stage_moved: bool = False,
) -> int:
    """Close the shipment's open delays (of ``kinds``, or all); returns how many."""
    open_delays = Delay.objects.filter(shop=shop, shipment=shipment, resolved_at__isnull=True)
    if kinds is not None:
        open_delays = open_delays.filter(kind__in=kinds)
    if only_if_stage_moved and shipment.stage == Stage.DELAYED:
        return 0
    return open_delays.update(resolved_at=at)


# -- GraphQL refresh -------------------------------------------------------------------------

# Requested cost (shopify.dev "GraphQL Admin API rate limits": object 1, connection
# 2 + first × item): per fulfillment 1 + trackingInfo 5 + fulfillmentLineItems 2 + 20 × 2
# + events 2 + 50 = ~100; fulfillments(first: 8) ~ 800 + the order, under the 1,000-point
# single-query limit (a test measures it against the devshop).
FULFILLMENTS_FIRST = 8
FULFILLMENT_LINE_ITEMS_FIRST = 20
EVENTS_FIRST = 50

ORDER_FULFILLMENTS_QUERY = """
query TrackingOrderFulfillments(
  $id: ID!, $first: Int!, $lineItemsFirst: Int!, $eventsFirst: Int!
) {
  order(id: $id) {
    id
    fulfillments(first: $first) {
      id
      legacyResourceId
      name
      status
      displayStatus
      createdAt
      updatedAt
      estimatedDeliveryAt
      inTransitAt
      deliveredAt
      trackingInfo(first: 5) { company number url }
      fulfillmentLineItems(first: $lineItemsFirst) {
        nodes { quantity lineItem { id } }
      }
      events(first: $eventsFirst, sortKey: HAPPENED_AT, reverse: true) {
        nodes {
          id
          status
          happenedAt
          message
          city
          province
          country
          zip
          estimatedDeliveryAt
        }
      }
    }
  }
}
"""

# FulfillmentDisplayStatus values that are also shipment_status / event statuses: those may
# stand in for REST's shipment_status, which GraphQL's Fulfillment does not have.
_EVENT_STATUSES = frozenset(
    {
        "attempted_delivery",
        "carrier_picked_up",
        "confirmed",
        "delayed",
        "delivered",
        "failure",
        "in_transit",
        "label_printed",
        "label_purchased",
        "out_for_delivery",
        "ready_for_pickup",
    }
)


def fulfillment_payload_from_graphql(node: dict[str, Any], *, order_id: int) -> dict[str, Any]:
    """A GraphQL ``Fulfillment`` node in the REST webhook's shape (one upsert for both)."""
    tracking = [t for t in node.get("trackingInfo") or [] if t]
    display = _lower(node.get("displayStatus"))
    return {
        "id": _int(node.get("legacyResourceId")) or legacy_id(node.get("id")),
        "admin_graphql_api_id": node.get("id"),
        "order_id": order_id,
        "name": node.get("name"),
        "status": _lower(node.get("status")),
        "shipment_status": display if display in _EVENT_STATUSES else None,
        "tracking_company": next((t.get("company") for t in tracking if t.get("company")), None),
        "tracking_numbers": [t["number"] for t in tracking if t.get("number")],
        "tracking_urls": [t["url"] for t in tracking if t.get("url")],
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "line_items": [
            {"id": legacy_id((item.get("lineItem") or {}).get("id")), "quantity": item["quantity"]}
            for item in (node.get("fulfillmentLineItems") or {}).get("nodes") or []
            if item.get("quantity") is not None
        ],
    }


def fulfillment_event_payload_from_graphql(
    node: dict[str, Any], *, fulfillment_id: int
) -> dict[str, Any]:
    return {
        "id": legacy_id(node.get("id")),
        "fulfillment_id": fulfillment_id,
        "status": _lower(node.get("status")),
        "happened_at": node.get("happenedAt"),
        "message": node.get("message"),
        "city": node.get("city"),
        "province": node.get("province"),
        "country": node.get("country"),
        "zip": node.get("zip"),
        "estimated_delivery_at": node.get("estimatedDeliveryAt"),
    }


def order_shipments_refresh(*, shop: Shop, order: Order, client: Any = None) -> int:
    """Read the order's fulfillments (tracking, events, estimates) through GraphQL and apply
    them: missing shipments are created, missing events added, stages recomputed. Returns how
    many fulfillments were read. The call happens outside any transaction."""
    from shopapp.admin_api.client import admin_client_for_shop

    client = client or admin_client_for_shop(shop)
    gid = order.admin_graphql_api_id or f"gid://shopify/Order/{order.shopify_id}"
    data = client.execute(
        ORDER_FULFILLMENTS_QUERY,
        {
            "id": gid,
            "first": FULFILLMENTS_FIRST,
            "lineItemsFirst": FULFILLMENT_LINE_ITEMS_FIRST,
            "eventsFirst": EVENTS_FIRST,
        },
    )
    nodes = ((data or {}).get("order") or {}).get("fulfillments") or []
    now = timezone.now()
    for node in nodes:
        _fulfillment_node_apply(shop=shop, order_pk=order.pk, node=node, received_at=now)
    # Shipments Shopify did not return (beyond the first page) still count as read, so the
    # in-flight refresh moves on to others.
    Shipment.objects.filter(shop=shop, order_id=order.pk, refreshed_at__isnull=True).update(
        refreshed_at=now
    )
    logger.info(
        "tracking.refresh.done",
        extra={
            "shop": shop.myshopify_domain,
            "order_id": order.shopify_id,
            "fulfillments": len(nodes),
        },
    )
    return len(nodes)


def _fulfillment_node_apply(
    *, shop: Shop, order_pk: int, node: dict[str, Any], received_at: datetime
) -> None:
    source = OrderEvent.Source.RECONCILIATION
    with transaction.atomic():
        order = Order.objects.select_for_update().get(shop=shop, pk=order_pk)
        payload = fulfillment_payload_from_graphql(node, order_id=order.shopify_id)
        if payload["id"] is None:
            return
        shipment, _created, _changed = _shipment_upsert(shop=shop, order=order, payload=payload)
        display = _lower(node.get("displayStatus"))[:64]
        if display:
            shipment.display_status = display
        for field, key in (("in_transit_at", "inTransitAt"), ("delivered_at", "deliveredAt")):
            value = parse_shopify_datetime(node.get(key))
            if value is not None:
                setattr(shipment, field, value)
        shipment.refreshed_at = received_at
        shipment.save()
        events = ((node.get("events") or {}).get("nodes")) or []
        for event_node in events:
            _event_insert(
                shop=shop,
                shipment=shipment,
                payload=fulfillment_event_payload_from_graphql(
                    event_node, fulfillment_id=shipment.fulfillment_id
                ),
                received_at=received_at,
            )
        _shipment_recompute(
            shop=shop,
            order=order,
            shipment=shipment,
            source=source,
            received_at=received_at,
            estimate_override=parse_shopify_datetime(node.get("estimatedDeliveryAt")),
        )


def shipment_refresh(*, shipment: Shipment, client: Any = None) -> int:
    """Refresh one shipment (with the rest of its order's fulfillments)."""
    return order_shipments_refresh(shop=shipment.shop, order=shipment.order, client=client)


# Shipments still moving that the periodic refresh re-reads: not delivered or voided, touched
# in the last 30 days (AfterShip and ParcelPanel "expire" trackers after 30 days too), not
# read in the last hour. At most this many orders per shop and run keeps one run's GraphQL
# spend bounded (~800 points each, the client waits out throttling).
IN_FLIGHT_WINDOW = timedelta(days=30)
IN_FLIGHT_MIN_REFRESH_AGE = timedelta(hours=1)
IN_FLIGHT_ORDERS_PER_RUN = 25


def shipments_reconcile(*, shop: Shop, client: Any = None, now: datetime | None = None) -> int:
    """Repair missed fulfillment webhooks: re-read in-flight shipments, and the fulfillments
    of orders Shopify calls (partially) fulfilled that have no shipment here. Returns how
    many orders were read."""
    from django.db.models import Exists, Min, OuterRef

    now = now or timezone.now()
    in_flight = Shipment.objects.filter(
        shop=shop,
        order=OuterRef("pk"),
        updated_at__gte=now - IN_FLIGHT_WINDOW,
    ).exclude(Q(stage=Stage.DELIVERED) | Q(status__in=FULFILLMENT_FAILED_STATUSES))
    due = in_flight.filter(
        Q(refreshed_at__isnull=True) | Q(refreshed_at__lt=now - IN_FLIGHT_MIN_REFRESH_AGE)
    )
    any_shipment = Shipment.objects.filter(shop=shop, order=OuterRef("pk"))
    orders = list(
        Order.objects.filter(shop=shop, deleted_at__isnull=True)
        .filter(
            Q(Exists(due))
            | Q(
                ~Exists(any_shipment),
                fulfillment_status__in=["fulfilled", "partial"],
                shopify_updated_at__gte=now - IN_FLIGHT_WINDOW,
            )
        )
        .annotate(oldest_refresh=Min("shipments__refreshed_at"))
        .order_by("oldest_refresh", "pk")[:IN_FLIGHT_ORDERS_PER_RUN]
    )
    for order in orders:
        order_shipments_refresh(shop=shop, order=order, client=client)
    logger.info(
        "tracking.reconcile.done", extra={"shop": shop.myshopify_domain, "orders": len(orders)}
    )
    return len(orders)


# -- privacy ---------------------------------------------------------------------------------


def tracking_customer_redact(
    *,
    shop: Shop,
    customer_id: int | None,
    email: str,
    phone: str,
    order_ids: list[int],
) -> int:
    """customers/redact: the last scans of a parcel name the shopper's town and postcode, and a
    carrier message may name the recipient; blank them for the customer's orders."""
    return TrackingEvent.objects.filter(
        shop=shop, shipment__order__shopify_id__in=order_ids
    ).update(city="", province="", zip="", message="")
