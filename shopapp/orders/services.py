"""The order mirror and its timeline: the only code that writes Order, LineItem and OrderEvent.

    orders/* webhook ─┐
                      ├─> order_upsert ──> Order + LineItems ──> order_event_record (timeline)
    reconciliation ───┘                                      └─> ORDER_CHANGED subscribers

Shopify delivers webhooks at least once and in no particular order
(https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates), and reconciliation pulls the
same orders again through GraphQL. So every write here is idempotent: a payload whose
``updated_at`` is older than the stored one changes nothing, and each timeline fact carries a
``dedupe_key`` so that the webhook, its retries and reconciliation record it once.
"""

import logging
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from shopapp.models import LineItem, LineItemReplacement, Order, OrderEvent, Shop
from shopapp.orders.images import order_line_images_defer
from shopapp.payloads import payload_int as _int_or_none
from shopapp.subscribers import ORDER_CHANGED, OrderChanged, subscribers_notify

logger = logging.getLogger(__name__)

# Order fields that hold the shopper's personal data: never rewritten once an order has been
# redacted (customers/redact), even if reconciliation pulls the order again.
ORDER_PII_FIELDS = (
    "email",
    "phone",
    "customer_first_name",
    "customer_last_name",
    "shipping_city",
    "shipping_zip",
)

# REST financial_status / fulfillment_status values with their own timeline kind; any other
# value (new API versions add some) is still recorded, under a generic kind.
_FINANCIAL_KINDS = {
    "paid": ("order.paid", "Order paid"),
    "refunded": ("order.refunded", "Order refunded"),
    "partially_refunded": ("order.partially_refunded", "Order partially refunded"),
    "voided": ("order.voided", "Payment voided"),
}
_FULFILLMENT_KINDS = {
    "fulfilled": ("order.fulfilled", "Order fulfilled"),
    "partial": ("order.partially_fulfilled", "Order partially fulfilled"),
    "restocked": ("order.restocked", "Order restocked"),
}

# Fields compared to decide whether an update is a real change worth a timeline line.
_TRACKED_FIELDS = (
    "name",
    "email",
    "phone",
    "currency",
    "total_price",
    "subtotal_price",
    "total_discounts",
    "total_tax",
    "total_shipping",
    "shipping_country_code",
    "shipping_province_code",
    "shipping_city",
    "shipping_zip",
    "tags",
    "closed_at",
)


