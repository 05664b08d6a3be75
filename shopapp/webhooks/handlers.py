"""TOPIC_HANDLERS: one table, Shopify topic → the service that handles its payload.

Every handler has the same shape and is idempotent (Shopify delivers at least once, in no
particular order):

    def handler(*, shop: Shop, event: WebhookEvent, payload: dict) -> None

A topic missing from the table is stored and marked ignored at intake.
"""

from collections.abc import Callable
from typing import Any

from django.utils import timezone

from shopapp.auth.services import shop_scopes_update
from shopapp.models import OrderEvent, Shop, WebhookEvent
from shopapp.orders.services import order_mark_deleted, order_record_edit, order_upsert
from shopapp.privacy.services import (
    customer_data_export_create,
    customer_redact,
    shop_redact,
    shop_uninstall,
)
from tracking.services import (
    shipment_sync_from_fulfillment,
    tracking_event_delete,
    tracking_event_record,
)

Handler = Callable[..., Any]


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def handle_order(*, shop: Shop, event: WebhookEvent, payload: dict) -> None:
    # orders/create, updated, paid, cancelled, fulfilled, partially_fulfilled all carry the
    # full order; what changed (and the cancellation trigger) is worked out by the upsert.
    order_upsert(shop=shop, payload=payload, source=OrderEvent.Source.WEBHOOK)


def handle_order_edited(*, shop: Shop, event: WebhookEvent, payload: dict) -> None:
    order_record_edit(
        shop=shop, order_edit=payload.get("order_edit") or {}, source=OrderEvent.Source.WEBHOOK
    )


def handle_order_delete(*, shop: Shop, event: WebhookEvent, payload: dict) -> None:
    # The payload is only {"id": …}.
    shopify_id = _int(payload.get("id"))
    if shopify_id is not None:
        order_mark_deleted(
            shop=shop,
            shopify_id=shopify_id,
            deleted_at=event.triggered_at or event.received_at or timezone.now(),
        )


def handle_app_uninstalled(*, shop: Shop, event: WebhookEvent, payload: dict) -> None:
    shop_uninstall(shop=shop, triggered_at=event.triggered_at)


def handle_customers_data_request(*, shop: Shop, event: WebhookEvent, payload: dict) -> None:
    customer = payload.get("customer") or {}
    customer_data_export_create(
        shop=shop,
        customer_id=_int(customer.get("id")),
        email=customer.get("email") or "",
        data_request_id=_int((payload.get("data_request") or {}).get("id")),
        orders_requested=[i for i in map(_int, payload.get("orders_requested") or []) if i],
    )


def handle_customers_redact(*, shop: Shop, event: WebhookEvent, payload: dict) -> None:
    customer = payload.get("customer") or {}
    customer_redact(
        shop=shop,
        customer_id=_int(customer.get("id")),
        email=customer.get("email") or "",
        phone=customer.get("phone") or "",
        orders_to_redact=[i for i in map(_int, payload.get("orders_to_redact") or []) if i],
        event=event,
    )


def handle_return(*, shop: Shop, event: WebhookEvent, payload: dict) -> None:
    # Every returns/* and reverse logistics topic: Shopify is the source of truth for the
    # return's status; out-of-order and repeated deliveries are handled in the service.
    from returns.services import return_webhook_apply

    return_webhook_apply(
        shop=shop, topic=event.topic, payload=payload, triggered_at=event.triggered_at
    )


def handle_shop_redact(*, shop: Shop, event: WebhookEvent, payload: dict) -> None:
    shop_redact(shop=shop, event=event)


def handle_fulfillment(*, shop: Shop, event: WebhookEvent, payload: dict) -> None:
    # fulfillments/create and fulfillments/update both carry the whole fulfillment. Staleness
    # is measured from when the delivery reached us, not from when a retry runs.
    shipment_sync_from_fulfillment(
        shop=shop, payload=payload, source=OrderEvent.Source.WEBHOOK, received_at=event.received_at
    )


def handle_fulfillment_event_create(*, shop: Shop, event: WebhookEvent, payload: dict) -> None:
    tracking_event_record(
        shop=shop, payload=payload, source=OrderEvent.Source.WEBHOOK, received_at=event.received_at
    )


def handle_fulfillment_event_delete(*, shop: Shop, event: WebhookEvent, payload: dict) -> None:
    tracking_event_delete(
        shop=shop, payload=payload, source=OrderEvent.Source.WEBHOOK, received_at=event.received_at
    )


def handle_theme(*, shop: Shop, event: WebhookEvent, payload: dict[str, Any]) -> None:
    """themes/publish, themes/update: the storefront's colours may have changed. Only the
    published theme shows on the storefront (themes/update fires for any theme edited)."""
    from shopapp.branding.theme import branding_theme_read_defer

    if str(payload.get("role") or "").lower() != "main":
        return
    branding_theme_read_defer(shop=shop)


TOPIC_HANDLERS: dict[str, Handler] = {
    "orders/create": handle_order,
    "orders/updated": handle_order,
    "orders/paid": handle_order,
    "orders/cancelled": handle_order,
    "orders/fulfilled": handle_order,
    "orders/partially_fulfilled": handle_order,
    "orders/edited": handle_order_edited,
    "orders/delete": handle_order_delete,
    "fulfillments/create": handle_fulfillment,
    "fulfillments/update": handle_fulfillment,
    "fulfillment_events/create": handle_fulfillment_event_create,
    "fulfillment_events/delete": handle_fulfillment_event_delete,
    "app/uninstalled": handle_app_uninstalled,
    "app/scopes_update": shop_scopes_update,
    "themes/publish": handle_theme,
    "themes/update": handle_theme,
    "customers/data_request": handle_customers_data_request,
    "customers/redact": handle_customers_redact,
    "shop/redact": handle_shop_redact,
    "returns/request": handle_return,
    "returns/approve": handle_return,
    "returns/decline": handle_return,
    "returns/update": handle_return,
    "returns/cancel": handle_return,
    "returns/close": handle_return,
    "returns/reopen": handle_return,
    "returns/process": handle_return,
    "reverse_deliveries/attach_deliverable": handle_return,
    "reverse_fulfillment_orders/dispose": handle_return,
}
