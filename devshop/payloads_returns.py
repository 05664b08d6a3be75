"""The webhook payloads of returns, refunds and reverse logistics, in Shopify's REST shapes
(returns/*, refunds/create, reverse_deliveries/*, reverse_fulfillment_orders/dispose)."""

from decimal import Decimal
from typing import Any

from devshop.models import (
    DevOrder,
    DevReturn,
)

# Fulfillment statuses that count as shipped for quantities (GraphQL FulfillmentStatus).
from devshop.payloads import _amount, _line_item, gid, money_set, rest_datetime


def _order_ref(order: DevOrder) -> dict[str, Any]:
    return {"id": order.shopify_id, "admin_graphql_api_id": gid("Order", order.shopify_id)}


def return_payload(ret: DevReturn) -> dict[str, Any]:
    """returns/request and returns/approve (returns__request.json, returns__approve.json)."""
    lines = list(ret.return_line_items.select_related("fulfillment_line_item__line_item"))
    exchanges = list(
        ret.exchange_line_items.select_related("line_item__product", "line_item__variant")
    )
    order = ret.order
    return {
        "id": ret.shopify_id,
        "admin_graphql_api_id": gid("Return", ret.shopify_id),
        "status": ret.status.lower(),
        "order": _order_ref(order),
        "total_return_line_items": sum(line.quantity for line in lines),
        "name": ret.name,
        "return_line_items": [
            {
                "id": line.shopify_id,
                "admin_graphql_api_id": gid("ReturnLineItem", line.shopify_id),
                "fulfillment_line_item": {
                    "id": line.fulfillment_line_item.shopify_id,
                    "admin_graphql_api_id": gid(
                        "FulfillmentLineItem", line.fulfillment_line_item.shopify_id
                    ),
                    "line_item": {
                        "id": line.fulfillment_line_item.line_item.shopify_id,
                        "admin_graphql_api_id": gid(
                            "LineItem", line.fulfillment_line_item.line_item.shopify_id
                        ),
                    },
                },
                "quantity": line.quantity,
                "return_reason": line.return_reason.lower(),
                "return_reason_note": line.return_reason_note,
                "customer_note": line.customer_note or None,
            }
            for line in lines
        ],
        "return_shipping_fees": [
            {
                "id": ret.shopify_id + 1,
                "admin_graphql_api_id": gid("ReturnShippingFee", ret.shopify_id + 1),
                "price": money_set(ret.return_shipping_fee, order),
            }
        ]
        if ret.return_shipping_fee
        else [],
        "exchange_line_items": [
            {
                "id": exchange.shopify_id,
                "admin_graphql_api_id": gid("ExchangeLineItem", exchange.shopify_id),
                # The order line item exists once returnProcess books the exchange.
                "line_item": _line_item(exchange.line_item, order) if exchange.line_item else None,
            }
            for exchange in exchanges
        ],
        "total_exchange_line_items": sum(exchange.quantity for exchange in exchanges),
    }


def return_decline_payload(ret: DevReturn) -> dict[str, Any]:
    """returns/decline (returns__decline.json)."""
    return {
        "id": ret.shopify_id,
        "admin_graphql_api_id": gid("Return", ret.shopify_id),
        "status": ret.status.lower(),
        "order": _order_ref(ret.order),
        "decline": {"reason": ret.decline_reason.lower(), "note": ret.decline_note or None},
    }


def return_status_payload(ret: DevReturn) -> dict[str, Any]:
    """returns/cancel, returns/close, returns/reopen (returns__close.json)."""
    return {
        "id": ret.shopify_id,
        "admin_graphql_api_id": gid("Return", ret.shopify_id),
        "order_id": ret.order.shopify_id,
        "status": ret.status.lower(),
    }


