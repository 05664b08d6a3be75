"""A shipment's stage, recomputed from every known fact, and what is new on its timeline.

    shipment_recompute: stage_resolve over every event and Shopify's statuses
        ├─ first time at a stage ─> OrderEvent shipment.<stage> ─> announced (tracking.announce)
        ├─ new estimated date ────> OrderEvent shipment.estimate_changed
        ├─ carrier "delayed" ─────> delay_open (Delay + shipment.delayed)
        └─ every shipment delivered > OrderEvent order.all_delivered

Shopify delivers webhooks at least once and in no particular order, so the stage comes from
the whole set of facts, never from the last one to arrive; every timeline line has a
``dedupe_key`` and the unique constraint decides whether it is new; news is announced only
for a new line. Called under the order's and the shipment's row locks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from shopapp.auth.selectors import shop_zone
from shopapp.models import LineItem, Order, OrderEvent, Shop
from tracking.announce import (
    all_delivered_news,
    delay_news,
    shipment_detail,
    shipment_news,
    timeline_and_announce,
)
from tracking.common import NOT_A_SCAN, is_stale_on_arrival, jsonable
from tracking.models import Delay, Shipment, ShipmentLineItem, Stage, TrackingEvent
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


@dataclass(frozen=True)
class _Fact:
    shopify_id: int
    stage: Stage
    happened_at: datetime
    estimated_delivery_at: datetime | None
    is_stale: bool


@dataclass(frozen=True)
class _Run:
    """One recompute: the shipment under its locks, and where the news came from."""

    shop: Shop
    order: Order
    shipment: Shipment
    source: str
    received_at: datetime
    may_trigger: bool


def _facts_of(shipment: Shipment) -> list[_Fact]:
    return [
        _Fact(sid, Stage(stage) if stage else stage_for_status(status), at, eta, stale)
        for sid, stage, status, at, eta, stale in TrackingEvent.objects.filter(
            shipment=shipment, deleted_at__isnull=True
        ).values_list(
            "shopify_id", "stage", "status", "happened_at", "estimated_delivery_at", "is_stale"
        )
    ]


def _shipment_apply(
    shipment: Shipment,
    *,
    facts: list[_Fact],
    new_stage: Stage,
    estimate_override: datetime | None,
) -> _Fact | None:
    """Write the stage, scan times and estimate the facts give; returns the fact the estimate
    came from (the newest that carried one)."""
    scans = [f for f in facts if f.stage not in NOT_A_SCAN]
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
    return estimate_fact


# Stages a parcel reaches only after it left: the first news of one of them means it shipped.
_PAST_SHIPPED = frozenset(
    {
        Stage.IN_TRANSIT,
        Stage.OUT_FOR_DELIVERY,
        Stage.DELIVERED,
        Stage.ATTEMPTED_DELIVERY,
        Stage.READY_FOR_PICKUP,
        Stage.DELAYED,
    }
)


def _shipped_line_ensure(run: _Run, *, facts: list[_Fact]) -> None:
    """The "shipped" line (and news) of a parcel first heard of further along.

    Webhooks come in no particular order: a parcel's first scans can arrive before its
    fulfillments/create, and it is then first seen in transit. Its shopper is still owed the
    "shipped" message with the carrier and tracking link, as on a day when the create came
    first; whether it is still news when it is due (not once delivered) is for the send to
    decide, the same either way.
    """
    shipment = run.shipment
    key = f"shipment:{shipment.fulfillment_id}:stage:{Stage.SHIPPED.value}"
    if OrderEvent.objects.filter(shop=run.shop, dedupe_key=key).exists():
        return
    happened_at = min(
        (f.happened_at for f in facts),
        default=shipment.shopify_created_at or run.received_at,
    )
    if shipment.shopify_created_at is not None:
        happened_at = min(happened_at, shipment.shopify_created_at)
    is_stale = is_stale_on_arrival(
        shop=run.shop, happened_at=happened_at, received_at=run.received_at
    )
    timeline_and_announce(
        shop=run.shop,
        order=run.order,
        kind=f"shipment.{Stage.SHIPPED.value}",
        occurred_at=happened_at,
        source=run.source,
        summary=f"Shipment {shipment}: {stage_label(Stage.SHIPPED)}",
        dedupe_key=key,
        trigger=Stage.SHIPPED.value,
        detail={**shipment_detail(shipment), "happened_at": happened_at},
        news=shipment_news(shipment, happened_at=happened_at, is_stale=is_stale),
        is_stale=is_stale,
        may_trigger=run.may_trigger,
    )


def _stage_line_record(run: _Run, *, facts: list[_Fact], old_stage: Stage) -> None:
    """The line (and news) of the stage the shipment is at now; a carrier delay opens one."""
    shipment, new_stage = run.shipment, Stage(run.shipment.stage)
    if new_stage in _PAST_SHIPPED:
        _shipped_line_ensure(run, facts=facts)
    evidence = [f for f in facts if f.stage == new_stage]
    evidence_at = max((f.happened_at for f in evidence), default=None)
    if evidence_at is None:
        evidence_at = shipment.shopify_updated_at or run.received_at
    is_stale = is_stale_on_arrival(
        shop=run.shop, happened_at=evidence_at, received_at=run.received_at
    )
    if new_stage == Stage.DELAYED:
        delayed = max(evidence, key=lambda f: f.happened_at, default=None)
        delay_open(
            shop=run.shop,
            order=run.order,
            shipment=shipment,
            kind=Delay.Kind.CARRIER_DELAYED,
            dedupe_key=f"shipment:{shipment.pk}:carrier_delayed:"
            + (str(delayed.shopify_id) if delayed else evidence_at.isoformat()),
            detected_at=evidence_at,
            detail={"event_id": delayed.shopify_id if delayed else None},
            is_stale=is_stale,
            source=run.source,
            may_trigger=run.may_trigger,
        )
        return
    timeline_and_announce(
        shop=run.shop,
        order=run.order,
        kind=f"shipment.{new_stage.value}",
        occurred_at=evidence_at,
        source=run.source,
        summary=f"Shipment {shipment}: {stage_label(new_stage)}",
        dedupe_key=f"shipment:{shipment.fulfillment_id}:stage:{new_stage.value}",
        trigger=new_stage.value,
        detail={
            **shipment_detail(shipment),
            "happened_at": evidence_at,
            "previous_stage": old_stage,
        },
        news=shipment_news(shipment, happened_at=evidence_at, is_stale=is_stale),
        is_stale=is_stale,
        # A move back on the main line is a correction, not news for the shopper.
        may_trigger=run.may_trigger
        and (stage_is_branch(new_stage) or stage_position(new_stage) >= stage_position(old_stage)),
    )


def _delays_settle(run: _Run) -> None:
    """Close the delays the shipment's new facts end."""
    shipment, at = run.shipment, run.received_at
    if shipment.stage != Stage.DELAYED:
        delays_resolve(
            shop=run.shop,
            shipment=shipment,
            kinds=[Delay.Kind.CARRIER_DELAYED],
            at=at,
            only_if_stage_moved=True,
        )
    if shipment.last_event_at is not None:
        # A new scan ends "no movement" and "never scanned".
        Delay.objects.filter(
            shop=run.shop,
            shipment=shipment,
            resolved_at__isnull=True,
            kind__in=[Delay.Kind.NO_MOVEMENT, Delay.Kind.NEVER_SCANNED],
            detected_at__lt=shipment.last_event_at,
        ).update(resolved_at=at)
    if shipment.stage == Stage.DELIVERED:
        delays_resolve(shop=run.shop, shipment=shipment, kinds=None, at=at)


