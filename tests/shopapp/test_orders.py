"""The order mirror: order_upsert, its timeline, the orders/* handlers and the selectors."""

import json
from datetime import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from shopapp.models import LineItem, Order, OrderEvent, WebhookEvent
from shopapp.orders import selectors
from shopapp.orders.services import order_event_record, order_upsert
from shopapp.webhooks.services import webhook_event_process, webhook_event_record
from tests.shopapp.webhook_support import FIXTURE_ORDER_ID, fixture_json, make_shop

pytestmark = pytest.mark.django_db

SOURCE = OrderEvent.Source.WEBHOOK


@pytest.fixture
def shop():
    return make_shop("alpha.myshopify.com")


def _payload(**changes) -> dict:
    payload = fixture_json("orders/create")
    # The sample is already cancelled and voided; most tests start from a plain open order.
    payload.update({"cancelled_at": None, "cancel_reason": None, "financial_status": "pending"})
    payload.update(changes)
    return payload


def _kinds(order) -> list[str]:
    return list(order.events.order_by("id").values_list("kind", flat=True))


def _process(shop, topic, payload, webhook_id):
    event = webhook_event_record(
        webhook_id=webhook_id,
        topic=topic,
        shop_domain=shop.myshopify_domain,
        payload=payload,
        headers={},
    )
    webhook_event_process(event_id=event.pk)
    event.refresh_from_db()
    return event


def test_upsert_fills_every_field_from_the_sample_order(shop):
    order = order_upsert(shop=shop, payload=fixture_json("orders/create"), source=SOURCE)

    order.refresh_from_db()
    assert order.shopify_id == FIXTURE_ORDER_ID
    assert order.admin_graphql_api_id == "gid://shopify/Order/820982911946154508"
    assert order.name == "#9999"
    assert order.order_number == 1234
    assert order.email == "jon@example.com"
    assert order.phone == ""
    assert order.customer_id == 115310627314723954
    assert order.customer_first_name == "John"
    assert order.customer_last_name == "Smith"
    assert order.buyer_accepts_marketing is True
    assert order.locale == "en"
    assert order.currency == "USD"
    assert order.presentment_currency == "USD"
    assert order.total_price == Decimal("404.95")
    assert order.subtotal_price == Decimal("404.95")
    assert order.total_discounts == Decimal("20.00")
    assert order.total_tax == Decimal("0.00")
    assert order.total_shipping == Decimal("10.00")
    assert order.financial_status == "voided"
    assert order.fulfillment_status == ""
    assert order.shipping_country_code == "US"
    assert order.shipping_province_code == "KY"
    assert order.shipping_city == "Shippington"
    assert order.shipping_zip == "40003"
    assert order.tags == "tag1, tag2"
    assert order.is_test is True
    assert order.order_status_url.startswith("https://jsmith.myshopify.com/548380009/orders/")
    assert order.shopify_created_at == datetime.fromisoformat("2022-01-01T00:00:00+00:00")
    assert order.shopify_updated_at == datetime.fromisoformat("2022-01-01T00:00:00+00:00")
    assert order.processed_at == order.shopify_created_at
    assert order.cancelled_at == order.shopify_created_at
    assert order.cancel_reason == "customer"
    assert order.closed_at is None
    items = {li.shopify_id: li for li in order.line_items.all()}
    assert len(items) == 5
    sunglasses = items[487817672276298554]
    assert sunglasses.shop == shop
    assert sunglasses.title == "Aviator sunglasses"
    assert sunglasses.sku == "SKU2006-001"
    assert sunglasses.product_id == 788032119674292922
    assert sunglasses.variant_id is None
    assert sunglasses.quantity == 1
    assert sunglasses.current_quantity == 1
    assert sunglasses.fulfillable_quantity == 1
    assert sunglasses.price == Decimal("89.99")
    assert sunglasses.requires_shipping is True
    assert sunglasses.is_gift_card is False


def test_new_order_writes_created_and_its_notable_states(shop):
    order = order_upsert(shop=shop, payload=fixture_json("orders/create"), source=SOURCE)

    # The sample arrives already voided and cancelled.
    assert _kinds(order) == ["order.created", "order.voided", "order.cancelled"]
    created = order.events.get(kind="order.created")
    assert created.source == "webhook"
    assert created.summary == "Order #9999 placed"
    assert created.dedupe_key == f"order:{FIXTURE_ORDER_ID}:created"


