"""Delay detection: each kind with per-shop thresholds, business days, found once, resolved."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from shopapp.models import OrderEvent
from tests.shopapp.webhook_support import make_shop
from tests.tracking.tracking_support import (
    LINE_ITEM_IDS,
    announced_for,
    fulfil,
    iso,
    order_create,
    scan,
)
from tracking.delays import business_deadline, delays_detect
from tracking.jobs import delays_detect_all_job
from tracking.models import Delay, Shipment
from tracking.services import tracking_settings_get

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def _no_refresh_enqueue(monkeypatch):
    monkeypatch.setattr("tracking.services._enqueue_refresh_on_commit", lambda shipment: None)


@pytest.fixture
def triggers(shop):
    return announced_for(shop)


@pytest.fixture
def shop():
    shop = make_shop("alpha.myshopify.com", timezone="America/New_York")
    settings = tracking_settings_get(shop=shop)
    settings.origin_country_code = "US"
    settings.save()
    return shop


def _delayed(triggers) -> list[str]:
    return [c["news"]["kind"] for c in triggers.calls if c["trigger"] == "delayed"]


def test_business_days_skip_the_weekend():
    friday = datetime(2026, 3, 6, 10, 0, tzinfo=NEW_YORK)
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=NEW_YORK)

    assert business_deadline(friday, 3, NEW_YORK) == datetime(2026, 3, 11, 10, 0, tzinfo=NEW_YORK)
    # paid on a weekend: Monday, Tuesday, Wednesday count
    assert business_deadline(saturday, 3, NEW_YORK) == datetime(2026, 3, 12, 0, 0, tzinfo=NEW_YORK)
    assert business_deadline(friday, 0, NEW_YORK) == friday


def test_business_days_are_counted_on_the_shops_calendar():
    # Friday 23:30 in New York is already Saturday in UTC: still a Friday payment
    friday_late = datetime(2026, 3, 7, 4, 30, tzinfo=UTC)

    deadline = business_deadline(friday_late, 1, NEW_YORK)

    assert deadline.astimezone(NEW_YORK) == datetime(2026, 3, 9, 23, 30, tzinfo=NEW_YORK)


def test_unfulfilled_after_n_business_days_across_a_weekend_found_once(shop, triggers):
    # given an order paid on Friday 10:00 in the shop's timezone, 3 business days allowed
    paid = datetime(2026, 3, 6, 10, 0, tzinfo=NEW_YORK)
    order = order_create(shop, processed_at=iso(paid))

    # when the detector runs on Tuesday (4 calendar days, 2 business days later)
    tuesday = datetime(2026, 3, 10, 12, 0, tzinfo=NEW_YORK)
    assert delays_detect(shop=shop, now=tuesday)["unfulfilled"] == 0
    assert not Delay.objects.exists()

    # then on Wednesday after 10:00 it is found, once, whatever the repeats
    wednesday = datetime(2026, 3, 11, 10, 1, tzinfo=NEW_YORK)
    assert delays_detect(shop=shop, now=wednesday)["unfulfilled"] == 1
    assert delays_detect(shop=shop, now=wednesday + timedelta(minutes=15))["unfulfilled"] == 0
    delay = Delay.objects.get()
    assert (delay.order_id, delay.shipment_id, delay.kind) == (order.pk, None, "unfulfilled")
    assert _delayed(triggers) == ["unfulfilled"]
    assert OrderEvent.objects.filter(order=order, kind="order.delayed").count() == 1


def test_unfulfilled_ignores_unpaid_cancelled_and_shipped_orders(shop, triggers):
    paid = timezone.now() - timedelta(days=10)
    order_create(shop, order_id=1, processed_at=iso(paid), financial_status="pending")
    order_create(
        shop, order_id=2, processed_at=iso(paid), cancelled_at=iso(paid + timedelta(hours=1))
    )
    order_create(shop, order_id=3, processed_at=iso(paid), fulfillment_status="fulfilled")

    assert delays_detect(shop=shop)["unfulfilled"] == 0
    assert _delayed(triggers) == []


def test_unfulfilled_threshold_is_per_shop(shop, triggers):
    # given a shop that allows 10 business days
    settings = tracking_settings_get(shop=shop)
    settings.unfulfilled_business_days = 10
    settings.save()
    order_create(shop, processed_at=iso(timezone.now() - timedelta(days=8)))

    assert delays_detect(shop=shop)["unfulfilled"] == 0


def test_no_movement_uses_domestic_and_international_thresholds(shop, triggers):
    order = order_create(shop)
    now = timezone.now()
    domestic = fulfil(shop, order, fulfillment_id=1, line_item_ids=LINE_ITEM_IDS[:1])
    abroad = fulfil(
        shop,
        order,
        fulfillment_id=2,
        line_item_ids=LINE_ITEM_IDS[1:],
        destination={"country_code": "CA"},
    )
    # last scans 4 days ago: over the domestic 3, under the international 7
    scan(shop, domestic, "in_transit", now - timedelta(days=4))
    scan(shop, abroad, "in_transit", now - timedelta(days=4))

    assert delays_detect(shop=shop, now=now)["no_movement"] == 1
    assert Delay.objects.get().shipment_id == domestic.pk

    # eight days in, the international one is stalled too; the domestic one is not found twice
    later = now + timedelta(days=4)
    assert delays_detect(shop=shop, now=later)["no_movement"] == 1
    assert sorted(Delay.objects.values_list("shipment_id", flat=True)) == sorted(
        [domestic.pk, abroad.pk]
    )
    assert _delayed(triggers) == ["no_movement", "no_movement"]


def test_a_new_scan_resolves_no_movement(shop, triggers):
    order = order_create(shop)
    now = timezone.now()
    shipment = fulfil(shop, order, fulfillment_id=3)
    scan(shop, shipment, "in_transit", now - timedelta(days=4))
    delays_detect(shop=shop, now=now)

    scan(shop, shipment, "in_transit", now + timedelta(minutes=1))

    assert Delay.objects.get().resolved_at is not None


def test_past_the_estimated_delivery_date(shop, triggers):
    order = order_create(shop)
    now = timezone.now()
    late = fulfil(shop, order, fulfillment_id=4, line_item_ids=LINE_ITEM_IDS[:1])
    due_today = fulfil(shop, order, fulfillment_id=5, line_item_ids=LINE_ITEM_IDS[1:2])
    delivered = fulfil(shop, order, fulfillment_id=6, line_item_ids=LINE_ITEM_IDS[2:])
    yesterday = iso(now - timedelta(days=1, hours=1))
    scan(shop, late, "in_transit", now - timedelta(hours=2), estimated_delivery_at=yesterday)
    scan(shop, due_today, "in_transit", now - timedelta(hours=2), estimated_delivery_at=iso(now))
    scan(shop, delivered, "in_transit", now - timedelta(hours=3), estimated_delivery_at=yesterday)
    scan(shop, delivered, "delivered", now - timedelta(hours=1))

    assert delays_detect(shop=shop, now=now)["past_estimate"] == 1
    assert delays_detect(shop=shop, now=now)["past_estimate"] == 0
    assert Delay.objects.get(kind="past_estimate").shipment_id == late.pk

    # delivery resolves it
    scan(shop, late, "delivered", now)
    assert Delay.objects.get(kind="past_estimate").resolved_at is not None


def test_label_created_but_never_scanned(shop, triggers):
    order = order_create(shop)
    now = timezone.now()
    old = now - timedelta(days=4)
    fulfil(
        shop,
        order,
        fulfillment_id=7,
        line_item_ids=LINE_ITEM_IDS[:1],
        updated_at=old,
        shipment_status="label_printed",
    )
    fresh = fulfil(
        shop,
        order,
        fulfillment_id=8,
        line_item_ids=LINE_ITEM_IDS[1:2],
        updated_at=now - timedelta(days=1),
        shipment_status="label_purchased",
    )
    scanned = fulfil(
        shop,
        order,
        fulfillment_id=9,
        line_item_ids=LINE_ITEM_IDS[2:],
        updated_at=old,
        shipment_status="confirmed",
    )
    scan(shop, scanned, "in_transit", now - timedelta(hours=1))

    assert delays_detect(shop=shop, now=now)["never_scanned"] == 1
    # the younger label reaches 3 days two days later; nothing is found twice
    assert delays_detect(shop=shop, now=now + timedelta(days=1))["never_scanned"] == 0
    assert delays_detect(shop=shop, now=now + timedelta(days=2, hours=1))["never_scanned"] == 1
    assert delays_detect(shop=shop, now=now + timedelta(days=3))["never_scanned"] == 0
    assert sorted(
        Delay.objects.filter(kind="never_scanned").values_list(
            "shipment__fulfillment_id", flat=True
        )
    ) == [7, 8]
    assert fresh.pk in Delay.objects.values_list("shipment_id", flat=True)


def test_shops_are_isolated(shop, triggers):
    # given a stalled shipment in shop A and a fresh one in shop B
    other = make_shop("beta.myshopify.com")
    triggers.listen(other)
    now = timezone.now()
    order_a = order_create(shop)
    order_b = order_create(other)
    scan(shop, fulfil(shop, order_a, fulfillment_id=1), "in_transit", now - timedelta(days=9))
    scan(other, fulfil(other, order_b, fulfillment_id=1), "in_transit", now - timedelta(hours=1))

    delays_detect(shop=other, now=now)
    assert not Delay.objects.exists()

    delays_detect(shop=shop, now=now)
    assert list(Delay.objects.values_list("shop_id", flat=True)) == [shop.pk]
    assert {c["shop"].pk for c in triggers.calls if c["trigger"] == "delayed"} == {shop.pk}


def test_cron_job_detects_each_active_shop_through_redis(
    shop, triggers, rq_worker, django_capture_on_commit_callbacks
):
    # given a stalled shipment in an active shop and one in an uninstalled shop
    inactive = make_shop("gone.myshopify.com", is_active=False)
    now = timezone.now()
    for s in (shop, inactive):
        order = order_create(s)
        scan(s, fulfil(s, order, fulfillment_id=1), "in_transit", now - timedelta(days=9))

    # when cron's fan-out runs (its enqueues wait for the commit) and a real worker drains
    with django_capture_on_commit_callbacks(execute=True):
        assert delays_detect_all_job() == 1
    rq_worker()

    assert list(Delay.objects.values_list("shop_id", "kind")) == [(shop.pk, "no_movement")]
    assert Shipment.objects.filter(shop=inactive).get().delays.count() == 0