def _estimate_line_record(
    run: _Run,
    *,
    old_estimate: datetime | None,
    estimate_fact: _Fact | None,
    is_override: bool,
) -> None:
    """A line (and news) when the estimated delivery date moved, in the shop's calendar."""
    shipment = run.shipment
    new_estimate = shipment.estimated_delivery_at
    if new_estimate is None or shipment.stage == Stage.DELIVERED:
        return
    zone = shop_zone(run.shop)
    old_date = old_estimate.astimezone(zone).date() if old_estimate else None
    new_date = new_estimate.astimezone(zone).date()
    if old_date == new_date:
        return
    carried_at = estimate_fact.happened_at if estimate_fact else run.received_at
    if is_override:
        carried_at = run.received_at
    is_stale = is_stale_on_arrival(
        shop=run.shop, happened_at=carried_at, received_at=run.received_at
    )
    timeline_and_announce(
        shop=run.shop,
        order=run.order,
        kind="shipment.estimate_changed",
        occurred_at=carried_at,
        source=run.source,
        summary=f"Shipment {shipment}: estimated delivery {new_date.isoformat()}",
        dedupe_key=(
            f"shipment:{shipment.fulfillment_id}:estimate:"
            f"{old_date.isoformat() if old_date else 'none'}:{new_date.isoformat()}"
        ),
        trigger="estimate_changed",
        detail={
            **shipment_detail(shipment),
            "previous_estimated_delivery_at": jsonable(old_estimate),
        },
        news=shipment_news(shipment, happened_at=carried_at, is_stale=is_stale),
        is_stale=is_stale,
        may_trigger=run.may_trigger,
    )