def test_same_payload_twice_is_an_idempotent_no_op(shop):
    payload = _payload()
    order_upsert(shop=shop, payload=payload, source=SOURCE)

    order = order_upsert(shop=shop, payload=payload, source=SOURCE)

    assert order is not None
    assert Order.objects.count() == 1
    assert LineItem.objects.count() == 5
    assert _kinds(order) == ["order.created"]


def test_stale_update_changes_nothing(shop):
    # given the order as of 12:00
    order_upsert(
        shop=shop,
        payload=_payload(updated_at="2024-05-01T12:00:00Z", tags="vip", financial_status="paid"),
        source=SOURCE,
    )

    # when an orders/updated from 11:00 arrives late
    result = order_upsert(
        shop=shop,
        payload=_payload(updated_at="2024-05-01T11:00:00Z", tags="old", email="old@example.com"),
        source=SOURCE,
    )

    # then nothing changed
    assert result is None
    order = Order.objects.get()
    assert order.tags == "vip"
    assert order.email == "jon@example.com"
    assert order.financial_status == "paid"
    assert _kinds(order) == ["order.created", "order.paid"]


def test_newer_update_changes_fields_and_writes_one_updated_event(shop):
    order_upsert(shop=shop, payload=_payload(updated_at="2024-05-01T11:00:00Z"), source=SOURCE)

    order = order_upsert(
        shop=shop,
        payload=_payload(updated_at="2024-05-01T12:00:00Z", tags="vip"),
        source=SOURCE,
    )

    assert order.tags == "vip"
    assert _kinds(order) == ["order.created", "order.updated"]
    assert order.events.get(kind="order.updated").detail == {"fields": ["tags"]}


def test_paid_before_create_creates_the_order_and_the_late_create_changes_nothing(shop):
    paid = _payload(financial_status="paid", updated_at="2024-05-01T12:05:00Z")
    created = _payload(financial_status="pending", updated_at="2024-05-01T12:00:00Z")

    _process(shop, "orders/paid", paid, "w-paid")
    _process(shop, "orders/create", created, "w-create")

    order = Order.objects.get()
    assert order.financial_status == "paid"
    assert _kinds(order) == ["order.created", "order.paid"]


def test_payment_status_change_is_one_timeline_event(shop):
    order_upsert(shop=shop, payload=_payload(updated_at="2024-05-01T12:00:00Z"), source=SOURCE)

    order = order_upsert(
        shop=shop,
        payload=_payload(financial_status="paid", updated_at="2024-05-01T12:01:00Z"),
        source=SOURCE,
    )

    paid = order.events.get(kind="order.paid")
    assert paid.detail == {"from": "pending", "to": "paid"}
    assert paid.occurred_at == datetime.fromisoformat("2024-05-01T12:01:00+00:00")


def test_fulfillment_status_changes_are_on_the_timeline(shop):
    order_upsert(shop=shop, payload=_payload(updated_at="2024-05-01T12:00:00Z"), source=SOURCE)

    _process(
        shop,
        "orders/partially_fulfilled",
        _payload(fulfillment_status="partial", updated_at="2024-05-01T13:00:00Z"),
        "w-1",
    )
    _process(
        shop,
        "orders/fulfilled",
        _payload(fulfillment_status="fulfilled", updated_at="2024-05-01T14:00:00Z"),
        "w-2",
    )

    order = Order.objects.get()
    assert order.fulfillment_status == "fulfilled"
    assert _kinds(order) == ["order.created", "order.partially_fulfilled", "order.fulfilled"]


def test_cancellation_is_recorded_once_and_triggers_notifications_once(shop):
    from notifications.defaults import notification_defaults_install
    from notifications.models import Message

    # given the shop's default sequences (notifications hears of platform facts through
    # shopapp.subscribers.ORDER_CHANGED)
    notification_defaults_install(shop=shop)
    order_upsert(shop=shop, payload=_payload(updated_at="2024-05-01T12:00:00Z"), source=SOURCE)
    cancelled = fixture_json("orders/cancelled")
    cancelled["updated_at"] = "2024-05-02T09:00:00Z"

    _process(shop, "orders/updated", cancelled, "w-updated")
    _process(shop, "orders/cancelled", cancelled, "w-cancelled")

    order = Order.objects.get()
    assert order.cancelled_at is not None
    assert order.cancel_reason == "customer"
    assert _kinds(order).count("order.cancelled") == 1
    # one "order cancelled" email, whatever the two deliveries repeated
    cancelled_messages = Message.objects.filter(shop=shop, trigger="order_cancelled")
    assert [(m.order_id, m.subject_key) for m in cancelled_messages] == [(order.pk, "order")]
    assert cancelled_messages[0].snapshot["news"]["reason"] == "customer"


