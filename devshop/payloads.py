"""Webhook payloads in Shopify's REST shape (snake_case, lowercase enums, money as strings,
ids as JSON integers), built from the devshop's models.

The shapes follow Shopify's documented samples (tests/fixtures/shopify/webhooks/*.json, API
2026-04). Ids are Python ints and ``json.dumps`` writes them exactly, so 64-bit ids survive.
Keys the devshop has no data for are present with Shopify's empty value (null, [] or "0.00"),
so a parser written against the samples finds every key it expects.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from devshop.models import (
    DevFulfillment,
    DevFulfillmentEvent,
    DevFulfillmentLineItem,
    DevLineItem,
    DevOrder,
    DevShop,
)

# Fulfillment statuses that count as shipped for quantities (GraphQL FulfillmentStatus).
ACTIVE_FULFILLMENT_STATUSES = ("SUCCESS", "OPEN", "PENDING")


def gid(type_name: str, numeric_id: int) -> str:
    return f"gid://shopify/{type_name}/{numeric_id}"


def rest_datetime(value: datetime | None) -> str | None:
    """Shopify's REST timestamps: ISO 8601, whole seconds, with the offset (UTC here)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def _amount(value: Decimal | int | float) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def money_set(amount: Decimal, order: DevOrder) -> dict[str, Any]:
    return {
        "shop_money": {"amount": _amount(amount), "currency_code": order.currency},
        "presentment_money": {
            "amount": _amount(Decimal(amount) * order.exchange_rate),
            "currency_code": order.presentment_currency,
        },
    }


def line_item_fulfilled_quantity(item: DevLineItem) -> int:
    total = DevFulfillmentLineItem.objects.filter(
        line_item=item, fulfillment__status__in=ACTIVE_FULFILLMENT_STATUSES
    ).aggregate(n=Sum("quantity"))["n"]
    return int(total or 0)


def _line_item(item: DevLineItem, order: DevOrder, quantity: int | None = None) -> dict[str, Any]:
    fulfilled = line_item_fulfilled_quantity(item)
    fulfillable = max(0, item.current_quantity - fulfilled)
    if fulfilled == 0:
        fulfillment_status = None
    elif fulfillable == 0:
        fulfillment_status = "fulfilled"
    else:
        fulfillment_status = "partial"
    name = f"{item.title} - {item.variant_title}" if item.variant_title else item.title
    return {
        "id": item.shopify_id,
        "admin_graphql_api_id": gid("LineItem", item.shopify_id),
        "attributed_staffs": [],
        "current_quantity": item.current_quantity,
        "fulfillable_quantity": 0 if order.cancelled_at else fulfillable,
        "fulfillment_service": "manual",
        "fulfillment_status": fulfillment_status,
        "gift_card": item.is_gift_card,
        "grams": item.variant.grams if item.variant else 0,
        "name": name,
        "price": _amount(item.price),
        "price_set": money_set(item.price, order),
        "product_exists": item.product_id is not None,
        "product_id": item.product.shopify_id if item.product else None,
        "properties": [],
        "quantity": item.quantity if quantity is None else quantity,
        "requires_shipping": item.requires_shipping,
        "sales_line_item_group_id": None,
        "sku": item.sku or None,
        "taxable": True,
        "title": item.title,
        "total_discount": _amount(item.total_discount),
        "total_discount_set": money_set(item.total_discount, order),
        "variant_id": item.variant.shopify_id if item.variant else None,
        "variant_inventory_management": "shopify" if item.variant else None,
        "variant_title": item.variant_title or None,
        "vendor": item.vendor or None,
        "tax_lines": [],
        "duties": [],
        "discount_allocations": [],
    }


def _address(address: dict[str, Any] | None) -> dict[str, Any] | None:
    if not address:
        return None
    return {"latitude": None, "longitude": None, **address}


def _rest_enum(value: str) -> str | None:
    return value.lower() if value else None


