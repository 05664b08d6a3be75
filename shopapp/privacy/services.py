"""Uninstall and Shopify's mandatory compliance webhooks.

    app/uninstalled        -> shop_uninstall             deactivate, forget tokens, stop work
    customers/data_request -> customer_data_export_create what we hold about one customer
    customers/redact       -> customer_redact            erase that customer's personal data
    shop/redact            -> shop_redact                delete everything held for the shop

Shopify: act on compliance requests within 30 days; shop/redact comes 48 h after uninstall
and not at all if the app was reinstalled meanwhile
(https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance).
"""

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from shopapp.models import (
    CustomerDataExport,
    OAuthState,
    Order,
    OrderEvent,
    Shop,
    WebhookEvent,
)

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"
# What a redacted webhook payload is replaced with: the row stays (it is the audit of what
# was received), its personal data does not.
REDACTED_PAYLOAD = {"redacted": True}

# Keys whose values are a shopper's personal data wherever they appear in a timeline detail.
PII_KEYS = frozenset(
    {
        "email",
        "phone",
        "first_name",
        "last_name",
        "name",
        "customer_name",
        "customer_email",
        "customer_phone",
        "to",
        "recipient",
        "address",
        "address1",
        "address2",
        "city",
        "zip",
        "postal_code",
        "shipping_address",
        "billing_address",
        "latitude",
        "longitude",
        "ip",
        "browser_ip",
    }
)

# Other apps' redaction services, called with (shop=, customer_id=, email=, phone=, order_ids=)
# for customers/redact: tracking, returns and notifications add theirs here (explicit calls,
# no signals). Rows that only carry ``shop`` are deleted by shop/redact through the cascade.
CUSTOMER_REDACTORS: tuple[str, ...] = (
    "tracking.services.tracking_customer_redact",
    "returns.services.returns_customer_redact",
)


def shop_uninstall(*, shop: Shop, triggered_at: datetime | None = None) -> bool:
    """app/uninstalled: deactivate the shop, forget its tokens, stop its pending work.

    The token is dead the moment the merchant uninstalls. A delivery triggered before the
    shop's latest install (a late retry after a reinstall) changes nothing: returns False.
    """
    with transaction.atomic():
        shop = Shop.objects.select_for_update().get(pk=shop.pk)
        if triggered_at and shop.installed_at and shop.installed_at > triggered_at:
            logger.info("privacy.uninstall.stale", extra={"shop": shop.myshopify_domain})
            return False
        if shop.is_active or shop.uninstalled_at is None:
            shop.uninstalled_at = triggered_at or timezone.now()
        shop.is_active = False
        shop.access_token_encrypted = ""
        shop.access_token_expires_at = None
        shop.refresh_token_encrypted = ""
        shop.refresh_token_expires_at = None
        shop.save()
        from shopapp.webhooks.services import IgnoredReason, webhook_events_ignore_pending

        stopped = webhook_events_ignore_pending(shop=shop, reason=IgnoredReason.SHOP_UNINSTALLED)
    logger.info(
        "privacy.uninstall.done",
        extra={"shop": shop.myshopify_domain, "pending_stopped": stopped},
    )
    return True


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


_EXPORT_ORDER_FIELDS = (
    "shopify_id",
    "name",
    "email",
    "phone",
    "customer_id",
    "customer_first_name",
    "customer_last_name",
    "buyer_accepts_marketing",
    "locale",
    "currency",
    "total_price",
    "financial_status",
    "fulfillment_status",
    "shipping_country_code",
    "shipping_province_code",
    "shipping_city",
    "shipping_zip",
    "tags",
    "shopify_created_at",
    "cancelled_at",
    "redacted_at",
)
_EXPORT_LINE_ITEM_FIELDS = ("shopify_id", "title", "variant_title", "sku", "quantity", "price")


def _customer_orders(
    *, shop: Shop, customer_id: int | None, email: str, order_ids: list[int]
) -> Any:
    condition = Q(shopify_id__in=[i for i in order_ids if isinstance(i, int)])
    if customer_id is not None:
        condition |= Q(customer_id=customer_id)
    if email:
        condition |= Q(email__iexact=email)
    return Order.objects.filter(shop=shop).filter(condition)


def customer_data_export_create(
    *,
    shop: Shop,
    customer_id: int | None,
    email: str = "",
    data_request_id: int | None = None,
    orders_requested: list[int] | None = None,
) -> CustomerDataExport:
    """customers/data_request: a JSON export of everything the app holds about the customer,
    kept for the merchant to download in the admin (Shopify sends none of it to the shopper:
    the merchant does). One export per data request, however often it is delivered.
    """
    orders = _customer_orders(
        shop=shop, customer_id=customer_id, email=email, order_ids=orders_requested or []
    ).prefetch_related("line_items")
    exported = []
    for order in orders.order_by("shopify_created_at", "pk"):
        row = {name: _json_value(getattr(order, name)) for name in _EXPORT_ORDER_FIELDS}
        row["line_items"] = [
            {name: _json_value(getattr(item, name)) for name in _EXPORT_LINE_ITEM_FIELDS}
            for item in order.line_items.all()
        ]
        row["timeline"] = [
            {
                "kind": event.kind,
                "occurred_at": event.occurred_at.isoformat(),
                "source": event.source,
                "summary": event.summary,
                "detail": event.detail,
            }
            for event in OrderEvent.objects.filter(shop=shop, order=order).order_by("occurred_at")
        ]
        exported.append(row)
    data = {
        "shop": shop.myshopify_domain,
        "customer": {"id": customer_id, "email": email},
        "data_request_id": data_request_id,
        "generated_at": timezone.now().isoformat(),
        "orders": exported,
    }
    values = {"customer_id": customer_id, "customer_email": email, "data": data}
    if data_request_id is not None:
        export, _ = CustomerDataExport.objects.update_or_create(
            shop=shop, data_request_id=data_request_id, defaults=values
        )
    else:
        export = CustomerDataExport.objects.create(shop=shop, **values)
    logger.info(
        "privacy.data_request.exported",
        extra={"shop": shop.myshopify_domain, "export": export.pk, "orders": len(exported)},
    )
    return export