def test_line_item_removed_by_an_edit_is_kept_at_zero_quantity(shop):
    payload = _payload(updated_at="2024-05-01T12:00:00Z")
    order_upsert(shop=shop, payload=payload, source=SOURCE)
    edited = _payload(updated_at="2024-05-01T13:00:00Z")
    edited["line_items"] = [li for li in payload["line_items"] if li["id"] != 487817672276298554]
    edited["line_items"][0]["quantity"] = 3
    edited["line_items"][0]["current_quantity"] = 3

    order = order_upsert(shop=shop, payload=edited, source=SOURCE)

    removed = order.line_items.get(shopify_id=487817672276298554)
    assert removed.current_quantity == 0
    assert removed.fulfillable_quantity == 0
    assert order.line_items.get(shopify_id=789012345678901234).current_quantity == 3
    assert order.line_items.count() == 5


def test_orders_edited_records_the_edit_and_asks_reconciliation_for_the_order(shop):
    order_upsert(shop=shop, payload=_payload(), source=SOURCE)
    shop.orders_synced_at = timezone.now()
    shop.save()
    payload = fixture_json("orders/edited")

    _process(shop, "orders/edited", payload, "w-edit-1")
    _process(shop, "orders/edited", payload, "w-edit-2")

    order = Order.objects.get()
    edits = order.events.filter(kind="order.edited")
    assert edits.count() == 1
    assert edits.get().detail == {
        "order_edit_id": 78912328793123782,
        "added_line_item_ids": [78643924236718232],
        "removed_line_item_ids": [487817672276298554],
    }
    shop.refresh_from_db()
    # The cursor moved back to the edit, so the next reconciliation pulls the order again.
    assert shop.orders_synced_at == datetime.fromisoformat("2022-01-01T00:00:00+00:00")


def test_orders_delete_hides_the_order_and_keeps_its_timeline(shop):
    order = order_upsert(shop=shop, payload=_payload(), source=SOURCE)

    event = _process(shop, "orders/delete", fixture_json("orders/delete"), "w-del")

    assert event.status == WebhookEvent.Status.PROCESSED
    order.refresh_from_db()
    assert order.deleted_at is not None
    assert _kinds(order) == ["order.created", "order.deleted"]
    assert list(selectors.order_list(shop=shop)) == []
    assert selectors.order_get(shop=shop, order_id=FIXTURE_ORDER_ID) == order


def test_orders_delete_for_an_unknown_order_changes_nothing(shop):
    event = _process(shop, "orders/delete", {"id": 123}, "w-del")

    assert event.status == WebhookEvent.Status.PROCESSED
    assert Order.objects.count() == 0


def test_webhook_for_shop_a_never_touches_shop_b_with_the_same_order_id(shop):
    other = make_shop("bravo.myshopify.com")
    order_upsert(shop=other, payload=_payload(updated_at="2024-01-01T00:00:00Z"), source=SOURCE)
    before = Order.objects.get(shop=other)

    _process(
        shop,
        "orders/cancelled",
        {**fixture_json("orders/cancelled"), "updated_at": "2025-01-01T00:00:00Z"},
        "w-a",
    )
    _process(shop, "orders/delete", {"id": FIXTURE_ORDER_ID}, "w-a-del")

    theirs = Order.objects.get(shop=other)
    assert theirs.cancelled_at is None
    assert theirs.deleted_at is None
    assert theirs.shopify_updated_at == before.shopify_updated_at
    assert _kinds(theirs) == ["order.created"]
    assert Order.objects.get(shop=shop).deleted_at is not None


def test_order_event_record_is_idempotent_on_its_dedupe_key(shop):
    order = order_upsert(shop=shop, payload=_payload(), source=SOURCE)
    when = timezone.now()

    first = order_event_record(
        shop=shop,
        order=order,
        kind="staff.note",
        occurred_at=when,
        source=OrderEvent.Source.STAFF,
        summary="Called the shopper",
        dedupe_key="note-1",
    )
    second = order_event_record(
        shop=shop,
        order=order,
        kind="staff.note",
        occurred_at=when,
        source=OrderEvent.Source.STAFF,
        summary="Called the shopper",
        dedupe_key="note-1",
    )

    assert first is not None
    assert second is None
    assert order.events.filter(kind="staff.note").count() == 1