def order_fulfillment_status(order: DevOrder) -> str | None:
    # REST spells the order's fulfillment_status null / "partial" / "fulfilled".
    return {
        DevOrder.FulfillmentStatus.FULFILLED: "fulfilled",
        DevOrder.FulfillmentStatus.PARTIALLY_FULFILLED: "partial",
        DevOrder.FulfillmentStatus.RESTOCKED: "restocked",
    }.get(order.fulfillment_status)


def _order_money(
    order: DevOrder, *, line_items_total: Decimal, outstanding: Decimal
) -> dict[str, Any]:
    """The order's amounts, each as REST spells it and as a MoneyBag (shop and presentment)."""
    return {
        "current_shipping_price_set": money_set(order.total_shipping, order),
        "current_subtotal_price": _amount(order.subtotal_price),
        "current_subtotal_price_set": money_set(order.subtotal_price, order),
        "current_total_additional_fees_set": None,
        "current_total_discounts": _amount(order.total_discounts),
        "current_total_discounts_set": money_set(order.total_discounts, order),
        "current_total_duties_set": None,
        "current_total_price": _amount(order.total_price),
        "current_total_price_set": money_set(order.total_price, order),
        "current_total_tax": _amount(order.total_tax),
        "current_total_tax_set": money_set(order.total_tax, order),
        "original_total_additional_fees_set": None,
        "original_total_duties_set": None,
        "subtotal_price": _amount(order.subtotal_price),
        "subtotal_price_set": money_set(order.subtotal_price, order),
        "total_cash_rounding_payment_adjustment_set": money_set(Decimal("0"), order),
        "total_cash_rounding_refund_adjustment_set": money_set(Decimal("0"), order),
        "total_discounts": _amount(order.total_discounts),
        "total_discounts_set": money_set(order.total_discounts, order),
        "total_line_items_price": _amount(line_items_total),
        "total_line_items_price_set": money_set(line_items_total, order),
        "total_outstanding": _amount(outstanding),
        "total_price": _amount(order.total_price),
        "total_price_set": money_set(order.total_price, order),
        "total_shipping_price_set": money_set(order.total_shipping, order),
        "total_tax": _amount(order.total_tax),
        "total_tax_set": money_set(order.total_tax, order),
        "total_tip_received": "0.00",
    }


def _shipping_lines(order: DevOrder) -> list[dict[str, Any]]:
    return [
        {
            "id": order.shopify_id + 1,
            "carrier_identifier": None,
            "code": "Standard",
            "current_discounted_price_set": money_set(order.total_shipping, order),
            "discounted_price": _amount(order.total_shipping),
            "discounted_price_set": money_set(order.total_shipping, order),
            "is_removed": False,
            "phone": None,
            "price": _amount(order.total_shipping),
            "price_set": money_set(order.total_shipping, order),
            "requested_fulfillment_service_id": None,
            "source": "shopify",
            "title": "Standard",
            "tax_lines": [],
            "discount_allocations": [],
        }
    ]


