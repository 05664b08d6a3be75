"""Delivery estimates from the shop's own history (tracking.estimates): histories built here
with known transit times, so every expected date is worked out by hand."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from shopapp.models import OrderEvent
from shopapp.orders.services import order_upsert
from shopapp.storefront.links import tracking_link_token
from tests.tracking.test_page import (
    body,
    make_order,
    make_shipment,
    make_shop,
    proxy_get,
)
from tests.tracking.tracking_support import fulfil, iso, order_create, parcel_facts
from tracking.estimates import (
    HISTORY_DAYS,
    MIN_DELIVERIES,
    delivery_estimate_at,
    delivery_estimate_predict,
    delivery_stats_rebuild,
)
from tracking.jobs import delivery_stats_refresh_all_job
from tracking.models import DeliveryStat, Stage, TrackingSettings

NOW = timezone.now()
# Shipped at noon UTC (the shops below are on UTC): whole-day transits land on known dates.
SHIPPED = datetime.combine(NOW.date() - timedelta(days=1), datetime.min.time(), UTC).replace(
    hour=12
)
TODAY = NOW.date()


def delivered(
    shop,
    days: list[float],
    *,
    carrier: str = "Canada Post",
    country: str = "CA",
    region: str = "ON",
    region_name: str = "Ontario",
    ago: timedelta = timedelta(days=10),
    service: str = "",
) -> None:
    """Parcels that took ``days`` each, delivered ``ago`` before now."""
    order = make_order(shop)
    for d in days:
        arrived = NOW - ago
        make_shipment(
            order,
            stage=Stage.DELIVERED,
            tracking_company=carrier,
            destination_country_code=country,
            destination_province_code=region,
            destination_province=region_name,
            service=service,
            shopify_created_at=arrived - timedelta(days=d),
            delivered_at=arrived,
        )


def parcel(shop, **fields):
    defaults = {
        "tracking_company": "Canada Post",
        "destination_country_code": "CA",
        "destination_province_code": "ON",
        "destination_province": "Ontario",
        "shopify_created_at": SHIPPED,
    }
    return make_shipment(make_order(shop), **{**defaults, **fields})


# 25 parcels: 2, 3, 4, 5 and 6 days, five of each. Inclusive percentiles over 25 values: the
# 10th is at rank 2.4 (2 days), the median at rank 12 (4), the 90th at rank 21.6 (6).
SPREAD = [2.0] * 5 + [3.0] * 5 + [4.0] * 5 + [5.0] * 5 + [6.0] * 5


@pytest.fixture
def shop(db):
    return make_shop(timezone="UTC")


def test_the_range_is_the_10th_to_90th_percentile_of_the_group(shop):
    # given 25 deliveries to Ontario by Canada Post, 2 to 6 days each
    delivered(shop, SPREAD)

    assert delivery_stats_rebuild(shop=shop, now=NOW) == 4  # carrier/region … all/country

    estimate = delivery_estimate_predict(shop=shop, shipment=parcel(shop), today=TODAY)
    assert estimate is not None
    assert (estimate.earliest, estimate.likely, estimate.latest) == (
        SHIPPED.date() + timedelta(days=2),
        SHIPPED.date() + timedelta(days=4),
        SHIPPED.date() + timedelta(days=6),
    )
    assert estimate.basis("en") == "Based on 25 deliveries to Ontario by Canada Post"


def test_not_enough_history_gives_no_estimate(shop):
    # given one delivery fewer than the minimum, to the parcel's region and country
    delivered(shop, SPREAD[: MIN_DELIVERIES - 1])

    assert delivery_stats_rebuild(shop=shop, now=NOW) == 0

    assert delivery_estimate_predict(shop=shop, shipment=parcel(shop), today=TODAY) is None
    assert not DeliveryStat.objects.filter(shop=shop).exists()


def test_a_thin_region_falls_back_to_the_carriers_country(shop):
    # given 25 Canada Post deliveries to Quebec (2-6 days) and 5 to Ontario (10 days)
    delivered(shop, SPREAD, region="QC", region_name="Québec")
    delivered(shop, [10.0] * 5)
    delivery_stats_rebuild(shop=shop, now=NOW)

    estimate = delivery_estimate_predict(shop=shop, shipment=parcel(shop), today=TODAY)

    # then the Ontario parcel is estimated from Canada Post's 30 deliveries to Canada
    assert estimate is not None
    assert estimate.province_code == ""
    assert estimate.deliveries == 30
    assert estimate.basis("en") == "Based on 30 deliveries to Canada by Canada Post"
    # 30 values: the 90th percentile is at rank 26.1, among the 10-day Ontario parcels
    assert estimate.latest == SHIPPED.date() + timedelta(days=10)
    assert estimate.earliest == SHIPPED.date() + timedelta(days=2)


def test_a_carrier_without_history_falls_back_to_every_carrier_to_the_region(shop):
    # given 25 Canada Post deliveries to Ontario and 3 by UPS
    delivered(shop, SPREAD)
    delivered(shop, [1.0] * 3, carrier="UPS")
    delivery_stats_rebuild(shop=shop, now=NOW)

    estimate = delivery_estimate_predict(
        shop=shop, shipment=parcel(shop, tracking_company="UPS"), today=TODAY
    )

    assert estimate is not None
    assert (estimate.carrier, estimate.province_code, estimate.deliveries) == ("", "ON", 28)
    assert estimate.basis("en") == "Based on 28 deliveries to Ontario"


def test_the_region_group_wins_once_it_has_enough(shop):
    # given 25 Canada Post deliveries to Ontario (2-6 days) and 25 to Quebec (10 days)
    delivered(shop, SPREAD)
    delivered(shop, [10.0] * 25, region="QC", region_name="Québec")
    delivery_stats_rebuild(shop=shop, now=NOW)

    estimate = delivery_estimate_predict(shop=shop, shipment=parcel(shop), today=TODAY)

    assert estimate is not None
    assert estimate.latest == SHIPPED.date() + timedelta(days=6)
    assert estimate.basis("en") == "Based on 25 deliveries to Ontario by Canada Post"


def test_the_carriers_service_is_the_most_specific_group(shop):
    # given Canada Post to Ontario: 25 Priority parcels in 1 day, 25 Regular in 2-6 days
    delivered(shop, [1.0] * 25, service="Priority")
    delivered(shop, SPREAD, service="Regular Parcel")
    delivery_stats_rebuild(shop=shop, now=NOW)

    priority = delivery_estimate_predict(
        shop=shop, shipment=parcel(shop, service="Priority"), today=TODAY
    )
    unknown = delivery_estimate_predict(shop=shop, shipment=parcel(shop), today=TODAY)
    # a service with no history of its own falls back to the carrier's every service
    thin = delivery_estimate_predict(
        shop=shop, shipment=parcel(shop, service="Xpresspost"), today=TODAY
    )

    assert priority is not None
    assert unknown is not None
    assert thin is not None
    assert priority.latest == SHIPPED.date() + timedelta(days=1)
    assert priority.basis("en") == "Based on 25 deliveries to Ontario by Canada Post (Priority)"
    assert (unknown.service, unknown.deliveries) == ("", 50)
    assert (thin.service, thin.deliveries) == ("", 50)


def test_the_order_keeps_its_shipping_rate_and_a_new_parcel_takes_it(shop):
    # the orders/create sample's shipping line is "Generic Shipping"
    order = order_create(shop)
    assert order.shipping_method == "Generic Shipping"
    # reconciliation's read has no shipping lines: what the webhook said stays
    payload = {"id": order.shopify_id, "updated_at": iso(NOW), "name": order.name}
    order_upsert(shop=shop, payload=payload, source=OrderEvent.Source.RECONCILIATION)
    order.refresh_from_db()
    assert order.shipping_method == "Generic Shipping"

    shipment = fulfil(shop, order, fulfillment_id=93)
    assert shipment.service == "Generic Shipping"


def test_another_shops_history_is_never_used(shop):
    # given plenty of history in another shop only
    other = make_shop(timezone="UTC")
    delivered(other, SPREAD * 2)
    delivery_stats_rebuild(shop=other, now=NOW)

    assert delivery_stats_rebuild(shop=shop, now=NOW) == 0
    assert delivery_estimate_predict(shop=shop, shipment=parcel(shop), today=TODAY) is None
    # and the other shop's rebuild counts its own parcels only
    delivered(shop, [1.0] * 5)
    delivery_stats_rebuild(shop=other, now=NOW)
    assert set(DeliveryStat.objects.filter(shop=other).values_list("deliveries", flat=True)) == {50}


def test_shopifys_own_estimate_wins(shop):
    delivered(shop, SPREAD)
    delivery_stats_rebuild(shop=shop, now=NOW)
    shopify_says = datetime(2030, 1, 15, 18, 0, tzinfo=UTC)

    shipment = parcel(shop, estimated_delivery_at=shopify_says)

    assert delivery_estimate_predict(shop=shop, shipment=shipment, today=TODAY) is None


def test_no_estimate_for_delivered_failed_or_long_overdue_parcels(shop):
    delivered(shop, SPREAD)
    delivery_stats_rebuild(shop=shop, now=NOW)

    done = parcel(shop, stage=Stage.DELIVERED, delivered_at=NOW)
    failed = parcel(shop, stage=Stage.PROBLEM)
    # shipped 7 days before today: even the slowest tenth (6 days) would be in by now
    overdue = parcel(shop, shopify_created_at=SHIPPED - timedelta(days=6))

    for shipment in (done, failed, overdue):
        assert delivery_estimate_predict(shop=shop, shipment=shipment, today=TODAY) is None


def test_a_range_that_started_before_today_starts_today(shop):
    delivered(shop, SPREAD)
    delivery_stats_rebuild(shop=shop, now=NOW)
    # shipped 3 days before the day before today: 2-6 days is from the day before to + 2
    shipment = parcel(shop, shopify_created_at=SHIPPED - timedelta(days=3))

    estimate = delivery_estimate_predict(shop=shop, shipment=shipment, today=TODAY)

    assert estimate is not None
    assert (estimate.earliest, estimate.latest) == (TODAY, TODAY + timedelta(days=2))


def test_a_big_group_is_sampled_but_counted_in_full(shop, monkeypatch):
    # given 250 deliveries, 2 to 6 days, and a sample of at most 40 per group
    monkeypatch.setattr("tracking.estimates.MAX_SAMPLES_PER_GROUP", 40)
    delivered(shop, SPREAD * 10)
    delivery_stats_rebuild(shop=shop, now=NOW)

    stat = DeliveryStat.objects.get(shop=shop, carrier="Canada Post", province_code="ON")
    assert stat.deliveries == 250
    assert 2.0 <= stat.days_p10 <= stat.days_p50 <= stat.days_p90 <= 6.0


def test_deliveries_older_than_the_window_and_absurd_transits_are_left_out(shop):
    delivered(shop, SPREAD, ago=timedelta(days=HISTORY_DAYS + 1))
    delivered(shop, [90.0] * 25)  # "delivered" three months after shipping: a data error

    assert delivery_stats_rebuild(shop=shop, now=NOW) == 0


def test_the_rebuild_replaces_the_shops_statistics(shop):
    delivered(shop, SPREAD)
    delivery_stats_rebuild(shop=shop, now=NOW)
    # when the history ages out of the window
    assert delivery_stats_rebuild(shop=shop, now=NOW + timedelta(days=HISTORY_DAYS)) == 0
    assert not DeliveryStat.objects.filter(shop=shop).exists()


def test_the_fulfillment_webhook_keeps_the_destination_region(shop):
    # the sample fulfillment goes to Kentucky (KY), United States
    order = order_create(shop)
    shipment = fulfil(shop, order, fulfillment_id=77)

    assert (
        shipment.destination_country_code,
        shipment.destination_province_code,
        shipment.destination_province,
    ) == ("US", "KY", "Kentucky")


def test_the_daily_job_rebuilds_every_active_shop_through_a_real_worker(
    shop, rq_worker, django_capture_on_commit_callbacks
):
    inactive = make_shop(timezone="UTC", is_active=False)
    for s in (shop, inactive):
        delivered(s, SPREAD)

    with django_capture_on_commit_callbacks(execute=True):
        assert delivery_stats_refresh_all_job() == 1
    rq_worker()

    assert DeliveryStat.objects.filter(shop=shop).count() == 4
    assert not DeliveryStat.objects.filter(shop=inactive).exists()


# -- the tracking page -----------------------------------------------------------------------


def test_the_page_shows_the_predicted_range_and_how_it_was_made(client, shop):
    TrackingSettings.objects.create(shop=shop)
    delivered(shop, SPREAD)
    delivery_stats_rebuild(shop=shop, now=NOW)
    shipment = parcel(shop, shopify_created_at=NOW - timedelta(hours=1))

    html = body(proxy_get(client, shop, "/" + tracking_link_token(shipment.order)))

    earliest = (NOW - timedelta(hours=1) + timedelta(days=2)).date()
    latest = (NOW - timedelta(hours=1) + timedelta(days=6)).date()
    assert f'datetime="{earliest:%Y-%m-%d}"' in html
    assert f'datetime="{latest:%Y-%m-%d}"' in html
    assert "Based on 25 deliveries to Ontario by Canada Post" in html


def test_the_page_shows_shopifys_estimate_and_no_prediction_when_shopify_gives_one(client, shop):
    TrackingSettings.objects.create(shop=shop)
    delivered(shop, SPREAD)
    delivery_stats_rebuild(shop=shop, now=NOW)
    shopify_says = NOW + timedelta(days=9)
    shipment = parcel(shop, estimated_delivery_at=shopify_says)

    html = body(proxy_get(client, shop, "/" + tracking_link_token(shipment.order)))

    assert "Based on" not in html
    assert "pp-estimate__basis" not in html
    assert shopify_says.isoformat(timespec="seconds")[:10] in html


def test_the_basis_is_translated(client, shop):
    TrackingSettings.objects.create(shop=shop)
    delivered(shop, SPREAD, country="DE", region="", region_name="", carrier="DHL Paket")
    delivery_stats_rebuild(shop=shop, now=NOW)
    shipment = parcel(
        shop,
        tracking_company="DHL Paket",
        destination_country_code="DE",
        destination_province_code="",
        destination_province="",
        shopify_created_at=NOW - timedelta(hours=1),
    )

    html = body(
        proxy_get(client, shop, "/" + tracking_link_token(shipment.order), extra=[("locale", "de")])
    )

    assert "Basierend auf 25 Zustellungen nach Deutschland mit DHL Paket" in html


def test_estimate_dates_are_days_in_the_shops_timezone(db):
    # a shop in Tokyo (UTC+9): a parcel shipped 20:00 UTC is shipped the next day there
    shop = make_shop(timezone="Asia/Tokyo")
    delivered(shop, SPREAD)
    delivery_stats_rebuild(shop=shop, now=NOW)
    shipped = datetime.combine(TODAY, datetime.min.time(), UTC).replace(hour=20)

    estimate = delivery_estimate_predict(
        shop=shop, shipment=parcel(shop, shopify_created_at=shipped), today=date(2000, 1, 1)
    )

    assert estimate is not None
    assert estimate.earliest == TODAY + timedelta(days=3)


# -- the notifications' facts ----------------------------------------------------------------


def test_the_parcels_news_carries_the_last_day_of_the_predicted_range(shop):
    # given 25 UPS deliveries to Kentucky, 2-6 days (the sample fulfillment goes there by UPS)
    delivered(shop, SPREAD, carrier="UPS", country="US", region="KY", region_name="Kentucky")
    delivery_stats_rebuild(shop=shop, now=NOW)
    shipped = NOW - timedelta(hours=1)

    # when the fulfillment webhook arrives
    fulfil(shop, order_create(shop), fulfillment_id=91, created_at=iso(shipped))

    # then what notifications knows says: by the 90th percentile's day, noon in the shop's zone
    facts = parcel_facts(shop, 91)
    assert facts is not None
    expected = datetime.combine(
        (shipped + timedelta(days=6)).date(), datetime.min.time(), UTC
    ).replace(hour=12)
    assert facts.snapshot["estimated_delivery_at"] == expected.isoformat()


def test_shopifys_estimate_is_the_one_notifications_get(shop):
    delivered(shop, SPREAD)
    delivery_stats_rebuild(shop=shop, now=NOW)
    shopify_says = datetime(2030, 1, 15, 18, 0, tzinfo=UTC)

    with_shopify = parcel(shop, estimated_delivery_at=shopify_says)
    without = parcel(shop, shopify_created_at=NOW - timedelta(hours=1))

    assert delivery_estimate_at(shop=shop, shipment=with_shopify) == shopify_says
    predicted = delivery_estimate_at(shop=shop, shipment=without)
    assert predicted is not None
    assert predicted.date() == (NOW - timedelta(hours=1) + timedelta(days=6)).date()


def test_the_parcels_news_has_no_estimate_without_history(shop):
    fulfil(shop, order_create(shop), fulfillment_id=92, created_at=iso(NOW))

    facts = parcel_facts(shop, 92)
    assert facts is not None
    assert facts.snapshot["estimated_delivery_at"] is None
