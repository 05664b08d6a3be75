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

from shopapp.models import (
    CustomerDataExport,
    OAuthState,
    Order,
    OrderEvent,
    Shop,
    Task,
    WebhookEvent,
)
from shopapp.privacy.scrub import Needles, scrub_json, scrub_text
from shopapp.subscribers import (
    CUSTOMER_REDACTED,
    SHOP_REDACTED,
    SHOP_UNINSTALLED,
    CustomerRedacted,
    ShopRedacted,
    ShopUninstalled,
    subscribers_notify,
)

logger = logging.getLogger(__name__)

# Fields that can hold a shopper's personal data, and what erases them here (customer_redact);
# every other text field of the platform's tables is listed as not personal, with why. The
# privacy contract test (tests/test_privacy_contract.py) fails on a field in neither table.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "shopapp.Order": (
        "email",
        "phone",
        "customer_first_name",
        "customer_last_name",
        "shipping_city",
        "shipping_zip",
        # Shopify's order status page: a secret link to the shopper's order.
        "order_status_url",
    ),
    "shopapp.OrderEvent": ("summary", "detail"),
    "shopapp.WebhookEvent": ("payload", "last_error"),
    "shopapp.CustomerDataExport": ("customer_email", "data"),
    # An error text may quote what Shopify said about a shopper's data.
    "shopapp.Task": ("last_error",),
}
NOT_PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    # The merchant's store and its credentials: erased with the shop (shop/redact).
    "shopapp.Shop": (
        "myshopify_domain",
        "name",
        "email",
        "timezone",
        "currency",
        "primary_locale",
        "granted_scopes",
        "missing_scopes",
        "access_token_encrypted",
        "refresh_token_encrypted",
    ),
    # The merchant's look and their own support contact (erased with the shop by shop/redact).
    "shopapp.ShopBranding": (
        "accent_color",
        "text_color",
        "background_color",
        "font",
        "logo_content_type",
        "logo_digest",
        "support_email",
        "support_phone",
        "theme_accent_color",
        "theme_text_color",
        "theme_background_color",
        "theme_name",
        "footer_text",
    ),
    "shopapp.WebhookEvent": (
        # Only Shopify's X-Shopify-* headers are kept (topic, shop, ids, signature).
        "headers",
        "shop_domain",
        "webhook_id",
        "topic",
        "event_id",
        "api_version",
        "status",
        "ignored_reason",
    ),
    # Shopify's ids and statuses, the merchant's tags, the order's place at country level.
    "shopapp.Order": (
        "admin_graphql_api_id",
        "name",
        "locale",
        "currency",
        "presentment_currency",
        "financial_status",
        "fulfillment_status",
        "shipping_country_code",
        "shipping_province_code",
        # A shipping rate's name ("Express"): the shop's, not the shopper's.
        "shipping_method",
        "tags",
        "cancel_reason",
    ),
    # What was bought, as the catalogue names it.
    "shopapp.LineItem": (
        "admin_graphql_api_id",
        "title",
        "variant_title",
        "sku",
        "vendor",
        "fulfillment_status",
        # The product's picture on Shopify's CDN: the catalogue's, not the shopper's.
        "image_url",
    ),
    "shopapp.OrderEvent": ("kind", "source", "dedupe_key"),
    "shopapp.OAuthState": ("state", "shop_domain"),
    # Job paths, ids and queue names.
    # (claimed_by_job: the id of the RQ job holding the claim.)
    "shopapp.Task": (
        "job",
        "kwargs",
        "queue",
        "key",
        "status",
        "retry_intervals_s",
        "on_give_up",
        "claimed_by_job",
    ),
}

# What a redacted webhook payload is replaced with: the row stays (it is the audit of what
# was received), its personal data does not.
REDACTED_PAYLOAD = {"redacted": True}


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
        subscribers_notify(SHOP_UNINSTALLED, ShopUninstalled(shop=shop))
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


def _customer_needles(
    *, orders: list[dict[str, Any]], email: str, phone: str
) -> tuple[Needles, list[str], list[str], list[str]]:
    emails = [email, *(o["email"] for o in orders)]
    phones = [phone, *(o["phone"] for o in orders)]
    names = [n for o in orders for n in (o["customer_first_name"], o["customer_last_name"])]
    region = next((o["shipping_country_code"] for o in orders if o["shipping_country_code"]), None)
    needles = Needles.build(emails=emails, phones=phones, names=names, region=region)
    return needles, emails, phones, names


