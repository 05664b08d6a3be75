"""Reconciliation against the devshop over real HTTP: orders updated since the cursor are
pulled through GraphQL, page by page, and upserted as a webhook would; it is idempotent and
never lets an older GraphQL read overwrite a newer webhook."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from shopapp.admin_api.client import AdminApiClient
from shopapp.models import LineItem, Order, OrderEvent, Shop
from shopapp.orders.jobs import orders_reconcile_all_job, orders_reconcile_job
from shopapp.orders.reconcile import (
    ORDERS_PAGE_SIZE,
    ORDERS_QUERY,
    order_payload_from_graphql,
    orders_reconcile,
)


@pytest.fixture(autouse=True)
def _graphql_knobs_reset(devshop):
    yield
    devshop.client.graphql_throttle_set()
    devshop.client.admin_api_fail_next(0)


def _installed_shop(devshop) -> Shop:
    """A store with the app installed, and the app's Shop holding its token (encrypted)."""
    from shopapp.auth.tokens import shop_tokens_assign

    domain = f"rec-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain)
    grant = devshop.client.app_install_with_token(domain)
    now = timezone.now()
    shop = Shop(myshopify_domain=domain, is_active=True, installed_at=now)
    shop_tokens_assign(
        shop=shop,
        access_token=grant["access_token"],
        access_token_expires_at=now + timedelta(seconds=grant["expires_in"]),
        refresh_token=grant["refresh_token"],
        refresh_token_expires_at=now + timedelta(seconds=grant["refresh_token_expires_in"]),
    )
    shop.save()
    return shop


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def test_payload_from_graphql_has_the_rest_webhook_shape():
    node = {
        "id": "gid://shopify/Order/450789469",
        "legacyResourceId": "450789469",
        "name": "#1001",
        "email": "bob@example.com",
        "phone": None,
        "createdAt": "2026-11-20T10:00:00Z",
        "updatedAt": "2026-11-21T10:00:00Z",
        "processedAt": "2026-11-20T10:00:00Z",
        "cancelledAt": None,
        "cancelReason": "CUSTOMER",
        "closedAt": None,
        "test": False,
        "tags": ["vip", "gift"],
        "customerLocale": "fr",
        "currencyCode": "USD",
        "presentmentCurrencyCode": "EUR",
        "displayFinancialStatus": "PARTIALLY_REFUNDED",
        "displayFulfillmentStatus": "PARTIALLY_FULFILLED",
        "statusPageUrl": "https://shop.example/orders/1/authenticate",
        "totalPriceSet": {"shopMoney": {"amount": "59.00", "currencyCode": "USD"}},
        "subtotalPriceSet": {"shopMoney": {"amount": "50.00", "currencyCode": "USD"}},
        "totalDiscountsSet": {"shopMoney": {"amount": "5.00", "currencyCode": "USD"}},
        "totalTaxSet": {"shopMoney": {"amount": "4.00", "currencyCode": "USD"}},
        "totalShippingPriceSet": {
            "shopMoney": {"amount": "5.00", "currencyCode": "USD"},
            "presentmentMoney": {"amount": "4.60", "currencyCode": "EUR"},
        },
        "customer": {
            "id": "gid://shopify/Customer/207119551",
            "firstName": "Bob",
            "lastName": "Norman",
            # Customer.email and .phone are deprecated: the default address and number.
            "defaultEmailAddress": {"emailAddress": "bob@example.com"},
            "defaultPhoneNumber": None,
        },
        "shippingAddress": {
            "city": "Paris",
            "provinceCode": None,
            "countryCodeV2": "FR",
            "zip": "75001",
        },
        "lineItems": {
            "nodes": [
                {
                    "id": "gid://shopify/LineItem/466157049",
                    "title": "IPod Nano - 8gb",
                    "variantTitle": "green",
                    "sku": "IPOD2008GREEN",
                    "vendor": None,
                    "quantity": 2,
                    "currentQuantity": 2,
                    "unfulfilledQuantity": 1,
                    "requiresShipping": True,
                    "originalUnitPriceSet": {"shopMoney": {"amount": "25.00"}},
                    "totalDiscountSet": {"shopMoney": {"amount": "0.00"}},
                    "product": {"id": "gid://shopify/Product/632910392"},
                    "variant": {"id": "gid://shopify/ProductVariant/39072856"},
                }
            ]
        },
    }

    payload = order_payload_from_graphql(node)

    assert payload["id"] == 450789469
    assert payload["admin_graphql_api_id"] == "gid://shopify/Order/450789469"
    assert payload["order_number"] == 1001
    assert payload["customer"] == {
        "id": 207119551,
        "first_name": "Bob",
        "last_name": "Norman",
        "email": "bob@example.com",
        "phone": None,
    }
    assert payload["financial_status"] == "partially_refunded"
    assert payload["fulfillment_status"] == "partial"
    assert payload["cancel_reason"] == "customer"
    assert payload["tags"] == "vip, gift"
    assert payload["total_price"] == "59.00"
    assert payload["total_shipping_price_set"] == {
        "shop_money": {"amount": "5.00", "currency_code": "USD"},
        "presentment_money": {"amount": "4.60", "currency_code": "EUR"},
    }
    assert payload["shipping_address"] == {
        "country_code": "FR",
        "province_code": None,
        "city": "Paris",
        "zip": "75001",
    }
    assert payload["order_status_url"] == "https://shop.example/orders/1/authenticate"
    [item] = payload["line_items"]
    assert item == {
        "id": 466157049,
        "admin_graphql_api_id": "gid://shopify/LineItem/466157049",
        "product_id": 632910392,
        "variant_id": 39072856,
        "title": "IPod Nano - 8gb",
        "variant_title": "green",
        "sku": "IPOD2008GREEN",
        "vendor": None,
        "quantity": 2,
        "current_quantity": 2,
        "fulfillable_quantity": 1,
        "fulfillment_status": "partial",
        "price": "25.00",
        "total_discount": "0.00",
        "requires_shipping": True,
    }


