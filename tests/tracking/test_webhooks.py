"""fulfillments/* and fulfillment_events/* through the real intake: signed POST, RQ, handler."""

import json

import pytest

from shopapp.models import OrderEvent, WebhookEvent
from tests.shopapp.webhook_support import fixture_json, make_shop, post_webhook
from tests.tracking.tracking_support import Announced, order_create
from tracking.models import Shipment, Stage, TrackingEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def triggers():
    return Announced()


@pytest.fixture(autouse=True)
def _no_refresh_enqueue(monkeypatch):
    monkeypatch.setattr("tracking.services._enqueue_refresh_on_commit", lambda shipment: None)


def _post(client, topic, payload, shop, captured):
    with captured(execute=True):
        response = post_webhook(
            client, topic, json.dumps(payload).encode(), shop_domain=shop.myshopify_domain
        )
    assert response.status_code == 200


def test_fulfillment_webhooks_reach_the_shipment_through_the_intake(
    client, rq_worker, triggers, django_capture_on_commit_callbacks
):
    # given a shop and its mirrored order (the fixtures' order id)
    shop = make_shop("alpha.myshopify.com")
    triggers.listen(shop)
    order = order_create(shop)

    # when Shopify posts fulfillments/create and then the in-transit event, signed
    _post(
        client,
        "fulfillments/create",
        fixture_json("fulfillments/create"),
        shop,
        django_capture_on_commit_callbacks,
    )
    event = fixture_json("fulfillment_events/create")
    _post(client, "fulfillment_events/create", event, shop, django_capture_on_commit_callbacks)
    rq_worker()

    # then both deliveries are processed into one shipment with its scan
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}
    shipment = Shipment.objects.get(shop=shop)
    assert (shipment.fulfillment_id, shipment.order_id) == (123456, order.pk)
    assert shipment.stage == Stage.IN_TRANSIT
    assert TrackingEvent.objects.get(shipment=shipment).shopify_id == 1234567
    kinds = set(OrderEvent.objects.filter(order=order).values_list("kind", flat=True))
    assert {"shipment.shipped", "shipment.in_transit"} <= kinds
    # the fixtures are from 2021: recorded, flagged stale, nothing triggered
    assert triggers.calls == []


def test_an_event_before_its_fulfillment_is_retried_not_lost(
    client, rq_worker, triggers, django_capture_on_commit_callbacks, monkeypatch
):
    import shopapp.webhooks.services as webhook_services

    monkeypatch.setattr(webhook_services, "RETRY_INTERVALS_S", [0, 0, 0, 0, 0])
    shop = make_shop("alpha.myshopify.com")
    order_create(shop)

    _post(
        client,
        "fulfillment_events/create",
        fixture_json("fulfillment_events/create"),
        shop,
        django_capture_on_commit_callbacks,
    )
    rq_worker()
    pending = WebhookEvent.objects.get()
    assert pending.attempts >= 1
    assert "ShipmentNotMirrored" in pending.last_error
    assert not TrackingEvent.objects.exists()