def return_update_payload(
    ret: DevReturn,
    *,
    return_removals: list[tuple[int, int]],
    exchange_removals: list[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """returns/update (returns__update.json): what changed on the return's lines and fees.
    Removals are (line id, units removed); exchange line removals ride in the same shape."""
    payload: dict[str, Any] = {
        "admin_graphql_api_id": gid("Return", ret.shopify_id),
        "return_line_items": {
            "removals": [
                {"admin_graphql_api_id": gid("ReturnLineItem", line_id), "delta": delta}
                for line_id, delta in return_removals
            ]
        },
        "restocking_fees": {"updates": [], "removals": []},
        "return_shipping_fees": {"updates": [], "removals": []},
    }
    if exchange_removals:
        payload["exchange_line_items"] = {
            "removals": [
                {"admin_graphql_api_id": gid("ExchangeLineItem", line_id), "delta": delta}
                for line_id, delta in exchange_removals
            ]
        }
    return payload


def _ref(type_name: str, numeric_id: int) -> dict[str, Any]:
    return {"id": numeric_id, "admin_graphql_api_id": gid(type_name, numeric_id)}


def reverse_delivery_payload(delivery: Any) -> dict[str, Any]:
    """reverse_deliveries/attach_deliverable (reverse_deliveries__attach_deliverable.json)."""
    ret = delivery.reverse_fulfillment_order.return_obj
    return {
        "id": delivery.shopify_id,
        "admin_graphql_api_id": gid("ReverseDelivery", delivery.shopify_id),
        "return": _ref("Return", ret.shopify_id),
        "shipping_deliverable": {
            "tracking": {
                "carrier_name": delivery.carrier_name or None,
                "tracking_number": delivery.tracking_number or None,
                "tracking_url": delivery.tracking_url or None,
            },
            "label": {
                "public_file_url": delivery.label_public_url or None,
                "created_at": rest_datetime(delivery.label_created_at),
            },
        },
    }


def reverse_fulfillment_order_dispose_payload(rfo: Any, dispositions: list[Any]) -> dict[str, Any]:
    """reverse_fulfillment_orders/dispose (reverse_fulfillment_orders__dispose.json): the
    dispositions one action made on one reverse fulfillment order."""
    return {
        "id": rfo.shopify_id,
        "admin_graphql_api_id": gid("ReverseFulfillmentOrder", rfo.shopify_id),
        "dispositions": [
            {
                "reverse_fulfillment_order_line_item": _ref(
                    "ReverseFulfillmentOrderLineItem",
                    disposition.reverse_fulfillment_order_line_item.shopify_id,
                ),
                "reverse_delivery_line_item": _ref(
                    "ReverseDeliveryLineItem", disposition.reverse_delivery_line_item.shopify_id
                )
                if disposition.reverse_delivery_line_item
                else None,
                "type": disposition.type.lower(),
                "location": _ref("Location", disposition.location_id)
                if disposition.location_id
                else None,
                "quantity": disposition.quantity,
            }
            for disposition in dispositions
        ],
        "total_dispositions": len(dispositions),
    }


def refund_payload(
    *, refund_id: int, ret: DevReturn, amount: Decimal, processed: list[tuple[Any, int]], note: str
) -> dict[str, Any]:
    """refunds/create (refunds__create.json), for a refund issued by returnProcess."""
    order = ret.order
    now = rest_datetime(ret.updated_at)
    return {
        "id": refund_id,
        "order_id": order.shopify_id,
        "created_at": now,
        "note": note or None,
        "user_id": None,
        "processed_at": now,
        "duties": [],
        "total_duties_set": money_set(Decimal("0"), order),
        "return": {"id": ret.shopify_id, "admin_graphql_api_id": gid("Return", ret.shopify_id)},
        "restock": False,
        "refund_shipping_lines": [],
        "admin_graphql_api_id": gid("Refund", refund_id),
        "order_adjustments": [],
        "refund_line_items": [
            {
                "id": line.shopify_id + 3,
                "line_item_id": line.fulfillment_line_item.line_item.shopify_id,
                "location_id": None,
                "quantity": quantity,
                "restock_type": "return",
                "subtotal": _amount(line.fulfillment_line_item.line_item.price * quantity),
                "subtotal_set": money_set(
                    line.fulfillment_line_item.line_item.price * quantity, order
                ),
                "total_tax": "0.00",
                "total_tax_set": money_set(Decimal("0"), order),
                "line_item": _line_item(line.fulfillment_line_item.line_item, order),
            }
            for line, quantity in processed
        ],
        "transactions": [
            {
                "id": refund_id + 1,
                "order_id": order.shopify_id,
                "kind": "refund",
                "gateway": "bogus",
                "status": "success",
                "message": None,
                "created_at": now,
                "test": order.test,
                "authorization": None,
                "location_id": None,
                "user_id": None,
                "parent_id": order.shopify_id,
                "processed_at": now,
                "device_id": None,
                "error_code": None,
                "source_name": "web",
                "receipt": {},
                "amount": _amount(amount),
                "currency": order.currency,
                "payment_id": f"{order.name}.2",
                "admin_graphql_api_id": gid("OrderTransaction", refund_id + 1),
            }
        ]
        if amount > 0
        else [],
    }