def parse_shopify_datetime(value: Any) -> datetime | None:
    """Shopify timestamps are ISO 8601 with an offset (REST) or ``Z`` (GraphQL)."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _decimal(value: Any) -> Decimal:
    if value in (None, ""):
        return Decimal("0")
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return Decimal("0")


def _str(value: Any, max_length: int | None = None) -> str:
    text = "" if value is None else str(value)
    return text[:max_length] if max_length else text


def _money_amount(money_set: Any) -> Any:
    # REST *_set objects: {"shop_money": {"amount": "10.00", ...}, "presentment_money": ...}.
    if isinstance(money_set, dict):
        shop_money = money_set.get("shop_money") or {}
        return shop_money.get("amount")
    return None


def _shipping_method(payload: dict) -> str:
    """The first shipping line still on the order (an edit can remove one: ``is_removed``)."""
    for line in payload.get("shipping_lines") or []:
        if isinstance(line, dict) and not line.get("is_removed"):
            return _str(line.get("title") or line.get("code"), 255)
    return ""


def _order_fields(payload: dict) -> dict[str, Any]:
    """Map Shopify's REST order payload onto Order's columns."""
    customer = payload.get("customer") or {}
    shipping = payload.get("shipping_address") or {}
    total_shipping = _money_amount(payload.get("total_shipping_price_set"))
    if total_shipping is None:
        total_shipping = sum(
            (_decimal(line.get("price")) for line in payload.get("shipping_lines") or []),
            Decimal("0"),
        )
    return {
        "admin_graphql_api_id": _str(payload.get("admin_graphql_api_id"), 255),
        "name": _str(payload.get("name"), 64),
        "order_number": _int_or_none(payload.get("order_number")),
        "email": _str(payload.get("email") or payload.get("contact_email"), 255),
        "phone": _str(payload.get("phone") or customer.get("phone"), 64),
        "customer_id": _int_or_none(customer.get("id")),
        "customer_first_name": _str(customer.get("first_name"), 255),
        "customer_last_name": _str(customer.get("last_name"), 255),
        "buyer_accepts_marketing": bool(payload.get("buyer_accepts_marketing")),
        "locale": _str(payload.get("customer_locale"), 16),
        "currency": _str(payload.get("currency"), 8),
        "presentment_currency": _str(payload.get("presentment_currency"), 8),
        "total_price": _decimal(payload.get("total_price")),
        "subtotal_price": _decimal(payload.get("subtotal_price")),
        "total_discounts": _decimal(payload.get("total_discounts")),
        "total_tax": _decimal(payload.get("total_tax")),
        "total_shipping": _decimal(total_shipping),
        # Stored as Shopify spells them; null (REST's "unfulfilled") becomes "".
        "financial_status": _str(payload.get("financial_status"), 64),
        "fulfillment_status": _str(payload.get("fulfillment_status"), 64),
        "shipping_country_code": _str(shipping.get("country_code"), 8),
        "shipping_province_code": _str(shipping.get("province_code"), 16),
        "shipping_city": _str(shipping.get("city"), 255),
        "shipping_zip": _str(shipping.get("zip"), 32),
        "shipping_method": _shipping_method(payload),
        "tags": _str(payload.get("tags")),
        "is_test": bool(payload.get("test")),
        "order_status_url": _str(payload.get("order_status_url"), 1024),
        "shopify_created_at": parse_shopify_datetime(payload.get("created_at")),
        "shopify_updated_at": parse_shopify_datetime(payload.get("updated_at")),
        "processed_at": parse_shopify_datetime(payload.get("processed_at")),
        "cancelled_at": parse_shopify_datetime(payload.get("cancelled_at")),
        "cancel_reason": _str(payload.get("cancel_reason"), 64),
        "closed_at": parse_shopify_datetime(payload.get("closed_at")),
    }


def _line_item_fields(item: dict) -> dict[str, Any]:
    quantity = _int_or_none(item.get("quantity")) or 0
    current = _int_or_none(item.get("current_quantity"))
    return {
        "admin_graphql_api_id": _str(item.get("admin_graphql_api_id"), 255),
        "product_id": _int_or_none(item.get("product_id")),
        "variant_id": _int_or_none(item.get("variant_id")),
        "title": _str(item.get("title") or item.get("name"), 512),
        "variant_title": _str(item.get("variant_title"), 512),
        "sku": _str(item.get("sku"), 255),
        "vendor": _str(item.get("vendor"), 255),
        "quantity": max(quantity, 0),
        "current_quantity": max(quantity if current is None else current, 0),
        "fulfillable_quantity": max(_int_or_none(item.get("fulfillable_quantity")) or 0, 0),
        "fulfillment_status": _str(item.get("fulfillment_status"), 64),
        "price": _decimal(item.get("price")),
        "total_discount": _decimal(item.get("total_discount")),
        "requires_shipping": bool(item.get("requires_shipping", True)),
        "is_gift_card": bool(item.get("gift_card")),
    }


_LINE_ITEM_UPDATE_FIELDS = tuple(_line_item_fields({}).keys())


def _line_items_sync(*, shop: Shop, order: Order, items: list[dict]) -> int:
    """Upsert the payload's line items; ones gone from the payload are kept at zero quantity.
    Returns how many lines are new.

    Kept rather than deleted: returns and shipments may point at a line item that an order
    edit later removed, and the timeline should still name it. ``image_url`` is not the
    payload's (it has none): shopapp.orders.images reads it, and nothing here overwrites it.
    """
    existing = {li.shopify_id: li for li in LineItem.objects.filter(order=order)}
    seen: set[int] = set()
    to_create: list[LineItem] = []
    to_update: list[LineItem] = []
    for item in items:
        shopify_id = _int_or_none(item.get("id"))
        if shopify_id is None or shopify_id in seen:
            continue
        seen.add(shopify_id)
        fields = _line_item_fields(item)
        current = existing.get(shopify_id)
        if current is None:
            to_create.append(LineItem(shop=shop, order=order, shopify_id=shopify_id, **fields))
            continue
        if any(getattr(current, name) != value for name, value in fields.items()):
            for name, value in fields.items():
                setattr(current, name, value)
            to_update.append(current)
    for shopify_id, current in existing.items():
        if shopify_id not in seen and (current.current_quantity or current.fulfillable_quantity):
            current.current_quantity = 0
            current.fulfillable_quantity = 0
            to_update.append(current)
    if to_create:
        LineItem.objects.bulk_create(to_create)
    if to_update:
        LineItem.objects.bulk_update(to_update, _LINE_ITEM_UPDATE_FIELDS)
    return len(to_create)


def order_event_record(
    *,
    shop: Shop,
    order: Order,
    kind: str,
    occurred_at: datetime,
    source: str,
    summary: str,
    detail: dict | None = None,
    dedupe_key: str | None = None,
) -> OrderEvent | None:
    """Add one line to an order's timeline: the only way OrderEvent rows are written.

    Idempotent on ``(shop, dedupe_key)``: returns the new event, or None when an event with
    this key was already recorded (a retried webhook, reconciliation after the webhook). A
    caller that must act once per fact (e.g. trigger a notification) acts only on a new event.
    Events without a dedupe_key are always written.
    """
    if order.shop_id != shop.pk:
        raise ValueError("order does not belong to shop")
    values = {
        "order": order,
        "kind": kind[:64],
        "occurred_at": occurred_at,
        "source": source,
        "summary": summary[:255],
        "detail": detail or {},
    }
    if dedupe_key is None:
        return OrderEvent.objects.create(shop=shop, **values)
    dedupe_key = dedupe_key[:255]
    try:
        # The unique constraint decides, not a prior read: two workers recording the same
        # fact at once still leave one row.
        with transaction.atomic():
            return OrderEvent.objects.create(shop=shop, dedupe_key=dedupe_key, **values)
    except IntegrityError:
        if OrderEvent.objects.filter(shop=shop, dedupe_key=dedupe_key).exists():
            return None
        raise


def _status_events(
    *, shop: Shop, order: Order, before: dict[str, Any] | None, source: str
) -> list[OrderEvent]:
    """Timeline lines for what changed between ``before`` (None: new order) and ``order``."""
    recorded: list[OrderEvent] = []
    sid = order.shopify_id
    when = order.shopify_updated_at or timezone.now()

    def record(kind: str, occurred_at: datetime, summary: str, detail: dict, key: str) -> None:
        event = order_event_record(
            shop=shop,
            order=order,
            kind=kind,
            occurred_at=occurred_at,
            source=source,
            summary=summary,
            detail=detail,
            dedupe_key=key,
        )
        if event is not None:
            recorded.append(event)

    if before is None:
        record(
            "order.created",
            order.shopify_created_at or when,
            f"Order {order.name or sid} placed",
            {"financial_status": order.financial_status, "total_price": str(order.total_price)},
            f"order:{sid}:created",
        )
    old_financial = before["financial_status"] if before else ""
    if order.financial_status and order.financial_status != old_financial:
        kind, summary = _FINANCIAL_KINDS.get(
            order.financial_status,
            ("order.financial_status", f"Payment status: {order.financial_status}"),
        )
        # A new order is only worth a status line when its status is a notable one: every
        # order starts "pending" or "authorized", that is already said by "placed".
        if before is not None or order.financial_status in _FINANCIAL_KINDS:
            record(
                kind,
                when,
                summary,
                {"from": old_financial, "to": order.financial_status},
                f"order:{sid}:financial:{order.financial_status}",
            )
    old_fulfillment = before["fulfillment_status"] if before else ""
    if order.fulfillment_status and order.fulfillment_status != old_fulfillment:
        kind, summary = _FULFILLMENT_KINDS.get(
            order.fulfillment_status,
            ("order.fulfillment_status", f"Fulfillment status: {order.fulfillment_status}"),
        )
        record(
            kind,
            when,
            summary,
            {"from": old_fulfillment, "to": order.fulfillment_status},
            f"order:{sid}:fulfillment:{order.fulfillment_status}",
        )
    was_cancelled = before["cancelled_at"] if before else None
    if order.cancelled_at and not was_cancelled:
        cancelled = order_event_record(
            shop=shop,
            order=order,
            kind="order.cancelled",
            occurred_at=order.cancelled_at,
            source=source,
            summary="Order cancelled"
            + (f" ({order.cancel_reason})" if order.cancel_reason else ""),
            detail={"reason": order.cancel_reason},
            dedupe_key=f"order:{sid}:cancelled:{order.cancelled_at.isoformat()}",
        )
        if cancelled is not None:
            recorded.append(cancelled)
    return recorded


def _order_changed(
    *, shop: Shop, order: Order, is_new: bool, recorded: list[OrderEvent], source: str
) -> None:
    # DESIGN: the features hear of the change in this transaction, once per fact (a
    # cancellation counts once: its timeline line is deduplicated).
    subscribers_notify(
        ORDER_CHANGED,
        OrderChanged(
            shop=shop,
            order=order,
            is_new=is_new,
            is_cancelled_now=any(e.kind == "order.cancelled" for e in recorded),
            source=source,
        ),
    )


def _line_images_read_later(*, shop: Shop, order: Order, new_lines: int) -> None:
    # The webhooks carry no pictures: lines the mirror has not seen before are read from the
    # Admin API in the background (a cancelled order is shown to nobody new).
    if new_lines and order.cancelled_at is None:
        order_line_images_defer(shop=shop, order=order)


def order_upsert(*, shop: Shop, payload: dict, source: str) -> Order | None:
    """Create or update the mirror of one order from Shopify's REST-shaped order payload.

    Used by the orders/* webhooks and by reconciliation (GraphQL converted to this shape).
    Returns the stored order, or None when the payload carries no id or is stale (its
    ``updated_at`` is older than the stored one: nothing changed). An equal ``updated_at`` is
    an idempotent no-op. Each real change writes one timeline event.
    """
    shopify_id = _int_or_none(payload.get("id"))
    if shopify_id is None:
        logger.warning("orders.upsert.no_id", extra={"shop": shop.myshopify_domain})
        return None
    fields = _order_fields(payload)
    incoming_updated_at = fields["shopify_updated_at"]

    with transaction.atomic():
        order = Order.objects.select_for_update().filter(shop=shop, shopify_id=shopify_id).first()
        if order is None:
            try:
                with transaction.atomic():
                    order = Order.objects.create(shop=shop, shopify_id=shopify_id, **fields)
            except IntegrityError:
                # Another worker created it between our read and our insert: update it instead.
                order = Order.objects.select_for_update().get(shop=shop, shopify_id=shopify_id)
            else:
                created = _line_items_sync(
                    shop=shop, order=order, items=payload.get("line_items") or []
                )
                _line_images_read_later(shop=shop, order=order, new_lines=created)
                recorded = _status_events(shop=shop, order=order, before=None, source=source)
                _order_changed(
                    shop=shop, order=order, is_new=True, recorded=recorded, source=source
                )
                logger.info(
                    "orders.upsert.created",
                    extra={"shop": shop.myshopify_domain, "order_id": shopify_id, "source": source},
                )
                return order

        stored_updated_at = order.shopify_updated_at
        if stored_updated_at and incoming_updated_at:
            if incoming_updated_at < stored_updated_at:
                logger.info(
                    "orders.upsert.stale",
                    extra={"shop": shop.myshopify_domain, "order_id": shopify_id, "source": source},
                )
                return None
            if incoming_updated_at == stored_updated_at:
                return order

        if "shipping_lines" not in payload:
            # Reconciliation's GraphQL read does not ask for it: keep what a webhook said.
            fields.pop("shipping_method", None)
        if order.redacted_at is not None:
            # customers/redact erased these; a later pull must not bring them back.
            for name in ORDER_PII_FIELDS:
                fields.pop(name, None)
        before = {
            name: getattr(order, name)
            for name in (*_TRACKED_FIELDS, "financial_status", "fulfillment_status", "cancelled_at")
        }
        for name, value in fields.items():
            setattr(order, name, value)
        order.save()
        created = _line_items_sync(shop=shop, order=order, items=payload.get("line_items") or [])
        _line_images_read_later(shop=shop, order=order, new_lines=created)
        recorded = _status_events(shop=shop, order=order, before=before, source=source)
        changed = [name for name in _TRACKED_FIELDS if before[name] != getattr(order, name)]
        if changed and not recorded:
            when = order.shopify_updated_at or timezone.now()
            order_event_record(
                shop=shop,
                order=order,
                kind="order.updated",
                occurred_at=when,
                source=source,
                summary="Order updated",
                # Field names only: values may be the shopper's personal data.
                detail={"fields": changed},
                dedupe_key=f"order:{shopify_id}:updated:{when.isoformat()}",
            )
        _order_changed(shop=shop, order=order, is_new=False, recorded=recorded, source=source)
    return order


def order_mark_deleted(*, shop: Shop, shopify_id: int, deleted_at: datetime) -> Order | None:
    """orders/delete: keep the order (its timeline stays readable) but hide it from lists."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(shop=shop, shopify_id=shopify_id).first()
        if order is None:
            return None
        if order.deleted_at is None:
            order.deleted_at = deleted_at
            order.save(update_fields=["deleted_at", "updated_at"])
        order_event_record(
            shop=shop,
            order=order,
            kind="order.deleted",
            occurred_at=order.deleted_at,
            source=OrderEvent.Source.WEBHOOK,
            summary="Order deleted in Shopify",
            dedupe_key=f"order:{shopify_id}:deleted",
        )
    return order


def order_record_edit(*, shop: Shop, order_edit: dict, source: str) -> Order | None:
    """orders/edited: put the edit on the timeline and make reconciliation pull the order.

    The payload is an ``order_edit`` (line items added and removed), not the order: the new
    totals and line items come from the order itself. Shopify also sends orders/updated after
    an edit, but webhooks can be lost, so the shop's sync cursor is moved back to the edit
    time, which makes the next reconciliation run pull this order again.
    """
    order_id = _int_or_none(order_edit.get("order_id"))
    if order_id is None:
        return None
    committed_at = (
        parse_shopify_datetime(order_edit.get("committed_at"))
        or parse_shopify_datetime(order_edit.get("created_at"))
        or timezone.now()
    )
    Shop.objects.filter(pk=shop.pk, orders_synced_at__gt=committed_at).update(
        orders_synced_at=committed_at
    )
    order = Order.objects.filter(shop=shop, shopify_id=order_id).first()
    if order is None:
        logger.info(
            "orders.edit.unknown_order", extra={"shop": shop.myshopify_domain, "order_id": order_id}
        )
        return None
    line_items = order_edit.get("line_items") or {}
    additions = [_int_or_none(i.get("id")) for i in line_items.get("additions") or []]
    removals = [_int_or_none(i.get("id")) for i in line_items.get("removals") or []]
    order_event_record(
        shop=shop,
        order=order,
        kind="order.edited",
        occurred_at=committed_at,
        source=source,
        summary=f"Order edited: {len(additions)} item(s) added, {len(removals)} removed",
        detail={
            "order_edit_id": _int_or_none(order_edit.get("id")),
            "added_line_item_ids": additions,
            "removed_line_item_ids": removals,
        },
        dedupe_key=f"order:{order_id}:edit:{order_edit.get('id')}",
    )
    return order


def line_item_replacement_record(
    *, shop: Shop, order: Order, line_item_shopify_id: int, replaces_line_item_shopify_id: int
) -> bool:
    """Record that an order line replaces another (an exchange); idempotent. Returns whether
    it was new."""
    if order.shop_id != shop.pk:
        raise ValueError("order does not belong to shop")
    try:
        with transaction.atomic():
            LineItemReplacement.objects.create(
                shop=shop,
                order=order,
                line_item_shopify_id=line_item_shopify_id,
                replaces_line_item_shopify_id=replaces_line_item_shopify_id,
            )
    except IntegrityError:
        return False
    return True