def test_unfulfilled_orders_have_null_fulfillment_status_as_rest_spells_it():
    payload = order_payload_from_graphql(
        {"id": "gid://shopify/Order/1", "displayFulfillmentStatus": "UNFULFILLED"}
    )

    assert payload["fulfillment_status"] is None


def test_an_order_with_nothing_left_to_fulfil_is_reconciled_as_rest_spells_it(devshop, db):
    # FULFILLMENT_NOT_REQUIRED (2026-10; an order cancelled before any fulfilment) is a status
    # REST has no word for: null, as unfulfilled
    shop = _installed_shop(devshop)
    (order_id,) = devshop.client.orders_create(
        shop.myshopify_domain, count=1, email="gift@example.com"
    )
    devshop.client.order_cancel(shop.myshopify_domain, order_id)

    orders_reconcile(shop=shop)

    order = Order.objects.get(shop=shop, shopify_id=order_id)
    assert order.fulfillment_status == ""
    assert order.cancelled_at is not None
    assert order.email == "gift@example.com"


def test_reconciliation_query_stays_under_shopifys_single_query_limit(devshop):
    domain = f"rec-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain)
    token = devshop.client.app_install_with_token(domain)["access_token"]
    client = AdminApiClient(domain, token)

    client.execute(
        ORDERS_QUERY,
        {"first": ORDERS_PAGE_SIZE, "query": "updated_at:>='2020-01-01'", "lineItemsFirst": 10},
    )

    assert client.last_cost["requestedQueryCost"] == 882
    assert client.last_cost["requestedQueryCost"] <= 1000


def test_pulls_only_orders_updated_since_the_cursor(devshop, db):
    # given two orders last updated a day ago, a cursor an hour ago, and three newer orders
    shop = _installed_shop(devshop)
    devshop.client.orders_create(
        shop.myshopify_domain, count=2, updated_at=_iso(timezone.now() - timedelta(days=1))
    )
    shop.orders_synced_at = timezone.now() - timedelta(hours=1)
    shop.save()
    recent = devshop.client.orders_create(shop.myshopify_domain, count=3)

    # when the shop is reconciled
    read = orders_reconcile(shop=shop)

    # then exactly the newer orders are mirrored, with their line items, from reconciliation
    assert read == 3
    assert sorted(Order.objects.filter(shop=shop).values_list("shopify_id", flat=True)) == sorted(
        recent
    )
    order = Order.objects.get(shop=shop, shopify_id=recent[0])
    assert order.name.startswith("#")
    assert order.email
    assert order.currency == "USD"
    assert order.total_price > 0
    assert order.shopify_updated_at is not None
    assert LineItem.objects.filter(order=order).count() >= 1
    assert OrderEvent.objects.filter(order=order, source="reconciliation").exists()
    # and the cursor moved to the newest updatedAt seen
    shop.refresh_from_db()
    assert shop.orders_synced_at == max(
        Order.objects.filter(shop=shop).values_list("shopify_updated_at", flat=True)
    )


