"""The demo's pace: parcels move at a speed a person can follow, and a delay stays on screen.

The store's tick with ``DEMO_PACE`` (what ``manage.py demo`` asks for) against the default
pace tests and scripts use, in this process, and through the control endpoint."""

import random
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from devshop.models import DevShop
from devshop.models.orders import DevFulfillment, DevFulfillmentEvent
from devshop.orders import dev_order_create_fake
from devshop.simulation import (
    DEMO_PACE,
    Pace,
    dev_fulfillment_advance,
    dev_order_fulfil,
    dev_simulate_tick,
)

pytestmark = pytest.mark.django_db
# Every parcel that may move, moves: what is left standing was held by the pace.
SURE = {"scan_chance": 1.0}


@pytest.fixture
def local_shop():
    random.seed(20261205)
    return DevShop.objects.create(
        shopify_id=random.randint(10**9, 10**11),
        myshopify_domain=f"pace-{uuid.uuid4().hex[:10]}.myshopify.com",
        name="Pace",
        email="owner@pace.example",
    )


def _parcel(shop: DevShop, to: str) -> DevFulfillment:
    order = dev_order_create_fake(shop=shop, overrides={"financial_status": "PAID"})
    (fulfillment,) = dev_order_fulfil(order=order)
    dev_fulfillment_advance(fulfillment=fulfillment, to=to)
    fulfillment.refresh_from_db()
    return fulfillment


def _age(fulfillment: DevFulfillment, seconds: float) -> None:
    """The parcel's scans happened ``seconds`` ago on the wall clock."""
    DevFulfillmentEvent.objects.filter(fulfillment=fulfillment).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def _scanned(summary: dict, fulfillment: DevFulfillment) -> bool:
    return any(s["fulfillment_id"] == fulfillment.shopify_id for s in summary["scans"])


def test_a_delayed_parcel_stays_delayed_for_the_hold_then_moves_on(local_shop):
    pace = Pace(**SURE, hold_seconds=DEMO_PACE.hold_seconds)
    delayed = _parcel(local_shop, "DELAYED")
    assert delayed.shipment_status == "delayed"

    # while the hold lasts, the tick leaves it where it is
    for _ in range(5):
        assert not _scanned(dev_simulate_tick(shop=local_shop, pace=pace), delayed)
    _age(delayed, DEMO_PACE.hold_seconds - 30)
    assert not _scanned(dev_simulate_tick(shop=local_shop, pace=pace), delayed)
    delayed.refresh_from_db()
    assert delayed.shipment_status == "delayed"

    # once it is over, the next tick moves it
    _age(delayed, DEMO_PACE.hold_seconds + 1)
    assert _scanned(dev_simulate_tick(shop=local_shop, pace=pace), delayed)
    delayed.refresh_from_db()
    assert delayed.shipment_status == "in_transit"


def test_the_default_pace_moves_a_delayed_parcel_at_once(local_shop):
    delayed = _parcel(local_shop, "DELAYED")
    assert _scanned(dev_simulate_tick(shop=local_shop, pace=Pace(**SURE)), delayed)


def test_a_parcel_scanned_lately_waits_for_the_gap(local_shop):
    pace = Pace(**SURE, min_scan_gap_seconds=DEMO_PACE.min_scan_gap_seconds)
    moving = _parcel(local_shop, "IN_TRANSIT")
    assert not _scanned(dev_simulate_tick(shop=local_shop, pace=pace), moving)
    _age(moving, DEMO_PACE.min_scan_gap_seconds + 1)
    assert _scanned(dev_simulate_tick(shop=local_shop, pace=pace), moving)
    # and the scan it just had starts the gap again
    assert not _scanned(dev_simulate_tick(shop=local_shop, pace=pace), moving)


def test_a_pace_out_of_range_is_refused():
    with pytest.raises(ValueError, match="probability"):
        Pace(scan_chance=1.5)
    with pytest.raises(ValueError, match="negative"):
        Pace(hold_seconds=-1)


@pytest.mark.urls("devshop.urls")
def test_the_tick_endpoint_takes_the_demo_pace_and_refuses_a_bad_one(client, local_shop):
    url = f"/_devshop/shops/{local_shop.myshopify_domain}/simulate/tick"
    delayed = _parcel(local_shop, "DELAYED")
    ok = client.post(url, {"pace": "demo"}, content_type="application/json")
    assert ok.status_code == 200
    assert not _scanned(ok.json(), delayed)
    for bad in ({"pace": "slow"}, {"pace": {"hold_seconds": -5}}, {"pace": {"speed": 2}}):
        response = client.post(url, bad, content_type="application/json")
        assert response.status_code == 400, bad
    delayed.refresh_from_db()
    assert delayed.shipment_status == "delayed"
