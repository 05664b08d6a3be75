"""What notifications knows of parcels and returns: the latest news each app gave it.

    ShipmentNews ─ shipment_facts_record ─▶ ShipmentFacts (one row per parcel, latest wins)
    ReturnNews ─── return_facts_record ───▶ ReturnFacts (one row per return, latest wins)

The producers send their current state with every piece of news (tracking resolves a parcel's
stage from every scan under the order's lock; returns from Shopify's status), so the newest
call is the truth; only news that is older than what is known and of an earlier stage is
refused (notification_trigger, out of order). These rows answer the questions asked when a
message is due: is the news still news (a "shipped" email once the parcel is delivered is
not), has a return been started, is every parcel delivered; and they give the render the
newest estimate.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from notifications.models import ReturnFacts, ShipmentFacts
from notifications.news import (
    MAIN_LINE_RANK,
    ReturnNews,
    ShipmentNews,
    ShipmentStage,
    news_snapshot,
)
from shopapp.models import Order, Shop

# A return in these states is not (or no longer) "started": it does not stop a review request.
_RETURN_NOT_STARTED = frozenset({"declined", "canceled", "cancelled"})


def _upsert(model: Any, *, lookup: dict[str, Any], values: dict[str, Any]) -> None:
    if model.objects.filter(**lookup).update(**values):
        return
    try:
        with transaction.atomic():
            model.objects.create(**lookup, **values)
    except IntegrityError:
        model.objects.filter(**lookup).update(**values)


def shipment_facts_record(*, shop: Shop, order: Order, news: ShipmentNews) -> None:
    """Keep the parcel's latest news: tracking sends the state it resolved from every scan,
    under the order's lock, so the latest call is the truth."""
    _upsert(
        ShipmentFacts,
        lookup={"shop": shop, "fulfillment_id": news.fulfillment_id},
        values={
            "order": order,
            "stage": news.stage.value,
            "happened_at": news.happened_at,
            "delivered_at": news.delivered_at,
            "snapshot": news_snapshot(news),
        },
    )


def return_facts_record(*, shop: Shop, order: Order, news: ReturnNews) -> None:
    _upsert(
        ReturnFacts,
        lookup={"shop": shop, "return_id": news.return_id},
        values={
            "order": order,
            "status": news.status[:32],
            "happened_at": news.happened_at,
            "snapshot": news_snapshot(news),
        },
    )


def shipment_facts_for(*, shop: Shop, fulfillment_ids: list[int]) -> dict[int, ShipmentFacts]:
    if not fulfillment_ids:
        return {}
    return {
        facts.fulfillment_id: facts
        for facts in ShipmentFacts.objects.filter(shop=shop, fulfillment_id__in=fulfillment_ids)
    }


def order_parcels_count(*, shop: Shop, order: Order) -> int:
    return ShipmentFacts.objects.filter(shop=shop, order=order).count()


def order_all_delivered(*, shop: Shop, order: Order) -> bool:
    stages = list(
        ShipmentFacts.objects.filter(shop=shop, order=order).values_list("stage", flat=True)
    )
    return bool(stages) and all(stage == ShipmentStage.DELIVERED for stage in stages)


def order_return_started(*, shop: Shop, order: Order) -> bool:
    return (
        ReturnFacts.objects.filter(shop=shop, order=order)
        .exclude(status__in=_RETURN_NOT_STARTED)
        .exists()
    )


def is_delivered(facts: ShipmentFacts) -> bool:
    return facts.stage == ShipmentStage.DELIVERED or facts.delivered_at is not None


# News about a parcel that has since been delivered is old: a "shipped" email still helps
# while the parcel travels (it carries the tracking link), not once it has arrived.
_BEFORE_DELIVERY = frozenset(
    {
        ShipmentStage.SHIPPED,
        ShipmentStage.IN_TRANSIT,
        ShipmentStage.OUT_FOR_DELIVERY,
        ShipmentStage.ATTEMPTED_DELIVERY,
        ShipmentStage.READY_FOR_PICKUP,
        ShipmentStage.DELAYED,
        ShipmentStage.PROBLEM,
    }
)


def stage_moved_past(*, trigger: str, facts: ShipmentFacts) -> str | None:
    """The stage that makes news of ``trigger`` about this parcel old, or None."""
    if trigger in _BEFORE_DELIVERY and is_delivered(facts):
        return ShipmentStage.DELIVERED
    is_main_line_news = trigger in MAIN_LINE_RANK and trigger != ShipmentStage.SHIPPED
    if is_main_line_news and MAIN_LINE_RANK.get(facts.stage, 0) > MAIN_LINE_RANK[trigger]:
        return facts.stage
    return None