def _timeline_scrub(*, shop: Shop, order_pks: list[int], needles: Needles) -> None:
    for timeline_event in OrderEvent.objects.filter(shop=shop, order_id__in=order_pks):
        detail = scrub_json(timeline_event.detail, needles)
        summary = scrub_text(timeline_event.summary, needles)
        if detail != timeline_event.detail or summary != timeline_event.summary:
            timeline_event.detail = detail
            timeline_event.summary = summary
            timeline_event.save(update_fields=["detail", "summary"])


def _errors_scrub(*, shop: Shop, needles: Needles) -> None:
    """Error texts kept for staff may quote the shopper (an address Shopify refused)."""
    for model in (WebhookEvent, Task):
        for pk, text in (
            model.objects.filter(shop=shop).exclude(last_error="").values_list("pk", "last_error")
        ):
            scrubbed = scrub_text(text, needles)
            if scrubbed != text:
                model.objects.filter(pk=pk).update(last_error=scrubbed)


def _payloads_scrub(
    *, shop: Shop, customer_id: int | None, order_ids: list[int], event: WebhookEvent | None
) -> None:
    WebhookEvent.objects.filter(shop=shop, order_shopify_id__in=order_ids).update(
        payload=REDACTED_PAYLOAD
    )
    # The compliance deliveries about this customer hold their email and phone too, this one
    # included; a data request not yet processed keeps its payload.
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
    timeline scrubbed of the shopper's email, phone (in any spelling) and name, the webhook
    payloads about them replaced with a marker, the customer's data exports deleted, and every
    feature's redactor called (shopapp.subscribers.CUSTOMER_REDACTED). Returns how many orders
    were anonymised.
    """
    with transaction.atomic():
        orders = list(
            _customer_orders(
                shop=shop, customer_id=customer_id, email=email, order_ids=orders_to_redact or []
            )
            .select_for_update()
            .values(
                "pk",
                "shopify_id",
                "email",
                "phone",
                "customer_first_name",
                "customer_last_name",
                "shipping_country_code",
            )
        )
        needles, emails, phones, names = _customer_needles(orders=orders, email=email, phone=phone)
        order_pks = [o["pk"] for o in orders]
        order_ids = [o["shopify_id"] for o in orders] + [
            i for i in orders_to_redact or [] if isinstance(i, int)
        ]
        Order.objects.filter(shop=shop, pk__in=order_pks).update(
            email="",
            phone="",
            customer_first_name="",
            customer_last_name="",
            shipping_city="",
            shipping_zip="",
            order_status_url="",
            redacted_at=timezone.now(),
        )
        _timeline_scrub(shop=shop, order_pks=order_pks, needles=needles)
        _payloads_scrub(shop=shop, customer_id=customer_id, order_ids=order_ids, event=event)
        _errors_scrub(shop=shop, needles=needles)
        exports = CustomerDataExport.objects.filter(shop=shop)
        export_match = Q(customer_id=customer_id) if customer_id is not None else Q(pk__in=[])
        for address in {e.strip().lower() for e in emails if e}:
            export_match |= Q(customer_email__iexact=address)
        exports.filter(export_match).delete()
        subscribers_notify(
            CUSTOMER_REDACTED,
            CustomerRedacted(
                shop=shop,
                customer_id=customer_id,
                emails=tuple(sorted({e.strip().lower() for e in emails if e})),
                phones=tuple(sorted({p for p in phones if p})),
                names=tuple(sorted({n for n in names if n})),
                needles=needles,
                order_ids=tuple(order_pks),
                order_shopify_ids=tuple(sorted(set(order_ids))),
            ),
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
            pk=event.pk if event is not None else 0
        ).delete()
        OAuthState.objects.filter(shop_domain=domain).delete()
        # Files on disk do not cascade: the features that keep some remove them first.
        subscribers_notify(SHOP_REDACTED, ShopRedacted(shop=shop))
        # Every other row that belongs to the shop goes with it (on_delete=CASCADE).
        shop.delete()
    logger.info("privacy.shop_redact.done", extra={"shop": domain})
    return True
