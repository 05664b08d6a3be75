"""The store's life, seen from the app's side: every change fires the webhooks Shopify would
fire for it (topics, one X-Shopify-Event-Id per action, REST payload shapes), and the seed,
tick, clock and ``devshop_simulate`` command drive it. The tick's returns are also driven in
this process through the devshop's services, with ``random`` seeded, so that what the
simulated merchant and buyers do to returns is reproducible."""

import json
import os
import random
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
import requests

from devshop.models import DevOrder, DevReturn, DevShop
from devshop.orders import dev_order_create_fake
from devshop.returns import (
    dev_return_approve,
    dev_return_create,
    dev_return_request,
    dev_reverse_delivery_create,
    returnable_fulfillments,
)
from devshop.simulation import (
    MERCHANT_RETURNS_MAX,
    dev_fulfillment_advance,
    dev_order_fulfil,
    dev_simulate_tick,
)
from shopapp.admin_api.client import AdminApiClient
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


# -- Returns in the tick ----------------------------------------------------------------------

RETURN_REQUEST = """
mutation($input: ReturnRequestInput!) {
  returnRequest(input: $input) { return { id status } userErrors { field message code } }
}"""
RETURN_APPROVE = """
mutation($input: ReturnApproveRequestInput!) {
  returnApproveRequest(input: $input) { return { id status } userErrors { field message code } }
}"""
RETURNABLE = """
query($orderId: ID!) {
  returnableFulfillments(orderId: $orderId, first: 5) { edges { node {
    returnableFulfillmentLineItems(first: 10) { nodes { quantity fulfillmentLineItem { id } } }
  } } }
}"""


@pytest.fixture
def local_shop(db):
    """A shop of the devshop in this process, with ``random`` seeded for the test."""
    random.seed(20261123)
    return DevShop.objects.create(
        shopify_id=random.randint(10**9, 10**11),
        myshopify_domain=f"sim-{uuid.uuid4().hex[:10]}.myshopify.com",
        name="Sim",
        email="owner@sim.example",
    )


def _delivered(shop: DevShop, line_items: int = 2) -> DevOrder:
    order = dev_order_create_fake(
        shop=shop, overrides={"line_items": line_items, "financial_status": "PAID"}
    )
    (fulfillment,) = dev_order_fulfil(order=order)
    dev_fulfillment_advance(fulfillment=fulfillment, to="DELIVERED")
    return order


def _every_line(order: DevOrder) -> list[dict]:
    return [
        {"fulfillment_line_item_id": fli.shopify_id, "quantity": quantity}
        for found in returnable_fulfillments(order=order)
        for fli, quantity in found["lines"]
    ]


def _app_request(shop: DevShop) -> DevReturn:
    """What the app's returnRequest runs: every line of a delivered order, REQUESTED."""
    order = _delivered(shop)
    return dev_return_request(order=order, lines=_every_line(order))


def _steps(summaries: list[dict]) -> dict[int, list[str]]:
    """Return id → what the ticks did to it, in order."""
    steps: dict[int, list[str]] = defaultdict(list)
    for summary in summaries:
        for step, ids in summary["returns"].items():
            for return_id in ids:
                steps[return_id].append(step)
    return steps


def test_tick_leaves_the_apps_returns_to_the_merchant_and_buyers_ship_them_back(local_shop):
    # given the app's returns (returnRequest / returnCreate): one requested; one the merchant
    # approved in the app; one approved with the app's own label and tracking; one exchange
    requested = _app_request(local_shop)
    approved = dev_return_approve(ret=_app_request(local_shop))
    labelled = dev_return_approve(ret=_app_request(local_shop))
    dev_reverse_delivery_create(
        rfo=labelled.reverse_fulfillment_orders.get(),
        lines=[],
        tracking={"number": "1ZAPPLABEL0100000001", "url": ""},
    )
    exchanged = _delivered(local_shop, line_items=1)
    exchange = dev_return_create(
        order=exchanged,
        lines=_every_line(exchanged),
        exchange_lines=[
            {"variant_id": exchanged.line_items.get().variant.shopify_id, "quantity": 1}
        ],
    )
    apps = [requested, approved, labelled, exchange]

    # when the store lives for a while
    summaries = [dev_simulate_tick(shop=local_shop) for _ in range(60)]

    # then nobody but the merchant in the app decides or settles them
    for ret in apps:
        ret.refresh_from_db()
        assert ret.made_by == DevReturn.MadeBy.APP
        assert ret.closed_at is None
        assert ret.refunded_amount == 0
        assert all(line.processed_quantity == 0 for line in ret.return_line_items.all())
    assert requested.status == DevReturn.Status.REQUESTED
    assert requested.decline_reason == ""
    assert not requested.reverse_fulfillment_orders.exists()
    for ret in (approved, labelled, exchange):
        assert ret.status == DevReturn.Status.OPEN
        rfo = ret.reverse_fulfillment_orders.get()
        assert rfo.status == "OPEN"
        assert not rfo.line_items.filter(dispositions__isnull=False).exists()
    # and the buyers of the approved ones shipped them back once, with the carrier's tracking
    for ret in (approved, exchange):
        (delivery,) = ret.reverse_fulfillment_orders.get().reverse_deliveries.all()
        assert delivery.tracking_number
        assert delivery.tracking_number in delivery.tracking_url
    (delivery,) = labelled.reverse_fulfillment_orders.get().reverse_deliveries.all()
    assert delivery.tracking_number == "1ZAPPLABEL0100000001"
    steps = _steps(summaries)
    assert steps[approved.shopify_id] == ["shipped_back"]
    assert steps[exchange.shopify_id] == ["shipped_back"]
    assert requested.shopify_id not in steps
    assert labelled.shopify_id not in steps