def shipment_recompute(
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
    run = _Run(shop, order, shipment, source, received_at, may_trigger)
    facts = _facts_of(shipment)
    old_stage = Stage(shipment.stage)
    old_estimate = shipment.estimated_delivery_at
    new_stage = stage_resolve(
        fulfillment_status=shipment.status,
        shipment_status=shipment.shipment_status or shipment.display_status,
        events=[StageSignal(f.stage, f.happened_at, f.shopify_id) for f in facts],
        shipment_status_at=shipment.shopify_updated_at,
    )
    estimate_fact = _shipment_apply(
        shipment, facts=facts, new_stage=new_stage, estimate_override=estimate_override
    )
    if new_stage != old_stage or not _stage_recorded(shop=shop, shipment=shipment):
        _stage_line_record(run, facts=facts, old_stage=old_stage)
    _delays_settle(run)
    _estimate_line_record(
        run,
        old_estimate=old_estimate,
        estimate_fact=estimate_fact,
        is_override=estimate_override is not None,
    )
    if new_stage == Stage.DELIVERED and old_stage != Stage.DELIVERED:
        order_all_delivered_check(
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


def order_all_delivered_check(
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
    return timeline_and_announce(
        shop=shop,
        order=order,
        kind="order.all_delivered",
        occurred_at=delivered_at,
        source=source,
        summary=f"All {len(shipments)} shipment(s) delivered",
        dedupe_key=f"order:{order.shopify_id}:all_delivered",
        trigger="all_delivered",
        detail={
            "shipment_ids": [s.pk for s in shipments],
            "fulfillment_ids": [s.fulfillment_id for s in shipments],
            "delivered_at": delivered_at,
        },
        news=all_delivered_news(delivered_at=delivered_at, shipments=shipments),
        is_stale=is_stale_on_arrival(shop=shop, happened_at=delivered_at, received_at=received_at),
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
                detail=jsonable(detail or {}),
            )
    except IntegrityError:
        return None
    timeline_detail: dict[str, Any] = {
        "kind": kind,
        "delay_id": delay.pk,
        "detected_at": detected_at,
        "shipment_id": shipment.pk if shipment else None,
        **(shipment_detail(shipment) if shipment else {}),
        **(detail or {}),
    }
    timeline_and_announce(
        shop=shop,
        order=order,
        kind="shipment.delayed" if shipment else "order.delayed",
        occurred_at=detected_at,
        source=source,
        summary=DELAY_SUMMARIES.get(Delay.Kind(kind), "Delayed")
        + (f" (shipment {shipment})" if shipment else ""),
        dedupe_key=f"delay:{delay.dedupe_key}",
        trigger="delayed",
        detail=timeline_detail,
        news=delay_news(kind=kind, detected_at=detected_at, shipment=shipment, is_stale=is_stale),
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
