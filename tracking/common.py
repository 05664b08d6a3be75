"""What tracking's service modules share: settings, small parsers, staleness, errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from shopapp.models import Shop
from tracking.models import Stage, TrackingSettings

# shipment_status values that mean "a label exists" but no carrier has touched the parcel
# (REST Fulfillment.shipment_status, shopify.dev/docs/api/admin-rest/latest/resources/fulfillment).
LABEL_STATUSES = frozenset({"label_printed", "label_purchased", "confirmed"})
# Event stages that are not a carrier scan: "no movement for N days" is measured from scans.
NOT_A_SCAN = frozenset({Stage.ORDERED, Stage.SHIPPED})


class OrderNotMirrored(Exception):
    """A fulfillment arrived before its order. Retryable: orders/create is normally first
    and reconciliation pulls a lost order within minutes; the webhook job's RQ retries
    (10 s … 30 min) wait for either."""


class ShipmentNotMirrored(Exception):
    """A fulfillment event arrived before its fulfillment. Retryable, as above."""


def text(value: Any, max_length: int) -> str:
    return ("" if value is None else str(value))[:max_length]


def lower(value: Any) -> str:
    return str(value).strip().lower() if value else ""


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


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


def is_stale_on_arrival(*, shop: Shop, happened_at: datetime | None, received_at: datetime) -> bool:
    """Whether a fact was older than the shop's stale age when it reached us: recorded, and
    marked stale on the timeline, but never announced."""
    if happened_at is None:
        return False
    hours = tracking_settings_get(shop=shop).stale_event_hours
    return happened_at < received_at - timedelta(hours=hours)
