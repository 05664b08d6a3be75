"""Reconciliation: repair missed webhooks by pulling recently updated orders through GraphQL.

    cursor = shop.orders_synced_at − overlap (first run: the last 60 days)
    orders(query: "updated_at:>='<cursor>'", sortKey: UPDATED_AT), page by page
      → each Order node → REST webhook shape (order_payload_from_graphql)
      → order_upsert(source="reconciliation"): the same service the webhooks use,
        which ignores a payload older than what is stored
    shop.orders_synced_at = the newest updatedAt seen

Idempotent: running it twice, or after the webhooks already delivered the same state, changes
nothing (order_upsert treats an equal updated_at as a no-op).
"""

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from shopapp.admin_api.client import AdminApiClient, admin_client_for_shop
from shopapp.models import Shop

logger = logging.getLogger(__name__)

# Requested cost (shopify.dev rate limits: object 1, connection 2 + first × item):
# line item 7 (itself, two MoneyBags of 2, product, variant); lineItems(first: 10) 72;
# order 88 (itself, five MoneyBags 11, customer 3 with its default email and phone,
# shippingAddress, lineItems); orders(first: 10) 882, under Shopify's 1,000-point limit.
ORDERS_PAGE_SIZE = 10
LINE_ITEMS_FIRST = 10
# Orders with more line items than that fetch the rest 50 at a time (cost 353).
LINE_ITEMS_PAGE_SIZE = 50
# Shopify's search index is updated asynchronously: an order saved a moment before the
# previous run may only now match ``updated_at``. Re-reading a short window is cheap
# (order_upsert ignores what it already has).
RECONCILE_OVERLAP = timedelta(minutes=2)
# First run for a shop: read_orders only reaches the last 60 days of orders (Shopify's
# access scopes: older ones need read_all_orders).
RECONCILE_INITIAL_LOOKBACK = timedelta(days=60)
# One run reads at most this many pages (1,000 orders); the cursor then resumes from the
# newest order seen, so a large backlog drains over several runs without one huge job.
RECONCILE_MAX_PAGES = 100

LINE_ITEM_FIELDS = """
fragment ReconcileLineItem on LineItem {
  id
  title
  variantTitle
  sku
  vendor
  quantity
  currentQuantity
  unfulfilledQuantity
  requiresShipping
  originalUnitPriceSet { shopMoney { amount currencyCode } }
  totalDiscountSet { shopMoney { amount currencyCode } }
  product { id }
  variant { id }
}
"""

ORDERS_QUERY = (
    """
query OrdersReconcile($first: Int!, $after: String, $query: String!, $lineItemsFirst: Int!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      legacyResourceId
      name
      email
      phone
      createdAt
      updatedAt
      processedAt
      cancelledAt
      cancelReason
      closedAt
      test
      tags
      customerLocale
      currencyCode
      presentmentCurrencyCode
      displayFinancialStatus
      displayFulfillmentStatus
      statusPageUrl
      totalPriceSet { shopMoney { amount currencyCode } }
      subtotalPriceSet { shopMoney { amount currencyCode } }
      totalDiscountsSet { shopMoney { amount currencyCode } }
      totalTaxSet { shopMoney { amount currencyCode } }
      totalShippingPriceSet {
        shopMoney { amount currencyCode }
        presentmentMoney { amount currencyCode }
      }
      customer {
        id firstName lastName
        defaultEmailAddress { emailAddress }
        defaultPhoneNumber { phoneNumber }
      }
      shippingAddress { city provinceCode countryCodeV2 zip }
      lineItems(first: $lineItemsFirst) {
        pageInfo { hasNextPage endCursor }
        nodes { ...ReconcileLineItem }
      }
    }
  }
}
"""
    + LINE_ITEM_FIELDS
)

LINE_ITEMS_QUERY = (
    """
query OrderLineItemsPage($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    lineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...ReconcileLineItem }
    }
  }
}
"""
    + LINE_ITEM_FIELDS
)