def test_tick_makes_merchant_returns_and_takes_them_to_a_refund(local_shop):
    # given delivered orders without returns
    for _ in range(8):
        _delivered(local_shop)

    # when the store lives for a while
    summaries = [dev_simulate_tick(shop=local_shop) for _ in range(300)]

    # then the merchant made a few returns of its own in Shopify's admin, never more than the cap
    made = DevReturn.objects.filter(shop=local_shop, made_by=DevReturn.MadeBy.MERCHANT)
    assert made.count() == MERCHANT_RETURNS_MAX
    assert DevReturn.objects.filter(shop=local_shop).count() == MERCHANT_RETURNS_MAX
    steps = _steps(summaries)
    for ret in made:
        # each on a delivered order that had no return, made OPEN (returnCreate: approved)
        assert ret.request_approved_at is not None
        assert ret.order.fulfillments.filter(shipment_status="delivered").exists()
        assert DevReturn.objects.filter(order=ret.order).count() == 1
        # and taken step by step in order: shipped back, received, processed
        full = ["merchant_created", "shipped_back", "disposed", "processed"]
        assert steps[ret.shopify_id] == full[: len(steps[ret.shopify_id])]
    closed = [ret for ret in made if ret.status == DevReturn.Status.CLOSED]
    assert closed, "some merchant return went all the way"
    for ret in closed:
        assert steps[ret.shopify_id] == full
        assert ret.refunded_amount > 0
        rfo = ret.reverse_fulfillment_orders.get()
        assert rfo.status == "CLOSED"
        (delivery,) = rfo.reverse_deliveries.all()
        assert delivery.tracking_number in delivery.tracking_url
        for line in ret.return_line_items.all():
            assert line.processed_quantity == line.quantity
            dispositions = line.reverse_fulfillment_order_line_items.get().dispositions.all()
            assert {d.type for d in dispositions} == {"RESTOCKED"}
            assert sum(d.quantity for d in dispositions) == line.quantity


def test_app_requested_return_over_the_admin_api_waits_for_the_merchant(store, capture, settings):
    # given the app requested a return through the Admin API and approved another
    quiet(store)
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = store.admin_url_template
    shop, token = new_shop(store, "simret")
    api = AdminApiClient(shop, token)
    order_ids = []
    for _ in range(2):
        order_id = _one_order(store, capture, shop, financial_status="PAID")
        (fulfillment,) = store.client.order_fulfil(shop, order_id)
        store.client.fulfillment_advance(shop, fulfillment["id"], "DELIVERED")
        order_ids.append(order_id)
    returns = []
    for order_id in order_ids:
        gid = f"gid://shopify/Order/{order_id}"
        edges = api.execute(RETURNABLE, {"orderId": gid})["returnableFulfillments"]["edges"]
        lines = [
            {"fulfillmentLineItemId": n["fulfillmentLineItem"]["id"], "quantity": n["quantity"]}
            for edge in edges
            for n in edge["node"]["returnableFulfillmentLineItems"]["nodes"]
        ]
        made = api.execute(RETURN_REQUEST, {"input": {"orderId": gid, "returnLineItems": lines}})
        returns.append(made["returnRequest"]["return"]["id"])
    approved = api.execute(RETURN_APPROVE, {"input": {"id": returns[1]}})
    assert approved["returnApproveRequest"]["userErrors"] == []

    # when the store lives for a while (in the store's own process, not seeded: a simulated
    # merchant acting on half the returns per tick would decide the requested one with a
    # chance of 1 - 2**-40)
    for _ in range(40):
        store.client.simulate_tick(shop)

    # then the requested one is still waiting and the approved one is not settled
    statuses = [store.client.order_state(shop, i)["returns"] for i in order_ids]
    assert [[r["status"] for r in found] for found in statuses] == [["REQUESTED"], ["OPEN"]]
