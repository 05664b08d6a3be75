"""Shipments from fulfillments and their events: stages, timeline, triggers, staleness."""

from datetime import timedelta

import pytest
from django.utils import timezone

from shopapp.models import OrderEvent
from tests.shopapp.webhook_support import make_shop
from tests.tracking.tracking_support import (
    LINE_ITEM_IDS,
    SOURCE,
    announced_for,
    event_payload,
    fulfil,
    fulfillment_payload,
    order_create,
    parcel_facts,
    scan,
)
from tracking.models import Delay, Shipment, ShipmentLineItem, Stage, TrackingEvent
from tracking.services import (
    OrderNotMirrored,
    ShipmentNotMirrored,
    shipment_sync_from_fulfillment,
    tracking_event_delete,
    tracking_event_record,
    tracking_settings_get,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_refresh_enqueue(monkeypatch):
    # These tests are about the services; the refresh job has its own tests.
    monkeypatch.setattr("tracking.services._enqueue_refresh_on_commit", lambda shipment: None)


@pytest.fixture
def triggers(shop):
    return announced_for(shop)


@pytest.fixture
def shop():
    return make_shop("alpha.myshopify.com")


def _kinds(order) -> list[str]:
    return list(order.events.order_by("id").values_list("kind", flat=True))


def _tracking_kinds(order) -> list[str]:
    return [k for k in _kinds(order) if k.startswith(("shipment.", "order.all"))]


def test_fulfillment_creates_a_shipment_with_tracking_and_line_items(shop, triggers):
    # given a mirrored order
    order = order_create(shop)

    # when Shopify sends fulfillments/create
    shipment = fulfil(shop, order, fulfillment_id=123456)

    # then the shipment carries Shopify's strings, tracking and quantities, and is shipped
    shipment.refresh_from_db()
    assert shipment.order_id == order.pk
    assert shipment.status == "success"
    assert shipment.tracking_company == "UPS"
    assert shipment.tracking_numbers == ["1z827wk74630"]
    assert shipment.tracking_urls[0].startswith("https://www.ups.com/")
    assert shipment.destination_country_code == "US"
    assert shipment.stage == Stage.SHIPPED
    assert sorted(shipment.line_items.values_list("line_item_shopify_id", "quantity")) == sorted(
        (i, 1) for i in LINE_ITEM_IDS
    )
    assert _tracking_kinds(order) == ["shipment.shipped"]
    # and notifications heard of it with Shopify's fulfillment id, the carrier and the items
    assert triggers.triggers == ["shipped"]
    news = triggers.calls[0]["news"]
    assert news["type"] == "shipment"
    assert news["fulfillment_id"] == 123456
    assert news["is_stale"] is False
    assert news["carrier"] == "UPS"
    assert news["tracking_numbers"] == ["1z827wk74630"]
    assert sorted(item["quantity"] for item in news["items"]) == [1] * len(LINE_ITEM_IDS)
    assert news["is_whole_order"] is True


def test_fulfillment_before_its_order_raises_a_retryable_error_and_stores_nothing(shop, triggers):
    order = order_create(shop)
    payload = fulfillment_payload(order, fulfillment_id=1)
    payload["order_id"] = 555

    with pytest.raises(OrderNotMirrored):
        shipment_sync_from_fulfillment(shop=shop, payload=payload, source=SOURCE)

    assert not Shipment.objects.exists()
    assert triggers.calls == []


def test_stale_fulfillment_update_changes_nothing(shop, triggers):
    order = order_create(shop)
    now = timezone.now()
    fulfil(shop, order, fulfillment_id=7, updated_at=now, shipment_status="in_transit")

    # when an older update arrives late
    fulfil(
        shop,
        order,
        fulfillment_id=7,
        updated_at=now - timedelta(minutes=5),
        shipment_status="label_printed",
        tracking_company="FedEx",
    )

    shipment = Shipment.objects.get(fulfillment_id=7)
    assert shipment.shipment_status == "in_transit"
    assert shipment.tracking_company == "UPS"
    assert shipment.stage == Stage.IN_TRANSIT


def test_events_move_the_stage_and_each_stage_is_on_the_timeline_once(shop, triggers):
    order = order_create(shop)
    shipment = fulfil(shop, order, fulfillment_id=11)
    t = timezone.now() - timedelta(hours=3)

    scan(shop, shipment, "in_transit", t)
    scan(shop, shipment, "out_for_delivery", t + timedelta(hours=1))
    scan(shop, shipment, "delivered", t + timedelta(hours=2))

    shipment.refresh_from_db()
    assert shipment.stage == Stage.DELIVERED
    assert shipment.delivered_at == t + timedelta(hours=2)
    assert shipment.in_transit_at == t
    assert shipment.last_event_at == t + timedelta(hours=2)
    assert _tracking_kinds(order) == [
        "shipment.shipped",
        "shipment.in_transit",
        "shipment.out_for_delivery",
        "shipment.delivered",
        "order.all_delivered",
    ]
    assert triggers.triggers == [
        "shipped",
        "in_transit",
        "out_for_delivery",
        "delivered",
        "all_delivered",
    ]


def test_out_of_order_in_transit_after_delivered_does_not_move_back(shop, triggers):
    order = order_create(shop)
    shipment = fulfil(shop, order, fulfillment_id=12)
    t = timezone.now() - timedelta(hours=3)

    # given delivered arrives first
    scan(shop, shipment, "delivered", t + timedelta(hours=2))
    # when the older in-transit scan arrives late
    scan(shop, shipment, "in_transit", t)

    shipment.refresh_from_db()
    assert shipment.stage == Stage.DELIVERED
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 2
    assert _tracking_kinds(order) == [
        "shipment.shipped",
        "shipment.delivered",
        "order.all_delivered",
    ]
    assert triggers.triggers == ["shipped", "delivered", "all_delivered"]


def test_a_parcel_first_heard_of_in_transit_is_still_announced_as_shipped(shop, triggers):
    # given the fulfillment's first webhook to arrive is an update already in transit (its
    # fulfillments/create is late: Shopify promises no order)
    order = order_create(shop)
    fulfil(shop, order, fulfillment_id=13, shipment_status="in_transit")

    # then the shopper is still owed "shipped" (carrier, tracking link), announced once,
    # before the stage it is at
    assert _tracking_kinds(order) == ["shipment.shipped", "shipment.in_transit"]
    assert triggers.triggers == ["shipped", "in_transit"]

    # and the late create adds nothing
    fulfil(shop, order, fulfillment_id=13, shipment_status="in_transit")
    assert triggers.triggers == ["shipped", "in_transit"]


def test_duplicate_delivered_events_write_one_order_event_and_one_trigger(shop, triggers):
    order = order_create(shop)
    shipment = fulfil(shop, order, fulfillment_id=13)
    payload = event_payload(
        fulfillment_id=13, order_id=order.shopify_id, status="delivered", happened_at=timezone.now()
    )

    # when Shopify delivers the same event twice (and a second event id says delivered again)
    tracking_event_record(shop=shop, payload=payload, source=SOURCE)
    tracking_event_record(shop=shop, payload=dict(payload), source=SOURCE)
    scan(shop, shipment, "delivered")

    assert OrderEvent.objects.filter(order=order, kind="shipment.delivered").count() == 1
    assert triggers.triggers.count("delivered") == 1
    assert triggers.triggers.count("all_delivered") == 1


def test_split_shipments_are_all_delivered_only_after_both(shop, triggers):
    order = order_create(shop)
    first = fulfil(shop, order, fulfillment_id=21, line_item_ids=LINE_ITEM_IDS[:2])
    second = fulfil(shop, order, fulfillment_id=22, line_item_ids=LINE_ITEM_IDS[2:])

    scan(shop, first, "delivered")
    assert "all_delivered" not in triggers.triggers
    assert not OrderEvent.objects.filter(order=order, kind="order.all_delivered").exists()

    scan(shop, second, "delivered")
    assert triggers.triggers.count("all_delivered") == 1
    news = [c for c in triggers.calls if c["trigger"] == "all_delivered"][0]["news"]
    assert sorted(news["fulfillment_ids"]) == [21, 22]


def test_a_delivered_part_of_a_partially_fulfilled_order_is_not_all_delivered(shop, triggers):
    order = order_create(shop)
    only = fulfil(shop, order, fulfillment_id=23, line_item_ids=LINE_ITEM_IDS[:1])

    scan(shop, only, "delivered")

    assert "delivered" in triggers.triggers
    assert "all_delivered" not in triggers.triggers


def test_a_stale_event_is_recorded_flagged_and_triggers_nothing(shop, triggers):
    order = order_create(shop)
    shipment = fulfil(shop, order, fulfillment_id=31)
    triggers.clear()

    # when an out-for-delivery scan from three days ago arrives now
    event = scan(shop, shipment, "out_for_delivery", timezone.now() - timedelta(days=3))

    assert event.is_stale is True
    shipment.refresh_from_db()
    assert shipment.stage == Stage.OUT_FOR_DELIVERY
    line = OrderEvent.objects.get(order=order, kind="shipment.out_for_delivery")
    assert line.detail["stale"] is True
    assert "no message sent" in line.summary
    assert triggers.calls == []


def test_the_stale_age_is_per_shop(shop, triggers):
    settings = tracking_settings_get(shop=shop)
    settings.stale_event_hours = 100
    settings.save()
    order = order_create(shop)
    shipment = fulfil(shop, order, fulfillment_id=32)

    event = scan(shop, shipment, "in_transit", timezone.now() - timedelta(days=3))

    assert event.is_stale is False
    assert triggers.triggers[-1] == "in_transit"


def test_a_new_estimate_is_recorded_once_per_change(shop, triggers):
    order = order_create(shop)
    shipment = fulfil(shop, order, fulfillment_id=41)
    t = timezone.now() - timedelta(hours=2)
    first = (timezone.now() + timedelta(days=3)).isoformat()
    later = (timezone.now() + timedelta(days=5)).isoformat()

    scan(shop, shipment, "in_transit", t, estimated_delivery_at=first)
    scan(shop, shipment, "in_transit", t + timedelta(minutes=5), estimated_delivery_at=first)
    scan(shop, shipment, "in_transit", t + timedelta(minutes=10), estimated_delivery_at=later)

    lines = OrderEvent.objects.filter(order=order, kind="shipment.estimate_changed")
    assert lines.count() == 2
    assert lines.order_by("id").last().detail["previous_estimated_delivery_at"] is not None
    # no sequence starts on a new estimate, but notifications knows the newest one
    assert "estimate_changed" not in triggers.triggers
    assert parcel_facts(shop, 41).snapshot["estimated_delivery_at"].startswith(later[:10])


def test_a_carrier_delay_opens_one_delay_and_one_delayed_trigger(shop, triggers):
    order = order_create(shop)
    shipment = fulfil(shop, order, fulfillment_id=51)
    t = timezone.now() - timedelta(hours=2)
    scan(shop, shipment, "in_transit", t)

    scan(shop, shipment, "DELAYED", t + timedelta(hours=1))

    delay = Delay.objects.get(shipment=shipment)
    assert delay.kind == Delay.Kind.CARRIER_DELAYED
    assert delay.resolved_at is None
    assert triggers.triggers.count("delayed") == 1
    assert [c for c in triggers.calls if c["trigger"] == "delayed"][0]["news"]["kind"] == (
        "carrier_delayed"
    )

    # when the parcel moves again, the delay is resolved
    scan(shop, shipment, "in_transit", t + timedelta(hours=2))
    delay.refresh_from_db()
    assert delay.resolved_at is not None


def test_event_before_its_fulfillment_raises_a_retryable_error(shop, triggers):
    order = order_create(shop)
    payload = event_payload(
        fulfillment_id=999,
        order_id=order.shopify_id,
        status="in_transit",
        happened_at=timezone.now(),
    )

    with pytest.raises(ShipmentNotMirrored):
        tracking_event_record(shop=shop, payload=payload, source=SOURCE)
    assert not TrackingEvent.objects.exists()


def test_deleting_an_event_hides_it_and_recomputes_without_triggering(shop, triggers):
    order = order_create(shop)
    shipment = fulfil(shop, order, fulfillment_id=61)
    t = timezone.now() - timedelta(hours=2)
    scan(shop, shipment, "in_transit", t)
    wrong = scan(shop, shipment, "out_for_delivery", t + timedelta(hours=1))
    calls_before = list(triggers.triggers)

    tracking_event_delete(
        shop=shop,
        payload=event_payload(
            fulfillment_id=61,
            order_id=order.shopify_id,
            status="out_for_delivery",
            happened_at=wrong.happened_at,
            id=wrong.shopify_id,
        ),
        source=SOURCE,
    )

    wrong.refresh_from_db()
    shipment.refresh_from_db()
    assert wrong.deleted_at is not None
    assert shipment.stage == Stage.IN_TRANSIT
    assert triggers.triggers == calls_before
    assert OrderEvent.objects.filter(order=order, kind="shipment.event_deleted").count() == 1


def test_a_delete_before_its_create_keeps_the_event_hidden(shop, triggers):
    order = order_create(shop)
    fulfil(shop, order, fulfillment_id=62)
    payload = event_payload(
        fulfillment_id=62, order_id=order.shopify_id, status="delivered", happened_at=timezone.now()
    )

    tracking_event_delete(shop=shop, payload=payload, source=SOURCE)
    tracking_event_record(shop=shop, payload=payload, source=SOURCE)

    assert TrackingEvent.objects.get(shopify_id=payload["id"]).deleted_at is not None
    assert Shipment.objects.get(fulfillment_id=62).stage == Stage.SHIPPED
    assert "delivered" not in triggers.triggers


def test_a_cancelled_fulfillment_is_a_problem(shop, triggers):
    order = order_create(shop)
    now = timezone.now()
    fulfil(shop, order, fulfillment_id=71, updated_at=now - timedelta(minutes=1))

    fulfil(shop, order, fulfillment_id=71, updated_at=now, status="cancelled")

    assert Shipment.objects.get(fulfillment_id=71).stage == Stage.PROBLEM
    assert triggers.triggers[-1] == "problem"


def test_shops_are_isolated(shop, triggers):
    # given the same Shopify ids in two shops
    other = make_shop("beta.myshopify.com")
    triggers.listen(other)
    order_a = order_create(shop)
    order_b = order_create(other)
    shipment_a = fulfil(shop, order_a, fulfillment_id=81)
    shipment_b = fulfil(other, order_b, fulfillment_id=81)

    # when shop A's carrier delivers
    scan(shop, shipment_a, "delivered")

    # then shop B's shipment and timeline did not move
    shipment_b.refresh_from_db()
    assert shipment_b.stage == Stage.SHIPPED
    assert _tracking_kinds(order_b) == ["shipment.shipped"]
    assert [c["shop"] for c in triggers.calls if c["trigger"] == "delivered"] == [shop]
    assert ShipmentLineItem.objects.filter(shop=other).count() == len(LINE_ITEM_IDS)


def test_customer_redact_blanks_scan_places(shop, triggers):
    from shopapp.privacy.scrub import Needles
    from shopapp.subscribers import CustomerRedacted
    from tracking.privacy import customer_redact

    order = order_create(shop)
    shipment = fulfil(shop, order, fulfillment_id=91)
    scan(shop, shipment, "delivered", city="Shippington", zip="40003", message="Left at door")

    customer_redact(
        CustomerRedacted(
            shop=shop,
            customer_id=None,
            emails=(),
            phones=(),
            names=(),
            needles=Needles(),
            order_ids=(order.pk,),
            order_shopify_ids=(order.shopify_id,),
        )
    )

    event = TrackingEvent.objects.get(shipment=shipment)
    assert (event.city, event.zip, event.message) == ("", "", "")
