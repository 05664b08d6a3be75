"""Uninstall/reinstall and the three mandatory compliance webhooks, delivered signed."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from shopapp.models import (
    CustomerDataExport,
    LineItem,
    Order,
    OrderEvent,
    Shop,
    WebhookEvent,
)
from shopapp.orders.services import order_event_record, order_upsert
from shopapp.webhooks.services import webhook_event_process
from tests.shopapp.webhook_support import fixture_bytes, fixture_json, make_shop, post_webhook

pytestmark = pytest.mark.django_db

SHOP = "alpha.myshopify.com"
# The compliance samples' customer.
CUSTOMER_ID = 191167
CUSTOMER_EMAIL = "john@example.com"


@pytest.fixture
def shop():
    return make_shop(SHOP)


def _deliver(client, topic, body=None, *, shop_domain=SHOP, **headers):
    """POST a signed delivery and process it as the worker would."""
    body = fixture_bytes(topic) if body is None else body
    response = post_webhook(client, topic, body, shop_domain=shop_domain, **headers)
    assert response.status_code == 200
    event = WebhookEvent.objects.order_by("-pk").first()
    webhook_event_process(event_id=event.pk)
    event.refresh_from_db()
    return event


def _customer_order(shop, shopify_id, **changes):
    payload = fixture_json("orders/create")
    payload.update(
        {
            "id": shopify_id,
            "name": f"#{shopify_id}",
            "email": CUSTOMER_EMAIL,
            "phone": "555-625-1199",
            "customer": {
                "id": CUSTOMER_ID,
                "first_name": "John",
                "last_name": "Smith",
                "email": CUSTOMER_EMAIL,
            },
        }
    )
    payload.update(changes)
    return order_upsert(shop=shop, payload=payload, source="webhook")


# --- app/uninstalled ------------------------------------------------------------------------


def test_uninstall_deactivates_the_shop_and_forgets_its_tokens(client, shop):
    event = _deliver(client, "app/uninstalled")

    assert event.status == WebhookEvent.Status.PROCESSED
    shop.refresh_from_db()
    assert shop.is_active is False
    assert shop.uninstalled_at is not None
    assert shop.access_token_encrypted == ""
    assert shop.refresh_token_encrypted == ""
    assert shop.access_token_expires_at is None
    assert shop.refresh_token_expires_at is None


def test_uninstall_stops_the_shops_pending_work_but_not_other_shops(client, shop):
    other = make_shop("bravo.myshopify.com")
    post_webhook(client, "orders/create", fixture_bytes("orders/create"), shop_domain=SHOP)
    post_webhook(
        client, "orders/create", fixture_bytes("orders/create"), shop_domain=other.myshopify_domain
    )

    _deliver(client, "app/uninstalled")

    mine = WebhookEvent.objects.get(shop=shop, topic="orders/create")
    theirs = WebhookEvent.objects.get(shop=other, topic="orders/create")
    assert mine.status == WebhookEvent.Status.IGNORED
    assert mine.ignored_reason == "shop_uninstalled"
    assert theirs.status == WebhookEvent.Status.PENDING
    assert Order.objects.count() == 0


def test_webhooks_after_uninstall_are_ignored_until_reinstall(client, shop):
    _deliver(client, "app/uninstalled")

    ignored = _deliver(client, "orders/create")

    assert ignored.status == WebhookEvent.Status.IGNORED
    assert ignored.ignored_reason == "inactive_shop"
    assert Order.objects.count() == 0

    # when the merchant installs again (the install flow sets these)
    Shop.objects.filter(pk=shop.pk).update(is_active=True, installed_at=timezone.now())

    processed = _deliver(client, "orders/create")
    assert processed.status == WebhookEvent.Status.PROCESSED
    assert Order.objects.filter(shop=shop).count() == 1


def test_late_uninstall_delivery_after_a_reinstall_changes_nothing(client, shop):
    # given an uninstall triggered yesterday, and a reinstall since
    Shop.objects.filter(pk=shop.pk).update(installed_at=timezone.now())
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()

    event = _deliver(client, "app/uninstalled", **{"X-Shopify-Triggered-At": yesterday})

    assert event.status == WebhookEvent.Status.PROCESSED
    shop.refresh_from_db()
    assert shop.is_active is True
    assert shop.access_token_encrypted == "encrypted-access"


def test_repeated_uninstall_is_idempotent(client, shop):
    _deliver(client, "app/uninstalled")
    first = Shop.objects.get(pk=shop.pk).uninstalled_at

    second = _deliver(client, "app/uninstalled")

    assert second.status == WebhookEvent.Status.PROCESSED
    assert Shop.objects.get(pk=shop.pk).uninstalled_at == first


# --- customers/data_request -----------------------------------------------------------------


def test_data_request_exports_what_the_app_holds_about_the_customer(client, shop):
    order = _customer_order(shop, 299938)
    _customer_order(shop, 1, email="else@example.com", customer={"id": 5})
    order_event_record(
        shop=shop,
        order=order,
        kind="staff.note",
        occurred_at=timezone.now(),
        source=OrderEvent.Source.STAFF,
        summary="Shopper asked about delivery",
    )

    event = _deliver(client, "customers/data_request")

    assert event.status == WebhookEvent.Status.PROCESSED
    export = CustomerDataExport.objects.get(shop=shop)
    assert export.data_request_id == 9999
    assert export.customer_id == CUSTOMER_ID
    assert export.customer_email == CUSTOMER_EMAIL
    data = json.loads(json.dumps(export.data))
    assert [o["shopify_id"] for o in data["orders"]] == [299938]
    exported = data["orders"][0]
    assert exported["email"] == CUSTOMER_EMAIL
    assert exported["customer_first_name"] == "John"
    assert exported["total_price"] == "404.95"
    assert len(exported["line_items"]) == 5
    assert "staff.note" in [e["kind"] for e in exported["timeline"]]


def test_data_request_delivered_twice_is_one_export(client, shop):
    _customer_order(shop, 299938)

    _deliver(client, "customers/data_request")
    _deliver(client, "customers/data_request")

    assert CustomerDataExport.objects.filter(shop=shop).count() == 1


def test_data_request_never_exports_another_shops_orders(client, shop):
    other = make_shop("bravo.myshopify.com")
    _customer_order(other, 299938)

    _deliver(client, "customers/data_request")

    assert CustomerDataExport.objects.get(shop=shop).data["orders"] == []


def test_data_request_works_for_an_uninstalled_shop(client):
    gone = make_shop(SHOP, is_active=False)
    _customer_order(gone, 299938)

    event = _deliver(client, "customers/data_request")

    assert event.status == WebhookEvent.Status.PROCESSED
    assert CustomerDataExport.objects.get(shop=gone).data["orders"][0]["shopify_id"] == 299938


# --- customers/redact -----------------------------------------------------------------------


def test_customer_redact_anonymises_the_customers_orders_and_keeps_them(client, shop):
    listed = _customer_order(shop, 299938)
    by_email = _customer_order(shop, 5555, customer={"id": 1})
    stranger = _customer_order(
        shop, 7777, email="else@example.com", phone="1", customer={"id": 2, "first_name": "Ann"}
    )
    order_event_record(
        shop=shop,
        order=listed,
        kind="notification.sent",
        occurred_at=timezone.now(),
        source=OrderEvent.Source.APP,
        summary=f"Email sent to {CUSTOMER_EMAIL}",
        detail={"to": CUSTOMER_EMAIL, "step": "shipped", "nested": {"city": "Ottawa"}},
    )

    event = _deliver(client, "customers/redact")

    assert event.status == WebhookEvent.Status.PROCESSED
    for order in (listed, by_email):
        order.refresh_from_db()
        assert order.redacted_at is not None
        assert order.email == ""
        assert order.phone == ""
        assert order.customer_first_name == ""
        assert order.customer_last_name == ""
        assert order.shipping_city == ""
        assert order.shipping_zip == ""
        # The order itself stays, for the merchant's records.
        assert order.total_price > 0
        assert order.shipping_country_code == "US"
    assert LineItem.objects.filter(order=listed).count() == 5
    note = OrderEvent.objects.get(order=listed, kind="notification.sent")
    # only the address is erased: support still reads what happened
    assert note.summary == "Email sent to [redacted]"
    assert note.detail == {"to": "[redacted]", "step": "shipped", "nested": {"city": "[redacted]"}}
    stranger.refresh_from_db()
    assert stranger.redacted_at is None
    assert stranger.email == "else@example.com"
    assert stranger.customer_first_name == "Ann"


def test_customer_redact_scrubs_stored_webhook_payloads_and_exports(client, shop):
    # given the customer's order arrived by webhook and a data export exists
    order_delivery = _deliver(
        client,
        "orders/create",
        json.dumps(
            {**fixture_json("orders/create"), "id": 299938, "email": CUSTOMER_EMAIL}
        ).encode(),
    )
    data_request = _deliver(client, "customers/data_request")
    unrelated = _deliver(client, "orders/create", json.dumps({"id": 42}).encode())
    assert CustomerDataExport.objects.filter(shop=shop).count() == 1

    redact = _deliver(client, "customers/redact")

    assert redact.status == WebhookEvent.Status.PROCESSED
    order_delivery.refresh_from_db()
    data_request.refresh_from_db()
    redact.refresh_from_db()
    unrelated.refresh_from_db()
    assert order_delivery.payload == {"redacted": True}
    assert data_request.payload == {"redacted": True, "customer_id": CUSTOMER_ID}
    assert redact.payload == {"redacted": True, "customer_id": CUSTOMER_ID}
    assert unrelated.payload == {"id": 42}
    assert CustomerDataExport.objects.filter(shop=shop).count() == 0
    stored = json.dumps(list(WebhookEvent.objects.values_list("payload", flat=True)))
    assert CUSTOMER_EMAIL not in stored
    assert "555-625-1199" not in stored


def test_customer_redact_never_touches_another_shop(client, shop):
    other = make_shop("bravo.myshopify.com")
    theirs = _customer_order(other, 299938)

    _deliver(client, "customers/redact")

    theirs.refresh_from_db()
    assert theirs.redacted_at is None
    assert theirs.email == CUSTOMER_EMAIL


# --- shop/redact ----------------------------------------------------------------------------


def test_shop_redact_deletes_everything_held_for_the_shop(client):
    # given an uninstalled shop with orders, a timeline, exports and deliveries, and another shop
    shop = make_shop(SHOP)
    other = make_shop("bravo.myshopify.com")
    _customer_order(shop, 299938)
    _customer_order(other, 299938)
    _deliver(client, "customers/data_request")
    _deliver(client, "app/uninstalled")
    post_webhook(client, "orders/create", b'{"id": 1}', shop_domain=SHOP)

    event = _deliver(client, "shop/redact")

    assert event.status == WebhookEvent.Status.PROCESSED
    assert not Shop.objects.filter(myshopify_domain=SHOP).exists()
    assert not Order.objects.exclude(shop=other).exists()
    assert not LineItem.objects.exclude(shop=other).exists()
    assert not OrderEvent.objects.exclude(shop=other).exists()
    assert not CustomerDataExport.objects.exists()
    # Only the shop/redact delivery stays, detached, as the record that it was done.
    remaining = WebhookEvent.objects.filter(shop_domain=SHOP)
    assert list(remaining.values_list("topic", "shop_id")) == [("shop/redact", None)]
    assert Order.objects.filter(shop=other).count() == 1


def test_shop_redact_for_a_reinstalled_shop_deletes_nothing(client, shop):
    _customer_order(shop, 299938)

    event = _deliver(client, "shop/redact")

    assert event.status == WebhookEvent.Status.PROCESSED
    assert Shop.objects.filter(pk=shop.pk).exists()
    assert Order.objects.filter(shop=shop).count() == 1


def test_compliance_webhook_for_a_shop_never_known_is_ignored(client):
    response = post_webhook(
        client, "shop/redact", fixture_bytes("shop/redact"), shop_domain="ghost.myshopify.com"
    )

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.IGNORED
    assert event.ignored_reason == "unknown_shop"


@pytest.mark.parametrize("topic", ["customers/data_request", "customers/redact", "shop/redact"])
def test_compliance_webhook_with_a_bad_signature_is_a_401(client, shop, topic):
    # Shopify's review checks that the compliance endpoints answer 401 to an invalid HMAC.
    response = post_webhook(
        client, topic, fixture_bytes(topic), shop_domain=SHOP, secret="not-the-app-secret"
    )

    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0