def order_payload(order: DevOrder) -> dict[str, Any]:
    """The Order resource as orders/* webhooks carry it (orders__create.json)."""
    shop = order.shop
    items = list(
        DevLineItem.objects.filter(order=order).select_related("product", "variant").order_by("id")
    )
    fulfillments = list(
        DevFulfillment.objects.filter(order=order).select_related("order").order_by("id")
    )
    customer = order.customer
    line_items_total = sum((i.price * i.quantity for i in items), Decimal("0"))
    weight = sum(((i.variant.grams if i.variant else 0) * i.quantity for i in items), 0)
    financial = _rest_enum(order.financial_status)
    outstanding = (
        Decimal("0")
        if order.financial_status in {"PAID", "REFUNDED", "PARTIALLY_REFUNDED", "VOIDED"}
        else order.total_price
    )
    token = f"{order.shopify_id:x}"
    return {
        **_order_money(order, line_items_total=line_items_total, outstanding=outstanding),
        "id": order.shopify_id,
        "admin_graphql_api_id": gid("Order", order.shopify_id),
        "app_id": None,
        "browser_ip": None,
        "buyer_accepts_marketing": order.buyer_accepts_marketing,
        "cancel_reason": _rest_enum(order.cancel_reason),
        "cancelled_at": rest_datetime(order.cancelled_at),
        "cart_token": None,
        "checkout_token": None,
        "client_details": None,
        "closed_at": rest_datetime(order.closed_at),
        "confirmation_number": token[-9:].upper(),
        "confirmed": True,
        "contact_email": order.email or None,
        "created_at": rest_datetime(order.created_at),
        "currency": order.currency,
        "customer_locale": order.customer_locale or None,
        "device_id": None,
        "discount_codes": [],
        "duties_included": False,
        "email": order.email,
        "estimated_taxes": False,
        "financial_status": financial,
        "fulfillment_status": order_fulfillment_status(order),
        "landing_site": None,
        "landing_site_ref": None,
        "location_id": None,
        "merchant_business_entity_id": None,
        "merchant_of_record_app_id": None,
        "name": order.name,
        "note": order.note or None,
        "note_attributes": [],
        "number": order.number - 1000,
        "order_number": order.number,
        "order_status_url": (
            f"https://{shop.myshopify_domain}/{shop.shopify_id}/orders/{token}/authenticate"
            f"?key={token}"
        ),
        "payment_gateway_names": ["bogus"],
        "phone": order.phone or None,
        "po_number": None,
        "presentment_currency": order.presentment_currency,
        "processed_at": rest_datetime(order.processed_at),
        "reference": None,
        "referring_site": None,
        "source_identifier": None,
        "source_name": order.source_name,
        "source_url": None,
        "tags": ", ".join(order.tag_list),
        "tax_exempt": False,
        "tax_lines": [],
        "taxes_included": False,
        "test": order.test,
        "token": token,
        "total_weight": weight,
        "updated_at": rest_datetime(order.updated_at),
        "user_id": None,
        "billing_address": _address(order.billing_address),
        "customer": _customer(order) if customer else None,
        "discount_applications": [],
        "fulfillments": [fulfillment_payload(f) for f in fulfillments],
        "line_items": [_line_item(i, order) for i in items],
        "payment_terms": None,
        "refunds": [],
        "shipping_address": _address(order.shipping_address),
        "shipping_lines": _shipping_lines(order),
        "returns": [],
        "line_item_groups": [],
    }


def _customer(order: DevOrder) -> dict[str, Any]:
    customer = order.customer
    assert customer is not None
    return {
        "id": customer.shopify_id,
        "created_at": rest_datetime(customer.created_at),
        "updated_at": rest_datetime(customer.updated_at),
        "first_name": customer.first_name or None,
        "last_name": customer.last_name or None,
        "state": "disabled",
        "note": None,
        "verified_email": True,
        "multipass_identifier": None,
        "tax_exempt": False,
        "email": customer.email or None,
        "phone": customer.phone or None,
        "currency": order.currency,
        "tax_exemptions": [],
        "admin_graphql_api_id": gid("Customer", customer.shopify_id),
        "default_address": _address(order.shipping_address),
    }


def fulfillment_payload(fulfillment: DevFulfillment) -> dict[str, Any]:
    """The Fulfillment resource (fulfillments__create.json): tracking_number and tracking_url
    are the first of their lists, as REST spells them."""
    order = fulfillment.order
    lines = DevFulfillmentLineItem.objects.filter(fulfillment=fulfillment).select_related(
        "line_item__product", "line_item__variant"
    )
    numbers = list(fulfillment.tracking_numbers or [])
    urls = list(fulfillment.tracking_urls or [])
    return {
        "id": fulfillment.shopify_id,
        "order_id": order.shopify_id,
        "status": fulfillment.status.lower(),
        "created_at": rest_datetime(fulfillment.created_at),
        "service": "manual",
        "updated_at": rest_datetime(fulfillment.updated_at),
        "tracking_company": fulfillment.tracking_company or None,
        "shipment_status": fulfillment.shipment_status or None,
        "location_id": None,
        "origin_address": None,
        "email": order.email or None,
        "destination": _address(order.shipping_address),
        "line_items": [_line_item(fli.line_item, order, quantity=fli.quantity) for fli in lines],
        "tracking_number": numbers[0] if numbers else None,
        "tracking_numbers": numbers,
        "tracking_url": urls[0] if urls else None,
        "tracking_urls": urls,
        "receipt": {},
        "name": fulfillment.name,
        "admin_graphql_api_id": gid("Fulfillment", fulfillment.shopify_id),
    }


