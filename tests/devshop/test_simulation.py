"""The store's life, seen from the app's side: every change fires the webhooks Shopify would
fire for it (topics, one X-Shopify-Event-Id per action, REST payload shapes), and the seed,
tick, clock and ``devshop_simulate`` command drive it."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
import requests

from tests.conftest import REPO
from tests.devshop.capture_server import CaptureServer
from tests.devshop.simulation_support import capture_store, fixture_keys, hooks, new_shop, quiet


@pytest.fixture(scope="module")
def capture():
    server = CaptureServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(capture, tmp_path_factory):
    server = capture_store(tmp_path_factory.mktemp("devshop-sim"), capture)
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
def shop(store, capture):
    quiet(store)
    domain, _ = new_shop(store, "sim")
    return domain


def _one_order(store, capture, shop: str, **overrides) -> int:
    (order_id,) = store.client.orders_create(shop, count=1, **overrides)
    hooks(store, capture, shop)
    return order_id


def test_new_paid_order_fires_create_and_paid_as_one_event(store, capture, shop):
    # when a paid order is placed
    (order_id,) = store.client.orders_create(shop, count=1, financial_status="PAID")

    # then orders/create and orders/paid arrive, sharing one event id, with the full Order
    sent = hooks(store, capture, shop)
    assert [h.topic for h in sent] == ["orders/create", "orders/paid"]
    assert sent[0].event_id == sent[1].event_id
    order = sent[0].payload
    assert fixture_keys("orders__create") <= set(order)
    assert order["id"] == order_id
    assert order["admin_graphql_api_id"].endswith(f"/{order_id}")
    assert order["financial_status"] == "paid"
    assert order["fulfillment_status"] is None
    assert all(isinstance(item["id"], int) for item in order["line_items"])
    assert order["line_items"][0]["admin_graphql_api_id"].endswith(
        str(order["line_items"][0]["id"])
    )


def test_authorized_order_fires_only_create(store, capture, shop):
    store.client.orders_create(shop, count=1, financial_status="AUTHORIZED")

    assert [h.topic for h in hooks(store, capture, shop)] == ["orders/create"]


def test_order_update_fires_orders_updated_with_a_later_updated_at(store, capture, shop):
    order_id = _one_order(store, capture, shop)
    before = store.client.order_state(shop, order_id)["updated_at"]

    store.client.order_update(shop, order_id, note="Leave at the back door")

    (sent,) = hooks(store, capture, shop)
    assert sent.topic == "orders/updated"
    assert sent.payload["note"] == "Leave at the back door"
    assert datetime.fromisoformat(sent.payload["updated_at"]) > datetime.fromisoformat(before)


def test_fulfilling_everything_fires_create_fulfilled_updated(store, capture, shop):
    order_id = _one_order(store, capture, shop, line_items=2)

    (fulfillment,) = store.client.order_fulfil(shop, order_id, carrier="UPS")

    sent = hooks(store, capture, shop)
    assert [h.topic for h in sent] == ["fulfillments/create", "orders/fulfilled", "orders/updated"]
    assert len({h.event_id for h in sent}) == 1
    payload = sent[0].payload
    assert fixture_keys("fulfillments__create") <= set(payload)
    assert payload["id"] == fulfillment["id"]
    assert payload["order_id"] == order_id
    assert payload["tracking_company"] == "UPS"
    assert payload["tracking_number"].startswith("1Z")
    assert len(payload["tracking_number"]) == 18
    assert (
        payload["tracking_url"]
        == f"https://www.ups.com/track?tracknum={payload['tracking_number']}"
    )
    assert payload["status"] == "success"
    assert payload["shipment_status"] is None
    assert sent[1].payload["fulfillment_status"] == "fulfilled"
    assert [f["id"] for f in sent[1].payload["fulfillments"]] == [fulfillment["id"]]


def test_split_shipment_is_partially_fulfilled_then_fulfilled(store, capture, shop):
    order_id = _one_order(store, capture, shop, line_items=2)

    parcels = store.client.order_fulfil(shop, order_id, split=True)

    sent = hooks(store, capture, shop)
    assert len(parcels) == 2
    assert [h.topic for h in sent] == [
        "fulfillments/create",
        "orders/partially_fulfilled",
        "orders/updated",
        "fulfillments/create",
        "orders/fulfilled",
        "orders/updated",
    ]
    # two merchant actions, two event ids
    assert len({h.event_id for h in sent[:3]}) == 1
    assert sent[0].event_id != sent[3].event_id
    assert sent[1].payload["fulfillment_status"] == "partial"
    assert [p["name"] for p in parcels] == [
        f"{sent[1].payload['name']}.1",
        f"{sent[1].payload['name']}.2",
    ]


def test_advance_to_delivered_scans_every_step_and_updates_on_each_status(store, capture, shop):
    order_id = _one_order(store, capture, shop)
    (fulfillment,) = store.client.order_fulfil(shop, order_id)
    hooks(store, capture, shop)

    result = store.client.fulfillment_advance(shop, fulfillment["id"], "DELIVERED")

    statuses = [e["status"] for e in result["events"]]
    assert statuses == [
        "LABEL_PURCHASED",
        "LABEL_PRINTED",
        "CONFIRMED",
        "CARRIER_PICKED_UP",
        "IN_TRANSIT",
        "OUT_FOR_DELIVERY",
        "DELIVERED",
    ]
    sent = hooks(store, capture, shop)
    events = [h for h in sent if h.topic == "fulfillment_events/create"]
    updates = [h for h in sent if h.topic == "fulfillments/update"]
    assert [e.payload["status"] for e in events] == [s.lower() for s in statuses]
    assert [u.payload["shipment_status"] for u in updates] == [s.lower() for s in statuses]
    # each scan is one action: its event and its fulfillment update share the event id
    assert [e.event_id for e in events] == [u.event_id for u in updates]
    last = events[-1].payload
    assert fixture_keys("fulfillment_events__create") <= set(last)
    assert last["fulfillment_id"] == fulfillment["id"]
    assert last["order_id"] == order_id
    assert last["admin_graphql_api_id"] == f"gid://shopify/FulfillmentEvent/{last['id']}"
    assert last["city"]
    assert last["country"]
    assert (
        store.client.order_state(shop, order_id)["fulfillments"][0]["shipment_status"]
        == "delivered"
    )


def test_branches_attempted_then_delivered_and_a_repeated_scan(store, capture, shop):
    order_id = _one_order(store, capture, shop)
    (fulfillment,) = store.client.order_fulfil(shop, order_id, carrier="USPS")
    store.client.fulfillment_advance(shop, fulfillment["id"], "IN_TRANSIT")
    hooks(store, capture, shop)

    # a second in-transit scan changes no status: only fulfillment_events/create
    store.client.fulfillment_event(shop, fulfillment["id"], "IN_TRANSIT", city="Memphis")
    assert [h.topic for h in hooks(store, capture, shop)] == ["fulfillment_events/create"]

    # attempted, then delivered on the next try
    attempted = store.client.fulfillment_advance(shop, fulfillment["id"], "ATTEMPTED_DELIVERY")
    assert [e["status"] for e in attempted["events"]] == ["OUT_FOR_DELIVERY", "ATTEMPTED_DELIVERY"]
    delivered = store.client.fulfillment_advance(shop, fulfillment["id"], "DELIVERED")
    assert [e["status"] for e in delivered["events"]] == ["OUT_FOR_DELIVERY", "DELIVERED"]

    # and nothing moves a delivered parcel
    with pytest.raises(requests.HTTPError):
        store.client.fulfillment_advance(shop, fulfillment["id"], "IN_TRANSIT")


@pytest.mark.parametrize("branch", ["DELAYED", "FAILURE"])
def test_delay_and_failure_branches(store, capture, shop, branch):
    order_id = _one_order(store, capture, shop)
    (fulfillment,) = store.client.order_fulfil(shop, order_id)

    result = store.client.fulfillment_advance(shop, fulfillment["id"], branch)

    assert [e["status"] for e in result["events"]][-2:] == ["IN_TRANSIT", branch]
    updates = [h for h in hooks(store, capture, shop) if h.topic == "fulfillments/update"]
    assert updates[-1].payload["shipment_status"] == branch.lower()


def test_usps_estimates_delivery_and_a_delay_pushes_it_back(store, capture, shop):
    order_id = _one_order(store, capture, shop)
    (fulfillment,) = store.client.order_fulfil(shop, order_id, carrier="USPS")
    store.client.fulfillment_advance(shop, fulfillment["id"], "IN_TRANSIT")
    estimate = store.client.order_state(shop, order_id)["fulfillments"][0]["estimated_delivery_at"]

    store.client.fulfillment_event(shop, fulfillment["id"], "DELAYED")

    later = store.client.order_state(shop, order_id)["fulfillments"][0]["estimated_delivery_at"]
    assert estimate is not None
    assert datetime.fromisoformat(later) - datetime.fromisoformat(estimate) == timedelta(days=2)


def test_cancel_fires_cancelled_and_updated_and_refuses_fulfilled_orders(store, capture, shop):
    order_id = _one_order(store, capture, shop, financial_status="PAID")

    state = store.client.order_cancel(shop, order_id, reason="INVENTORY")

    sent = hooks(store, capture, shop)
    assert [h.topic for h in sent] == ["orders/cancelled", "orders/updated"]
    assert sent[0].event_id == sent[1].event_id
    assert sent[0].payload["cancel_reason"] == "inventory"
    assert sent[0].payload["cancelled_at"] is not None
    assert sent[0].payload["financial_status"] == "refunded"
    assert state["cancelled_at"] is not None

    shipped = _one_order(store, capture, shop)
    store.client.order_fulfil(shop, shipped)
    hooks(store, capture, shop)
    with pytest.raises(requests.HTTPError) as refused:
        store.client.order_cancel(shop, shipped)
    assert refused.value.response.status_code == 400
    assert hooks(store, capture, shop) == []


def test_uninstall_fires_app_uninstalled_with_the_shop(store, capture, shop):
    store.client.app_uninstall(shop)

    (sent,) = hooks(store, capture, shop)
    assert sent.topic == "app/uninstalled"
    assert fixture_keys("app__uninstalled") <= set(sent.payload)
    assert sent.payload["myshopify_domain"] == shop
    assert isinstance(sent.payload["id"], int)


def test_seed_produces_every_state(store, capture, shop):
    by_state = store.client.simulate_seed(shop, orders=24)

    assert set(by_state) == {
        "unfulfilled",
        "partially_fulfilled",
        "label_purchased",
        "in_transit",
        "out_for_delivery",
        "attempted_delivery",
        "ready_for_pickup",
        "delayed",
        "failure",
        "delivered",
        "cancelled",
        "split_mixed",
    }
    assert sum(len(ids) for ids in by_state.values()) == 24
    for state in ("in_transit", "delivered", "delayed", "failure", "attempted_delivery"):
        detail = store.client.order_state(shop, by_state[state][0])
        assert detail["fulfillments"][0]["shipment_status"] == state
        happened = [e["happened_at"] for e in detail["fulfillments"][0]["events"]]
        assert happened == sorted(happened)
    partial = store.client.order_state(shop, by_state["partially_fulfilled"][0])
    assert partial["fulfillment_status"] == "PARTIALLY_FULFILLED"
    split = store.client.order_state(shop, by_state["split_mixed"][0])
    assert len(split["fulfillments"]) >= 2
    assert {f["shipment_status"] for f in split["fulfillments"]} >= {"delivered", "in_transit"}
    assert store.client.order_state(shop, by_state["cancelled"][0])["cancelled_at"]
    topics = {h.topic for h in hooks(store, capture, shop)}
    assert {"orders/create", "fulfillments/create", "fulfillment_events/create"} <= topics


def test_ticks_move_the_store_forward(store, capture, shop):
    order_ids = store.client.orders_create(shop, count=3)

    for _ in range(25):
        store.client.simulate_tick(shop)

    states = [store.client.order_state(shop, i) for i in order_ids]
    assert any(s["fulfillments"] or s["cancelled_at"] for s in states)
    scanned = [f for s in states for f in s["fulfillments"] if f["events"]]
    assert scanned, "some shipment got at least one scan"


def test_clock_speed_runs_the_simulated_clock_faster(store, shop):
    store.client.clock_set(offset_seconds=86400)
    ahead = datetime.fromisoformat(store.client.clock()["now"])
    assert ahead - datetime.now(ahead.tzinfo) > timedelta(hours=23)

    store.client.clock_set(speed=3600)
    start = datetime.fromisoformat(store.client.clock()["now"])
    import time

    time.sleep(1.1)
    moved = datetime.fromisoformat(store.client.clock()["now"]) - start
    assert moved >= timedelta(minutes=30)

    # order timestamps follow the simulated clock
    (order_id,) = store.client.orders_create(shop, count=1)
    updated = datetime.fromisoformat(store.client.order_state(shop, order_id)["updated_at"])
    assert updated - datetime.now(updated.tzinfo) > timedelta(hours=23)
    store.client.clock_set(speed=1, offset_seconds=0)


def test_devshop_simulate_command_against_a_running_store(store, capture, shop):
    env = {**os.environ, "LOCAL_DEV": "1"}

    def run(*args: str) -> object:
        done = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "devshop_simulate",
                "--devshop-url",
                store.base_url,
                *args,
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(done.stdout)

    (order_id,) = run("orders", "--shop", shop, "--count", "1")["ids"]
    (fulfillment,) = run("fulfil", "--shop", shop, "--order", str(order_id), "--carrier", "FedEx")
    advanced = run(
        "advance", "--shop", shop, "--fulfillment", str(fulfillment["id"]), "--to", "delivered"
    )
    assert advanced["shipment_status"] == "delivered"
    assert fulfillment["tracking_company"] == "FedEx"
    ticks = run("tick", "--shop", shop, "--repeat", "2")
    assert len(ticks) == 2
    (other,) = run("orders", "--shop", shop, "--count", "1")["ids"]
    assert run("cancel", "--shop", shop, "--order", str(other))["cancelled_at"]
    failed = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "devshop_simulate",
            "--devshop-url",
            store.base_url,
            "cancel",
            "--shop",
            shop,
            "--order",
            str(order_id),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode != 0
    assert "fulfillments" in failed.stderr
