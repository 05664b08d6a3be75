"""The devshop's non-return mutations over HTTP: webhookSubscriptionCreate (deliveries follow
the new subscription) and fulfillmentEventCreate (a scan the app posts: recorded, status
moved, webhooks fired), their userErrors, and Shopify's flat mutation cost."""

import pytest
import requests

from shopapp.admin_api.client import AdminApiClient
from tests.devshop.capture_server import CaptureServer
from tests.devshop.simulation_support import capture_store, hooks, new_shop, quiet

SUBSCRIBE = """
mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id topic uri format apiVersion { handle } }
    userErrors { field message }
  }
}"""
EVENT = """
mutation($event: FulfillmentEventInput!) {
  fulfillmentEventCreate(fulfillmentEvent: $event) {
    fulfillmentEvent { id status message city happenedAt estimatedDeliveryAt }
    userErrors { field message }
  }
}"""
FULFILLMENT = """
query($id: ID!) { order(id: $id) { fulfillments(first: 5) {
  displayStatus estimatedDeliveryAt events(first: 10) { nodes { status city } } } } }"""


@pytest.fixture(scope="module")
def capture():
    server = CaptureServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(capture, tmp_path_factory):
    server = capture_store(tmp_path_factory.mktemp("devshop-mutations"), capture)
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
def shop(store, settings):
    quiet(store)
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = store.admin_url_template
    domain, token = new_shop(store, "mut")
    return domain, AdminApiClient(domain, token), token


def _raw(store, domain: str, token: str, query: str, variables: dict) -> dict:
    response = requests.post(
        f"{store.client.shop_url(domain)}/admin/api/2026-10/graphql.json",
        json={"query": query, "variables": variables},
        headers={"X-Shopify-Access-Token": token},
        timeout=10,
    )
    return response.json()


def test_webhook_subscription_create_adds_a_delivery_target(store, capture, shop):
    domain, api, _ = shop
    other = CaptureServer().start()
    try:
        data = api.execute(
            SUBSCRIBE,
            {"topic": "ORDERS_CREATE", "sub": {"uri": f"{other.url}/hooks", "format": "JSON"}},
        )["webhookSubscriptionCreate"]

        assert data["userErrors"] == []
        sub = data["webhookSubscription"]
        assert sub["id"].startswith("gid://shopify/WebhookSubscription/")
        assert (sub["topic"], sub["uri"], sub["format"]) == (
            "ORDERS_CREATE",
            f"{other.url}/hooks",
            "JSON",
        )
        assert sub["apiVersion"]["handle"] == api.api_version

        # an order now goes to the app's TOML address and to the new subscription
        (order_id,) = store.client.orders_create(domain, count=1, financial_status="AUTHORIZED")
        hooks(store, capture, domain)
        (delivered,) = other.received(x_shopify_shop_domain=domain)
        assert delivered.path == "/hooks"
        assert delivered.header("X-Shopify-Topic") == "orders/create"
        assert f'"id":{order_id},' in delivered.body.decode()
    finally:
        other.stop()


@pytest.mark.parametrize(
    "uri", ["", "ftp://example.com/x", "http://example.com/not-https"], ids=["blank", "ftp", "http"]
)
def test_webhook_subscription_create_rejects_bad_addresses(shop, uri):
    _, api, _ = shop

    data = api.execute(SUBSCRIBE, {"topic": "ORDERS_PAID", "sub": {"uri": uri}})

    payload = data["webhookSubscriptionCreate"]
    assert payload["webhookSubscription"] is None
    assert payload["userErrors"][0]["field"] == ["webhookSubscription", "callbackUrl"]


def test_fulfillment_event_create_records_moves_status_and_fires(store, capture, shop):
    domain, api, _ = shop
    (order_id,) = store.client.orders_create(domain, count=1)
    (fulfillment,) = store.client.order_fulfil(domain, order_id, carrier="FedEx")
    hooks(store, capture, domain)

    data = api.execute(
        EVENT,
        {
            "event": {
                "fulfillmentId": f"gid://shopify/Fulfillment/{fulfillment['id']}",
                "status": "OUT_FOR_DELIVERY",
                "message": "On the truck",
                "city": "Ottawa",
                "province": "Ontario",
                "country": "Canada",
                "zip": "K2P 2L8",
                "latitude": 45.4191176,
                "longitude": -75.6966166,
                "happenedAt": "2026-03-07T10:00:00Z",
                "estimatedDeliveryAt": "2026-03-07T20:00:00Z",
            }
        },
    )["fulfillmentEventCreate"]

    assert data["userErrors"] == []
    event = data["fulfillmentEvent"]
    assert event["status"] == "OUT_FOR_DELIVERY"
    assert event["city"] == "Ottawa"
    assert event["happenedAt"] == "2026-03-07T10:00:00Z"
    assert event["estimatedDeliveryAt"] == "2026-03-07T20:00:00Z"
    (f,) = api.execute(FULFILLMENT, {"id": f"gid://shopify/Order/{order_id}"})["order"][
        "fulfillments"
    ]
    assert f["displayStatus"] == "OUT_FOR_DELIVERY"
    assert f["estimatedDeliveryAt"] == "2026-03-07T20:00:00Z"
    assert f["events"]["nodes"] == [{"status": "OUT_FOR_DELIVERY", "city": "Ottawa"}]
    sent = hooks(store, capture, domain)
    assert [h.topic for h in sent] == ["fulfillment_events/create", "fulfillments/update"]
    assert sent[0].event_id == sent[1].event_id
    assert sent[0].payload["status"] == "out_for_delivery"
    assert sent[0].payload["zip"] == "K2P 2L8"
    assert sent[0].payload["latitude"] == 45.4191176
    assert sent[0].payload["admin_graphql_api_id"] == event["id"]
    assert sent[1].payload["shipment_status"] == "out_for_delivery"


def test_fulfillment_event_create_unknown_fulfillment_is_a_user_error(store, capture, shop):
    domain, api, _ = shop

    data = api.execute(
        EVENT, {"event": {"fulfillmentId": "gid://shopify/Fulfillment/1", "status": "DELIVERED"}}
    )["fulfillmentEventCreate"]

    assert data["fulfillmentEvent"] is None
    assert data["userErrors"] == [
        {"field": ["fulfillmentEvent", "fulfillmentId"], "message": "Fulfillment does not exist."}
    ]
    assert hooks(store, capture, domain) == []


def test_fulfillment_event_status_outside_the_enum_fails_validation(store, shop):
    domain, _, token = shop

    answer = _raw(
        store,
        domain,
        token,
        EVENT,
        {"event": {"fulfillmentId": "gid://shopify/Fulfillment/1", "status": "LOST"}},
    )
    assert answer["errors"]
    assert "data" not in answer


def test_a_mutation_costs_ten(store, shop):
    domain, api, _ = shop

    api.execute(
        EVENT, {"event": {"fulfillmentId": "gid://shopify/Fulfillment/1", "status": "DELIVERED"}}
    )

    assert api.last_cost["requestedQueryCost"] == 10
    assert api.last_cost["actualQueryCost"] == 10