def _scrub(value: Any, needles: tuple[str, ...]) -> Any:
    """A copy of a JSON value with personal data replaced by REDACTED."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if key.lower() in PII_KEYS and value[key] not in (None, "")
            else _scrub(value[key], needles)
            for key in value
        }
    if isinstance(value, list):
        return [_scrub(item, needles) for item in value]
    if isinstance(value, str):
        return _scrub_text(value, needles)
    return value


def _scrub_text(text: str, needles: tuple[str, ...]) -> str:
    lowered = text.lower()
    for needle in needles:
        if needle and needle.lower() in lowered:
            return REDACTED
    return text


def customer_redact(
    *,
    shop: Shop,
    customer_id: int | None,
    email: str = "",
    phone: str = "",
    orders_to_redact: list[int] | None = None,
    event: WebhookEvent | None = None,
) -> int:
    """customers/redact: erase the customer's personal data in every table; orders stay.

    Orders (those listed and any with the customer's id or email) are anonymised, their
    timeline details scrubbed, the webhook payloads about them replaced with a marker, and the
    customer's data exports deleted. Returns how many orders were anonymised.
    """
    needles = tuple(n for n in (email, phone) if n)
    now = timezone.now()
    with transaction.atomic():
        orders = list(
            _customer_orders(
                shop=shop, customer_id=customer_id, email=email, order_ids=orders_to_redact or []
            )
            .select_for_update()
            .values_list("pk", "shopify_id")
        )
        order_pks = [pk for pk, _ in orders]
        order_ids = [sid for _, sid in orders] + [
            i for i in orders_to_redact or [] if isinstance(i, int)
        ]
        Order.objects.filter(shop=shop, pk__in=order_pks).update(
            email="",
            phone="",
            customer_first_name="",
            customer_last_name="",
            shipping_city="",
            shipping_zip="",
            redacted_at=now,
        )
        for timeline_event in OrderEvent.objects.filter(shop=shop, order_id__in=order_pks):
            detail = _scrub(timeline_event.detail, needles)
            summary = _scrub_text(timeline_event.summary, needles)
            if detail != timeline_event.detail or summary != timeline_event.summary:
                timeline_event.detail = detail
                timeline_event.summary = summary
                timeline_event.save(update_fields=["detail", "summary"])

        WebhookEvent.objects.filter(shop=shop, order_shopify_id__in=order_ids).update(
            payload=REDACTED_PAYLOAD
        )
        # The compliance deliveries about this customer hold their email and phone too,
        # this one included; a data request not yet processed keeps its payload.
        customer_events = WebhookEvent.objects.filter(
            shop=shop, topic__in=("customers/data_request", "customers/redact")
        ).exclude(status=WebhookEvent.Status.PENDING)
        if customer_id is not None:
            customer_events.filter(payload__customer__id=customer_id).update(
                payload={**REDACTED_PAYLOAD, "customer_id": customer_id}
            )
        if event is not None:
            WebhookEvent.objects.filter(pk=event.pk).update(
                payload={**REDACTED_PAYLOAD, "customer_id": customer_id}
            )

        exports = CustomerDataExport.objects.filter(shop=shop)
        export_match = Q(customer_id=customer_id) if customer_id is not None else Q(pk__in=[])
        if email:
            export_match |= Q(customer_email__iexact=email)
        exports.filter(export_match).delete()

        for path in CUSTOMER_REDACTORS:
            import_string(path)(
                shop=shop, customer_id=customer_id, email=email, phone=phone, order_ids=order_ids
            )
    logger.info(
        "privacy.customer_redact.done",
        extra={"shop": shop.myshopify_domain, "orders": len(order_pks)},
    )
    return len(order_pks)


def shop_redact(*, shop: Shop, event: WebhookEvent | None = None) -> bool:
    """shop/redact: delete everything the app holds for the shop, the Shop row included.

    Refused (returns False) while the shop is installed: Shopify does not send shop/redact
    after a reinstall, so a late delivery must not wipe a working install. The delivery that
    asked for it is detached from the shop and kept, as the record that it was done.
    """
    with transaction.atomic():
        shop = Shop.objects.select_for_update().get(pk=shop.pk)
        if shop.is_active:
            logger.warning("privacy.shop_redact.shop_active", extra={"shop": shop.myshopify_domain})
            return False
        domain = shop.myshopify_domain
        if event is not None:
            WebhookEvent.objects.filter(pk=event.pk).update(shop=None)
        # Deliveries stored before the shop was known carry only the domain.
        WebhookEvent.objects.filter(shop__isnull=True, shop_domain=domain).exclude(
            pk=event.pk if event is not None else None
        ).delete()
        OAuthState.objects.filter(shop_domain=domain).delete()
        # Every other row that belongs to the shop goes with it (on_delete=CASCADE).
        shop.delete()
    logger.info("privacy.shop_redact.done", extra={"shop": domain})
    return True