# OrderDisplayFulfillmentStatus → REST's order fulfillment_status (fulfilled, partial,
# restocked, or null for anything not shipped yet).
REST_FULFILLMENT_STATUS = {
    "FULFILLED": "fulfilled",
    "PARTIALLY_FULFILLED": "partial",
    "RESTOCKED": "restocked",
}
_GID_TAIL = re.compile(r"/(\d+)(?:\?.*)?$")
_DIGITS = re.compile(r"(\d+)")


def legacy_id(gid: str | None) -> int | None:
    """gid://shopify/Order/123 → 123."""
    if not gid:
        return None
    match = _GID_TAIL.search(gid)
    return int(match.group(1)) if match else None


def _amount(money_bag: dict | None) -> str | None:
    if not money_bag:
        return None
    return (money_bag.get("shopMoney") or {}).get("amount")


def _rest_money_set(money_bag: dict | None) -> dict[str, Any] | None:
    if not money_bag:
        return None
    rest = {}
    for graphql_key, rest_key in (
        ("shopMoney", "shop_money"),
        ("presentmentMoney", "presentment_money"),
    ):
        money = money_bag.get(graphql_key)
        if money:
            rest[rest_key] = {
                "amount": money.get("amount"),
                "currency_code": money.get("currencyCode"),
            }
    return rest


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


def _line_item_payload(node: dict[str, Any]) -> dict[str, Any]:
    current = int(node.get("currentQuantity") or 0)
    unfulfilled = int(node.get("unfulfilledQuantity") or 0)
    if current and unfulfilled == 0:
        line_status = "fulfilled"
    elif 0 < unfulfilled < current:
        line_status = "partial"
    else:
        line_status = None
    return {
        "id": legacy_id(node.get("id")),
        "admin_graphql_api_id": node.get("id"),
        "product_id": legacy_id((node.get("product") or {}).get("id")),
        "variant_id": legacy_id((node.get("variant") or {}).get("id")),
        "title": node.get("title"),
        "variant_title": node.get("variantTitle"),
        "sku": node.get("sku"),
        "vendor": node.get("vendor"),
        "quantity": int(node.get("quantity") or 0),
        "current_quantity": current,
        # REST's fulfillable_quantity is what is left to ship: GraphQL's unfulfilledQuantity.
        "fulfillable_quantity": unfulfilled,
        "fulfillment_status": line_status,
        "price": _amount(node.get("originalUnitPriceSet")),
        "total_discount": _amount(node.get("totalDiscountSet")) or "0.00",
        "requires_shipping": bool(node.get("requiresShipping")),
    }