def test_order_event_record_refuses_an_order_of_another_shop(shop):
    other = make_shop("bravo.myshopify.com")
    theirs = order_upsert(shop=other, payload=_payload(), source=SOURCE)

    with pytest.raises(ValueError, match="does not belong"):
        order_event_record(
            shop=shop,
            order=theirs,
            kind="staff.note",
            occurred_at=timezone.now(),
            source=OrderEvent.Source.STAFF,
            summary="x",
        )

    assert theirs.events.filter(kind="staff.note").count() == 0


def test_same_key_in_two_shops_is_two_events(shop):
    other = make_shop("bravo.myshopify.com")
    mine = order_upsert(shop=shop, payload=_payload(), source=SOURCE)
    theirs = order_upsert(shop=other, payload=_payload(), source=SOURCE)

    assert mine.events.count() == 1
    assert theirs.events.count() == 1


def test_redacted_order_does_not_get_its_personal_data_back(shop):
    order = order_upsert(
        shop=shop, payload=_payload(updated_at="2024-01-01T00:00:00Z"), source=SOURCE
    )
    Order.objects.filter(pk=order.pk).update(
        email="",
        phone="",
        customer_first_name="",
        customer_last_name="",
        shipping_city="",
        shipping_zip="",
        redacted_at=timezone.now(),
    )

    order = order_upsert(
        shop=shop, payload=_payload(updated_at="2024-02-01T00:00:00Z", tags="x"), source=SOURCE
    )

    order.refresh_from_db()
    assert order.tags == "x"
    assert order.email == ""
    assert order.customer_first_name == ""
    assert order.customer_last_name == ""
    assert order.shipping_city == ""
    assert order.shipping_zip == ""
    assert order.shipping_country_code == "US"


# --- selectors ------------------------------------------------------------------------------


def _order(shop, shopify_id, name, email, created):
    payload = _payload(
        id=shopify_id,
        name=name,
        order_number=int(name.lstrip("#")),
        email=email,
        created_at=created,
        updated_at=created,
    )
    payload["line_items"] = []
    return order_upsert(shop=shop, payload=payload, source=SOURCE)


def test_order_list_is_newest_first_and_scoped_to_the_shop(shop):
    other = make_shop("bravo.myshopify.com")
    old = _order(shop, 1, "#1001", "a@example.com", "2024-01-01T00:00:00Z")
    new = _order(shop, 2, "#1002", "b@example.com", "2024-02-01T00:00:00Z")
    _order(other, 3, "#1003", "a@example.com", "2024-03-01T00:00:00Z")

    assert list(selectors.order_list(shop=shop)) == [new, old]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("#1001", ["#1001"]),
        ("1001", ["#1001"]),
        ("A@Example.com", ["#1001"]),
        ("", ["#1002", "#1001"]),
    ],
)
def test_order_list_searches_by_name_with_or_without_hash_and_by_email(shop, query, expected):
    other = make_shop("bravo.myshopify.com")
    _order(shop, 1, "#1001", "a@example.com", "2024-01-01T00:00:00Z")
    _order(shop, 2, "#1002", "b@example.com", "2024-02-01T00:00:00Z")
    _order(other, 3, "#1001", "a@example.com", "2024-03-01T00:00:00Z")

    found = selectors.order_list(shop=shop, query=query)

    assert [o.name for o in found] == expected
    assert {o.shop_id for o in found} <= {shop.pk}


def test_order_get_never_returns_another_shops_order(shop):
    other = make_shop("bravo.myshopify.com")
    _order(other, 42, "#1001", "a@example.com", "2024-01-01T00:00:00Z")

    assert selectors.order_get(shop=shop, order_id=42) is None
    assert selectors.order_get(shop=other, order_id=42).shop == other


def test_order_timeline_is_newest_first_and_scoped(shop):
    order = order_upsert(
        shop=shop, payload=_payload(updated_at="2024-05-01T12:00:00Z"), source=SOURCE
    )
    order_upsert(
        shop=shop,
        payload=_payload(financial_status="paid", updated_at="2024-05-01T13:00:00Z"),
        source=SOURCE,
    )
    other = make_shop("bravo.myshopify.com")

    kinds = [e.kind for e in selectors.order_timeline(shop=shop, order=order)]

    assert kinds == ["order.paid", "order.created"]
    assert list(selectors.order_timeline(shop=other, order=order)) == []


def test_payload_ids_above_2_to_the_53_stay_exact_through_json(shop):
    payload = json.loads(json.dumps(fixture_json("orders/create")))

    order = order_upsert(shop=shop, payload=payload, source=SOURCE)

    assert order.shopify_id == 820982911946154508
    assert LineItem.objects.filter(order=order, shopify_id=789012345678901234).exists()