def test_pages_through_more_than_one_page_and_every_line_item(devshop, db):
    # given more orders than one page holds, one of them with more line items than the
    # first request asks for
    shop = _installed_shop(devshop)
    created = devshop.client.orders_create(shop.myshopify_domain, count=ORDERS_PAGE_SIZE * 2 + 3)
    [big] = devshop.client.orders_create(shop.myshopify_domain, count=1, line_items=13)

    read = orders_reconcile(shop=shop)

    assert read == len(created) + 1
    assert Order.objects.filter(shop=shop).count() == len(created) + 1
    assert LineItem.objects.filter(order__shop=shop, order__shopify_id=big).count() == 13


def test_reconciliation_is_idempotent(devshop, db):
    shop = _installed_shop(devshop)
    devshop.client.orders_create(shop.myshopify_domain, count=4)
    orders_reconcile(shop=shop)
    snapshot = list(Order.objects.filter(shop=shop).order_by("id").values())
    events = OrderEvent.objects.filter(shop=shop).count()
    items = LineItem.objects.filter(shop=shop).count()

    orders_reconcile(shop=shop)
    orders_reconcile(shop=shop)

    assert list(Order.objects.filter(shop=shop).order_by("id").values()) == snapshot
    assert OrderEvent.objects.filter(shop=shop).count() == events
    assert LineItem.objects.filter(shop=shop).count() == items


def test_picks_up_an_order_edited_after_the_last_run(devshop, db):
    shop = _installed_shop(devshop)
    [order_id] = devshop.client.orders_create(shop.myshopify_domain, count=1)
    orders_reconcile(shop=shop)

    # a change whose webhook never arrived
    devshop.client.order_update(
        shop.myshopify_domain, order_id, email="new-address@example.com", tags="vip"
    )
    orders_reconcile(shop=shop)

    order = Order.objects.get(shop=shop, shopify_id=order_id)
    assert order.email == "new-address@example.com"
    assert order.tags == "vip"


def test_stale_reconciliation_does_not_overwrite_a_newer_webhook(devshop, db):
    from shopapp.orders.services import order_upsert

    # given the app already holds a newer state of the order from a webhook
    shop = _installed_shop(devshop)
    [order_id] = devshop.client.orders_create(shop.myshopify_domain, count=1)
    client = AdminApiClient(shop.myshopify_domain, devshop_token(devshop, shop))
    node = client.execute(
        ORDERS_QUERY, {"first": 1, "query": f"id:{order_id}", "lineItemsFirst": 10}
    )["orders"]["nodes"][0]
    webhook = order_payload_from_graphql(node)
    webhook["email"] = "from-webhook@example.com"
    webhook["updated_at"] = _iso(timezone.now() + timedelta(minutes=5))
    order_upsert(shop=shop, payload=webhook, source="webhook")

    # when reconciliation reads the older state from GraphQL
    read = orders_reconcile(shop=shop)

    # then the webhook's newer state stays
    assert read == 1
    order = Order.objects.get(shop=shop, shopify_id=order_id)
    assert order.email == "from-webhook@example.com"


def devshop_token(devshop, shop: Shop) -> str:
    from shopapp.auth.tokens import shop_access_token_read

    return shop_access_token_read(shop=shop)


def test_first_run_without_a_cursor_reads_recent_orders(devshop, db):
    shop = _installed_shop(devshop)
    assert shop.orders_synced_at is None
    devshop.client.orders_create(shop.myshopify_domain, count=2)

    assert orders_reconcile(shop=shop) == 2


@pytest.mark.django_db(transaction=True)
def test_cron_job_reconciles_each_active_shop_through_redis(devshop, rq_worker):
    import django_rq

    # given an active shop with orders, and one that waits for the merchant to reauthorize
    shop = _installed_shop(devshop)
    created = devshop.client.orders_create(shop.myshopify_domain, count=3)
    waiting = _installed_shop(devshop)
    devshop.client.orders_create(waiting.myshopify_domain, count=2)
    Shop.objects.filter(pk=waiting.pk).update(needs_reauth=True)

    # when cron's job runs on a real worker
    django_rq.get_queue("maintenance").enqueue(orders_reconcile_all_job)
    rq_worker()

    # then the active shop's orders are mirrored and the waiting shop is left alone
    assert sorted(Order.objects.filter(shop=shop).values_list("shopify_id", flat=True)) == sorted(
        created
    )
    assert not Order.objects.filter(shop=waiting).exists()


def test_job_skips_a_shop_that_is_gone_or_inactive(db):
    shop = Shop.objects.create(myshopify_domain="inactive.myshopify.com", is_active=False)

    assert orders_reconcile_job(shop.pk) == 0
    assert orders_reconcile_job(999_999) == 0