def order_payload_from_graphql(node: dict[str, Any]) -> dict[str, Any]:
    """An Admin GraphQL ``Order`` node in the shape of Shopify's REST order webhook payload,
    so that reconciliation and webhooks share one upsert."""
    customer = node.get("customer")
    address = node.get("shippingAddress")
    name = node.get("name") or ""
    number = _DIGITS.search(name)
    line_items = node.get("lineItems") or {}
    return {
        "id": int(node["legacyResourceId"])
        if node.get("legacyResourceId")
        else legacy_id(node.get("id")),
        "admin_graphql_api_id": node.get("id"),
        "name": name,
        # REST's order_number is the number in the name (#1001 → 1001) with default settings.
        "order_number": int(number.group(1)) if number else None,
        "email": node.get("email"),
        "phone": node.get("phone"),
        "customer": {
            "id": legacy_id(customer.get("id")),
            "first_name": customer.get("firstName"),
            "last_name": customer.get("lastName"),
            # Customer.email and .phone are deprecated (2025-07): the default address and number.
            "email": (customer.get("defaultEmailAddress") or {}).get("emailAddress"),
            "phone": (customer.get("defaultPhoneNumber") or {}).get("phoneNumber"),
        }
        if customer
        else None,
        "customer_locale": node.get("customerLocale"),
        "currency": node.get("currencyCode"),
        "presentment_currency": node.get("presentmentCurrencyCode"),
        "total_price": _amount(node.get("totalPriceSet")),
        "subtotal_price": _amount(node.get("subtotalPriceSet")),
        "total_discounts": _amount(node.get("totalDiscountsSet")),
        "total_tax": _amount(node.get("totalTaxSet")),
        "total_shipping_price_set": _rest_money_set(node.get("totalShippingPriceSet")),
        "financial_status": _lower(node.get("displayFinancialStatus")),
        "fulfillment_status": REST_FULFILLMENT_STATUS.get(
            node.get("displayFulfillmentStatus") or ""
        ),
        "shipping_address": {
            "country_code": address.get("countryCodeV2"),
            "province_code": address.get("provinceCode"),
            "city": address.get("city"),
            "zip": address.get("zip"),
        }
        if address
        else None,
        "tags": ", ".join(node.get("tags") or []),
        "test": bool(node.get("test")),
        "order_status_url": node.get("statusPageUrl"),
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "processed_at": node.get("processedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "cancel_reason": _lower(node.get("cancelReason")),
        "closed_at": node.get("closedAt"),
        "line_items": [_line_item_payload(item) for item in line_items.get("nodes") or []],
    }


def _line_items_complete(*, client: AdminApiClient, node: dict[str, Any]) -> dict[str, Any]:
    """The node with every line item: order_upsert zeroes line items missing from a payload,
    so a truncated list must never reach it."""
    connection = node.get("lineItems") or {}
    items = list(connection.get("nodes") or [])
    page_info = connection.get("pageInfo") or {}
    while page_info.get("hasNextPage"):
        data = client.execute(
            LINE_ITEMS_QUERY,
            {"id": node["id"], "first": LINE_ITEMS_PAGE_SIZE, "after": page_info.get("endCursor")},
        )
        page = ((data.get("order") or {}).get("lineItems")) or {}
        items.extend(page.get("nodes") or [])
        page_info = page.get("pageInfo") or {}
    return {**node, "lineItems": {"nodes": items, "pageInfo": {"hasNextPage": False}}}


def _search_since(since: datetime) -> str:
    return f"updated_at:>='{since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}'"


def orders_reconcile(*, shop: Shop, client: AdminApiClient | None = None) -> int:
    """Pull the shop's orders updated since its cursor and upsert them; returns how many
    orders were read. Advances ``shop.orders_synced_at`` to the newest ``updatedAt`` seen."""
    # Imported here: the orders services import this package's models and, through the
    # webhook handler table, the jobs module that imports us.
    from shopapp.orders.services import order_upsert, parse_shopify_datetime

    client = client or admin_client_for_shop(shop)
    cursor = shop.orders_synced_at
    since = cursor - RECONCILE_OVERLAP if cursor else timezone.now() - RECONCILE_INITIAL_LOOKBACK
    search = _search_since(since)
    after: str | None = None
    newest: datetime | None = None
    read = 0
    for _page in range(RECONCILE_MAX_PAGES):
        data = client.execute(
            ORDERS_QUERY,
            {
                "first": ORDERS_PAGE_SIZE,
                "after": after,
                "query": search,
                "lineItemsFirst": LINE_ITEMS_FIRST,
            },
        )
        orders = data.get("orders") or {}
        for node in orders.get("nodes") or []:
            payload = order_payload_from_graphql(_line_items_complete(client=client, node=node))
            order_upsert(shop=shop, payload=payload, source="reconciliation")
            read += 1
            updated_at = parse_shopify_datetime(payload.get("updated_at"))
            if updated_at and (newest is None or updated_at > newest):
                newest = updated_at
        page_info = orders.get("pageInfo") or {}
        if not page_info.get("hasNextPage"):
            break
        after = page_info.get("endCursor")

    if newest is not None:
        # Only ever forward: a concurrent run that got further keeps its cursor.
        Shop.objects.filter(pk=shop.pk).filter(
            Q(orders_synced_at__isnull=True) | Q(orders_synced_at__lt=newest)
        ).update(orders_synced_at=newest)
        shop.refresh_from_db(fields=["orders_synced_at"])
    logger.info(
        "orders.reconcile.done",
        extra={
            "shop": shop.myshopify_domain,
            "orders_read": read,
            "since": since.isoformat(),
            "cursor": shop.orders_synced_at.isoformat() if shop.orders_synced_at else None,
        },
    )
    return read
