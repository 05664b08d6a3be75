"""The tracking page's cache (tracking.page_cache): a page is served from Redis only while
nothing it shows has changed, whoever changed it, and in a fixed number of queries.

Order.version is bumped by PostgreSQL triggers: the tests below change what the page shows
through the app's own services (webhook handlers' services), through plain ORM writes and
through bulk ``update()`` calls that no Python code sees, and read the page right after.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shopapp.branding.services import BrandingChange, branding_save
from shopapp.models import LineItem, Order, Shop
from shopapp.orders.services import order_upsert
from shopapp.storefront.links import tracking_link_token
from tests.tracking.test_page import (
    body,
    make_event,
    make_line_item,
    make_order,
    make_shipment,
    make_shop,
    proxy_get,
)
from tests.tracking.tracking_support import (
    SOURCE,
    event_payload,
    fulfil,
    order_create,
    scan,
)
from tracking.estimates import MIN_DELIVERIES, delivery_stats_rebuild
from tracking.models import (
    Delay,
    Shipment,
    ShipmentLineItem,
    Stage,
    TrackingEvent,
    TrackingPageView,
    TrackingSettings,
)
from tracking.page_cache import order_page_key
from tracking.selectors import storefront_branding, tracking_settings_for_shop
from tracking.services import tracking_event_delete

pytestmark = pytest.mark.django_db


def _page(client, order: Order):
    return proxy_get(client, order.shop, "/" + tracking_link_token(order))


def _queries(client, order: Order) -> tuple[int, str]:
    shop, path = order.shop, "/" + tracking_link_token(order)
    with CaptureQueriesContext(connection) as captured:
        response = proxy_get(client, shop, path)
    assert response.status_code == 200
    return len(captured.captured_queries), body(response)


def _order_with(shipments: int, events: int) -> Order:
    shop = make_shop()
    TrackingSettings.objects.create(shop=shop)
    order = make_order(shop)
    lines = [make_line_item(order, f"Item {i}") for i in range(shipments)]
    for s in range(shipments):
        shipment = make_shipment(order, items=[(lines[s], 1)])
        for i in range(events):
            make_event(shipment, happened_at=datetime(2026, 3, 4, tzinfo=UTC) + timedelta(hours=i))
    return order


# ---------------------------------------------------------------------------------------------
# Queries: constant whatever the order holds, fewer once cached


@pytest.mark.parametrize(("shipments", "events"), [(1, 1), (6, 80)])
def test_queries_per_page_do_not_grow_with_shipments_and_events(client, shipments, events):
    # given an order with one shipment and one event, or six with 80 events each, seen before
    order = _order_with(shipments, events)
    TrackingPageView.objects.create(shop=order.shop, order=order, views=1)

    # when the page is opened twice
    first, first_html = _queries(client, order)
    second, second_html = _queries(client, order)

    # then the first (rendered): shop; settings, branding, order and the view counter's
    # UPDATE in one round trip; line items, shipments, their items, events, delays, open
    # problem cases in another; the second (cached): the shop, then the first round trip
    assert first == 3
    assert second == 2
    assert second_html == first_html
    assert first_html.count("pp-timeline__event") == shipments * events


def test_the_counts_are_the_same_for_one_event_and_many(client):
    few = _order_with(1, 1)
    many = _order_with(6, 80)
    _page(client, few), _page(client, many)  # the view counters exist, as for a second visit

    assert _queries(client, few)[0] == _queries(client, many)[0]


# ---------------------------------------------------------------------------------------------
# Every change shows at once


def _cached_page(client, order: Order) -> str:
    html = body(_page(client, order))
    assert body(_page(client, order)) == html  # served from the cache now
    return html


def test_a_new_scan_through_the_webhook_service_shows_at_once(client):
    shop = make_shop()
    order = order_create(shop)
    shipment = fulfil(shop, order, fulfillment_id=880001)
    assert "With the driver in Lyon" not in _cached_page(client, order)

    scan(shop, shipment, "out_for_delivery", message="With the driver in Lyon")

    assert "With the driver in Lyon" in body(_page(client, order))


def test_a_picture_read_after_the_page_was_cached_shows_at_once(client):
    # given a cached page whose item has no picture yet
    shop = make_shop()
    order = make_order(shop)
    line = make_line_item(order, "Trail shoe")
    make_shipment(order, items=[(line, 1)])
    assert "<img " not in _cached_page(client, order)

    # when the background read stores it (shopapp.orders.images writes with bulk_update)
    line.image_url = "https://cdn.shopify.com/s/files/1/shoe.png"
    LineItem.objects.bulk_update([line], ["image_url"])

    # then the page shows it
    assert 'src="https://cdn.shopify.com/s/files/1/shoe.png"' in body(_page(client, order))


def test_a_scan_withdrawn_by_the_merchant_disappears_at_once(client):
    shop = make_shop()
    order = order_create(shop)
    shipment = fulfil(shop, order, fulfillment_id=880002)
    scan(shop, shipment, "in_transit", message="Arrived at sorting centre", id=770001)
    assert "Arrived at sorting centre" in _cached_page(client, order)

    tracking_event_delete(
        shop=shop,
        payload=event_payload(
            fulfillment_id=shipment.fulfillment_id,
            order_id=order.shopify_id,
            status="in_transit",
            happened_at=timezone.now(),
            id=770001,
        ),
        source=SOURCE,
    )

    assert "Arrived at sorting centre" not in body(_page(client, order))


def test_an_order_cancelled_by_webhook_shows_at_once(client):
    shop = make_shop()
    order = order_create(shop)
    assert "This order was cancelled." not in _cached_page(client, order)

    order_upsert(
        shop=shop,
        payload={
            **_order_payload(order),
            "cancelled_at": timezone.now().isoformat(),
            "cancel_reason": "customer",
            "updated_at": timezone.now().isoformat(),
        },
        source=SOURCE,
    )

    assert "This order was cancelled." in body(_page(client, order))


def _order_payload(order: Order) -> dict:
    from tests.shopapp.webhook_support import fixture_json

    payload = fixture_json("orders/create")
    payload.update({"id": order.shopify_id, "cancelled_at": None, "financial_status": "paid"})
    return payload


@pytest.mark.parametrize(
    "change",
    [
        "event_bulk_update",
        "event_delete",
        "shipment_bulk_update",
        "shipment_delete",
        "shipment_item_delete",
        "line_item_bulk_update",
        "delay_create",
        "order_bulk_update",
        "order_stale_save",
    ],
)
def test_any_write_to_what_the_page_shows_is_a_new_version(client, change):
    # given an order whose page is in the cache
    order = _order_with(2, 3)
    shipment = Shipment.objects.filter(order=order).order_by("id").first()
    assert shipment is not None
    stale = Order.objects.get(pk=order.pk)
    before = _cached_page(client, order)
    version = Order.objects.get(pk=order.pk).version

    # when something the page shows changes, however it is written
    if change == "event_bulk_update":
        TrackingEvent.objects.filter(shipment=shipment).update(message="Held at customs")
    elif change == "event_delete":
        TrackingEvent.objects.filter(shipment=shipment).delete()
    elif change == "shipment_bulk_update":
        Shipment.objects.filter(pk=shipment.pk).update(tracking_company="Royal Mail")
    elif change == "shipment_delete":
        shipment.delete()
    elif change == "shipment_item_delete":
        ShipmentLineItem.objects.filter(shipment=shipment).delete()
    elif change == "line_item_bulk_update":
        LineItem.objects.filter(order=order).update(title="Renamed item")
    elif change == "delay_create":
        Delay.objects.create(
            shop=order.shop,
            order=order,
            shipment=shipment,
            kind=Delay.Kind.NO_MOVEMENT,
            dedupe_key="k1",
            detected_at=timezone.now(),
        )
    elif change == "order_bulk_update":
        Order.objects.filter(pk=order.pk).update(name="#RENAMED")
    elif change == "order_stale_save":
        # a child changes, then an instance loaded before it saves the order: the version
        # written back is older, the trigger still moves it on
        Shipment.objects.filter(pk=shipment.pk).update(tracking_company="Royal Mail")
        stale.name = "#RENAMED"
        stale.save()

    # then the version moved on and the page shows the change at once
    assert Order.objects.get(pk=order.pk).version > version
    after = body(_page(client, order))
    assert after != before
    expected = {
        "event_bulk_update": "Held at customs",
        "shipment_bulk_update": "Royal Mail",
        "line_item_bulk_update": "Renamed item",
        "delay_create": "taking longer than expected",
        "order_bulk_update": "#RENAMED",
        "order_stale_save": "Royal Mail",
    }.get(change)
    if expected:
        assert expected in after


def test_settings_and_shop_changes_are_part_of_the_key(client):
    order = _order_with(1, 1)
    _cached_page(client, order)

    TrackingSettings.objects.filter(shop=order.shop).update(custom_message="Thanks for waiting!")
    assert "Thanks for waiting!" in body(_page(client, order))

    order.shop.name = "Renamed Outdoor"
    order.shop.save()
    TrackingSettings.objects.filter(shop=order.shop).update(logo_url="https://cdn.example/l.png")
    assert 'alt="Renamed Outdoor"' in body(_page(client, order))


def test_the_shops_branding_is_part_of_the_key(client):
    # given a cached page
    order = _order_with(1, 1)
    _cached_page(client, order)

    # when the merchant sets a brand (shopapp.branding, no write to the order)
    branding_save(
        shop=order.shop,
        change=BrandingChange(
            accent_color="#1f5130",
            text_color="#111111",
            background_color="#ffffff",
            font="georgia",
            support_email="help@outdoor.example",
            footer_text="Outdoor Co, 1 Trail Road",
        ),
    )

    # then the next view shows it
    page = body(_page(client, order))
    assert "Outdoor Co, 1 Trail Road" in page
    assert "help@outdoor.example" in page


def test_the_language_asked_for_is_part_of_the_key(client):
    order = _order_with(1, 1)
    english = body(proxy_get(client, order.shop, "/" + tracking_link_token(order)))
    french = body(
        proxy_get(client, order.shop, "/" + tracking_link_token(order), extra=[("locale", "fr")])
    )
    assert '<section class="pp-track" lang="en"' in english
    assert '<section class="pp-track" lang="fr"' in french


def test_redis_down_renders_the_page(client, settings):
    # given the cache's Redis unreachable
    order = _order_with(1, 2)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    # then the page is rendered each time, all of it
    for _ in range(2):
        response = _page(client, order)
        assert response.status_code == 200
        assert body(response).count("pp-timeline__event") == 2


def test_a_rebuild_of_the_delivery_statistics_shows_the_predicted_range_at_once(client):
    # given a cached page of a parcel on its way, with no history to predict from yet
    shop = make_shop()
    TrackingSettings.objects.create(shop=shop)
    order = make_order(shop)
    to_ontario = {
        "tracking_company": "Canada Post",
        "destination_country_code": "CA",
        "destination_province_code": "ON",
        "destination_province": "Ontario",
    }
    make_shipment(
        order,
        items=[(make_line_item(order, "Tent"), 1)],
        shopify_created_at=timezone.now() - timedelta(hours=1),
        **to_ontario,
    )
    assert "Based on" not in _cached_page(client, order)

    # when the daily rebuild finds enough deliveries (nothing on this order moves)
    for i in range(MIN_DELIVERIES):
        shipped = timezone.now() - timedelta(days=10 + i % 5)
        make_shipment(
            make_order(shop),
            stage=Stage.DELIVERED,
            shipment_status="delivered",
            shopify_created_at=shipped,
            delivered_at=shipped + timedelta(days=3 + i % 3),
            **to_ontario,
        )
    assert delivery_stats_rebuild(shop=shop) > 0

    # then the next view shows the prediction, not the page cached before
    assert f"Based on {MIN_DELIVERIES} deliveries to Ontario by Canada Post" in body(
        _page(client, order)
    )


def _key(order: Order) -> str:
    shop = order.shop
    return order_page_key(
        shop=shop,
        order=order,
        tracking_settings=tracking_settings_for_shop(shop=shop),
        branding=storefront_branding(shop=shop),
        language="en",
        explicit_locale="",
        proxy_base="/apps/postpurchase/",
    )


def test_a_new_day_in_the_shops_timezone_is_a_new_page():
    # A predicted range never starts before today: a page rendered yesterday is not today's.
    order = _order_with(1, 1)
    Shop.objects.filter(pk=order.shop.pk).update(timezone="America/Toronto")
    order.shop.refresh_from_db()

    def key_at(moment: datetime) -> str:
        with time_machine.travel(moment, tick=False):
            return _key(order)

    # 23:50 and 00:05 UTC are the same day in Toronto; 04:55 and 05:05 UTC are not.
    assert key_at(datetime(2026, 3, 5, 23, 50, tzinfo=UTC)) == key_at(
        datetime(2026, 3, 6, 0, 5, tzinfo=UTC)
    )
    assert key_at(datetime(2026, 3, 6, 4, 55, tzinfo=UTC)) != key_at(
        datetime(2026, 3, 6, 5, 5, tzinfo=UTC)
    )