def fulfillment_event_payload(event: DevFulfillmentEvent) -> dict[str, Any]:
    """fulfillment_events/create (fulfillment_events__create.json): status lowercase."""
    fulfillment = event.fulfillment
    return {
        "id": event.shopify_id,
        "fulfillment_id": fulfillment.shopify_id,
        "status": event.status.lower(),
        "message": event.message or None,
        "happened_at": rest_datetime(event.happened_at),
        "city": event.city or None,
        "province": event.province or None,
        "country": event.country or None,
        "zip": event.zip or None,
        "address1": event.address1 or None,
        "latitude": event.latitude,
        "longitude": event.longitude,
        "shop_id": fulfillment.order.shop.shopify_id,
        "created_at": rest_datetime(event.created_at),
        "updated_at": rest_datetime(event.created_at),
        "estimated_delivery_at": rest_datetime(event.estimated_delivery_at),
        "order_id": fulfillment.order.shopify_id,
        "admin_graphql_api_id": gid("FulfillmentEvent", event.shopify_id),
    }


def shop_payload(shop: DevShop) -> dict[str, Any]:
    """The Shop resource, as app/uninstalled carries it (app__uninstalled.json)."""
    currency = shop.currency_code
    symbol = {"USD": "$", "CAD": "$", "AUD": "$", "EUR": "€", "GBP": "£"}.get(currency, "")
    return {
        "id": shop.shopify_id,
        "name": shop.name,
        "email": shop.email,
        "domain": shop.myshopify_domain,
        "province": None,
        "country": "US",
        "address1": None,
        "zip": None,
        "city": None,
        "source": None,
        "phone": None,
        "latitude": None,
        "longitude": None,
        "primary_locale": shop.primary_locale,
        "address2": None,
        "created_at": rest_datetime(shop.created_at),
        "updated_at": rest_datetime(shop.created_at),
        "country_code": "US",
        "country_name": "United States",
        "currency": currency,
        "customer_email": shop.email,
        "timezone": f"(GMT+00:00) {shop.iana_timezone}",
        "iana_timezone": shop.iana_timezone,
        "shop_owner": shop.name,
        "money_format": f"{symbol}{{{{amount}}}}",
        "money_with_currency_format": f"{symbol}{{{{amount}}}} {currency}",
        "weight_unit": "kg",
        "province_code": None,
        "taxes_included": False,
        "auto_configure_tax_inclusivity": None,
        "tax_shipping": None,
        "county_taxes": True,
        "plan_display_name": shop.plan.replace("_", " ").title(),
        "plan_name": shop.plan,
        "has_discounts": False,
        "has_gift_cards": False,
        "myshopify_domain": shop.myshopify_domain,
        "google_apps_domain": None,
        "google_apps_login_enabled": None,
        "money_in_emails_format": f"{symbol}{{{{amount}}}}",
        "money_with_currency_in_emails_format": f"{symbol}{{{{amount}}}} {currency}",
        "eligible_for_payments": True,
        "requires_extra_payments_agreement": False,
        "password_enabled": False,
        "has_storefront": True,
        "finances": True,
        "primary_location_id": shop.shopify_id + 1,
        "checkout_api_supported": True,
        "multi_location_enabled": True,
        "setup_required": False,
        "pre_launch_enabled": False,
        "enabled_presentment_currencies": [currency],
        "marketing_sms_consent_enabled_at_checkout": False,
        "transactional_sms_disabled": False,
    }
