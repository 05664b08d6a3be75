"""Resolvers for exchanges and reverse logistics (Admin GraphQL API, 2026-10 shapes):

    returnCreate(returnInput: ReturnInput!)          OPEN return with return and exchange lines
    returnReopen(id:)                                 CLOSED → OPEN
    removeFromReturn(returnId, returnLineItems, exchangeLineItems)
    stagedUploadsCreate(input: [StagedUploadInput!]!) label upload targets on the store
    reverseDeliveryCreateWithShipping(reverseFulfillmentOrderId, reverseDeliveryLineItems,
        trackingInput, labelInput, notifyCustomer)
    reverseDeliveryShippingUpdate(reverseDeliveryId, trackingInput, labelInput, notifyCustomer)
    reverseFulfillmentOrderDispose(dispositionInputs)
    reverseFulfillmentOrder(id:), reverseDelivery(id:)     queries

Return, ExchangeLineItem, ReverseFulfillmentOrder(+LineItem), ReverseDelivery(+LineItem) and
ReverseFulfillmentOrderDisposition types. Unknown ids are NOT_FOUND user errors, as Shopify
answers them; bad input changes nothing and fires nothing.
"""

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Sum
from django.utils.dateparse import parse_datetime
from graphql import GraphQLError, GraphQLResolveInfo

from devshop.graphql.pagination import connection
from devshop.models import (
    DevExchangeLineItem,
    DevOrder,
    DevReturn,
    DevReverseDelivery,
    DevReverseDeliveryLineItem,
    DevReverseFulfillmentOrder,
    DevReverseFulfillmentOrderDisposition,
    DevReverseFulfillmentOrderLineItem,
    DevShop,
)
from devshop.returns import (
    Disposition,
    ReturnInputError,
    dev_return_create,
    dev_return_remove_items,
    dev_return_reopen,
    dev_reverse_delivery_create,
    dev_reverse_delivery_shipping_update,
    dev_reverse_fulfillment_order_dispose,
)
from devshop.staged_uploads import staged_upload_create

Payload = dict[str, Any]


def _gid(type_name: str, numeric_id: int) -> str:
    return f"gid://shopify/{type_name}/{numeric_id}"


def numeric_id(value: Any, expected_type: str) -> int | None:
    """The numeric id of a global id of ``expected_type``; None for anything else."""
    prefix = f"gid://shopify/{expected_type}/"
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    tail = value[len(prefix) :].split("?", 1)[0]
    return int(tail) if tail.isdigit() else None


def _shop(info: GraphQLResolveInfo) -> DevShop:
    return info.context["shop"]


def _errors(exc: ReturnInputError) -> list[dict[str, Any]]:
    return [{"field": e.field, "message": e.message, "code": e.code} for e in exc.errors]


def _error(key: str, field: list[str], message: str, code: str) -> Payload:
    return {key: None, "userErrors": [{"field": field, "message": message, "code": code}]}


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise GraphQLError(f"Invalid decimal {value!r}") from exc


def _return_for(info: GraphQLResolveInfo, value: str) -> DevReturn | None:
    numeric = numeric_id(value, "Return")
    if numeric is None:
        return None
    return DevReturn.objects.filter(shop=_shop(info), shopify_id=numeric).first()


def _tracking(value: dict | None) -> dict[str, Any] | None:
    if not value:
        return None
    return {"number": value.get("number") or "", "url": value.get("url") or ""}


def dispositions_from_input(rows: list[dict[str, Any]], root: list[str]) -> list[Disposition]:
    """ReverseFulfillmentOrderDisposeInput rows as Disposition (unknown ids become -1, which
    the service reports as NOT_FOUND at the row's path)."""
    found = []
    for index, row in enumerate(rows):
        location = row.get("locationId")
        location_id = numeric_id(location, "Location") if location else None
        found.append(
            Disposition(
                rfo_line_item_id=numeric_id(
                    row["reverseFulfillmentOrderLineItemId"], "ReverseFulfillmentOrderLineItem"
                )
                or -1,
                quantity=int(row["quantity"]),
                type=row["dispositionType"],
                location_id=(location_id if location_id is not None else -1) if location else None,
                path=(*root, str(index)),
            )
        )
    return found


# -- Queries ----------------------------------------------------------------------------------


def resolve_reverse_fulfillment_order(
    _: Any,
    info: GraphQLResolveInfo,
    id: str,  # noqa: A002
) -> DevReverseFulfillmentOrder | None:
    numeric = numeric_id(id, "ReverseFulfillmentOrder")
    if numeric is None:
        return None
    return DevReverseFulfillmentOrder.objects.filter(
        return_obj__shop=_shop(info), shopify_id=numeric
    ).first()


def resolve_reverse_delivery(
    _: Any,
    info: GraphQLResolveInfo,
    id: str,  # noqa: A002
) -> DevReverseDelivery | None:
    numeric = numeric_id(id, "ReverseDelivery")
    if numeric is None:
        return None
    return DevReverseDelivery.objects.filter(
        reverse_fulfillment_order__return_obj__shop=_shop(info), shopify_id=numeric
    ).first()


# -- Mutations --------------------------------------------------------------------------------


def resolve_return_create(
    _: Any,
    info: GraphQLResolveInfo,
    returnInput: dict,  # noqa: N803
) -> Payload:
    order_numeric = numeric_id(returnInput["orderId"], "Order")
    order = (
        DevOrder.objects.filter(shop=_shop(info), shopify_id=order_numeric).first()
        if order_numeric is not None
        else None
    )
    if order is None:
        return _error("return", ["returnInput", "orderId"], "Order does not exist.", "NOT_FOUND")
    lines = []
    for index, line in enumerate(returnInput["returnLineItems"]):
        reason_id = line.get("returnReasonDefinitionId")
        reason_numeric = numeric_id(reason_id, "ReturnReasonDefinition") if reason_id else None
        if reason_id and reason_numeric is None:
            return _error(
                "return",
                ["returnInput", "returnLineItems", str(index), "returnReasonDefinitionId"],
                "Return reason definition not found.",
                "NOT_FOUND",
            )
        lines.append(
            {
                "fulfillment_line_item_id": numeric_id(
                    line["fulfillmentLineItemId"], "FulfillmentLineItem"
                )
                or -1,
                "quantity": line["quantity"],
                "return_reason": line.get("returnReason"),
                "return_reason_definition_id": reason_numeric,
                "return_reason_note": line.get("returnReasonNote") or "",
                "restocking_fee_percentage": (line.get("restockingFee") or {}).get("percentage"),
            }
        )
    exchanges = []
    for row in returnInput.get("exchangeLineItems") or []:
        value = ((row.get("appliedDiscount") or {}).get("value")) or {}
        amount = (value.get("amount") or {}).get("amount")
        exchanges.append(
            {
                "variant_id": numeric_id(row.get("variantId"), "ProductVariant"),
                "quantity": row["quantity"],
                "discount_amount": _decimal(amount) if amount is not None else None,
                "discount_percentage": value.get("percentage"),
            }
        )
    fee = (returnInput.get("returnShippingFee") or {}).get("amount")
    requested_at = returnInput.get("requestedAt")
    try:
        ret = dev_return_create(
            order=order,
            lines=lines,
            exchange_lines=exchanges,
            return_shipping_fee=_decimal(fee["amount"]) if fee else None,
            requested_at=parse_datetime(str(requested_at)) if requested_at else None,
        )
    except ReturnInputError as exc:
        return {"return": None, "userErrors": _errors(exc)}
    return {"return": ret, "userErrors": []}


def resolve_return_reopen(_: Any, info: GraphQLResolveInfo, id: str) -> Payload:  # noqa: A002
    ret = _return_for(info, id)
    if ret is None:
        return _error("return", ["id"], "Return does not exist.", "NOT_FOUND")
    try:
        return {"return": dev_return_reopen(ret=ret), "userErrors": []}
    except ReturnInputError as exc:
        return {"return": None, "userErrors": _errors(exc)}


def resolve_remove_from_return(
    _: Any,
    info: GraphQLResolveInfo,
    returnId: str,  # noqa: N803
    returnLineItems: list | None = None,  # noqa: N803
    exchangeLineItems: list | None = None,  # noqa: N803
) -> Payload:
    ret = _return_for(info, returnId)
    if ret is None:
        return _error("return", ["returnId"], "Return does not exist.", "NOT_FOUND")
    return_lines = [
        (numeric_id(row["returnLineItemId"], "ReturnLineItem") or -1, int(row["quantity"]))
        for row in returnLineItems or []
    ]
    exchange_lines = [
        (numeric_id(row["exchangeLineItemId"], "ExchangeLineItem") or -1, int(row["quantity"]))
        for row in exchangeLineItems or []
    ]
    try:
        ret = dev_return_remove_items(
            ret=ret, return_lines=return_lines, exchange_lines=exchange_lines
        )
    except ReturnInputError as exc:
        return {"return": None, "userErrors": _errors(exc)}
    return {"return": ret, "userErrors": []}


def resolve_staged_uploads_create(_: Any, info: GraphQLResolveInfo, input: list) -> Payload:  # noqa: A002
    errors = []
    for index, target in enumerate(input):
        if not (target.get("filename") or "").strip():
            errors.append({"field": ["input", str(index), "filename"], "message": "is blank"})
        if not (target.get("mimeType") or "").strip():
            errors.append({"field": ["input", str(index), "mimeType"], "message": "is blank"})
    if errors:
        return {"stagedTargets": None, "userErrors": errors}
    targets = [staged_upload_create(shop=_shop(info), target=target) for target in input]
    return {"stagedTargets": targets, "userErrors": []}


def resolve_reverse_delivery_create(
    _: Any,
    info: GraphQLResolveInfo,
    reverseFulfillmentOrderId: str,  # noqa: N803
    reverseDeliveryLineItems: list,  # noqa: N803
    trackingInput: dict | None = None,  # noqa: N803
    labelInput: dict | None = None,  # noqa: N803
    notifyCustomer: bool = True,  # noqa: N803
) -> Payload:
    rfo = resolve_reverse_fulfillment_order(None, info, reverseFulfillmentOrderId)
    if rfo is None:
        return _error(
            "reverseDelivery",
            ["reverseFulfillmentOrderId"],
            "Reverse fulfillment order does not exist.",
            "NOT_FOUND",
        )
    lines = [
        (
            numeric_id(row["reverseFulfillmentOrderLineItemId"], "ReverseFulfillmentOrderLineItem")
            or -1,
            int(row["quantity"]),
        )
        for row in reverseDeliveryLineItems
    ]
    try:
        delivery = dev_reverse_delivery_create(
            rfo=rfo,
            lines=lines,
            tracking=_tracking(trackingInput),
            label_file_url=(labelInput or {}).get("fileUrl"),
            notify_customer=notifyCustomer,
        )
    except ReturnInputError as exc:
        return {"reverseDelivery": None, "userErrors": _errors(exc)}
    return {"reverseDelivery": delivery, "userErrors": []}


def resolve_reverse_delivery_shipping_update(
    _: Any,
    info: GraphQLResolveInfo,
    reverseDeliveryId: str,  # noqa: N803
    trackingInput: dict | None = None,  # noqa: N803
    labelInput: dict | None = None,  # noqa: N803
    notifyCustomer: bool = True,  # noqa: N803
) -> Payload:
    delivery = resolve_reverse_delivery(None, info, reverseDeliveryId)
    if delivery is None:
        return _error(
            "reverseDelivery",
            ["reverseDeliveryId"],
            "Reverse delivery does not exist.",
            "NOT_FOUND",
        )
    try:
        delivery = dev_reverse_delivery_shipping_update(
            delivery=delivery,
            tracking=_tracking(trackingInput),
            label_file_url=(labelInput or {}).get("fileUrl"),
            notify_customer=notifyCustomer,
        )
    except ReturnInputError as exc:
        return {"reverseDelivery": None, "userErrors": _errors(exc)}
    return {"reverseDelivery": delivery, "userErrors": []}


def resolve_reverse_fulfillment_order_dispose(
    _: Any,
    info: GraphQLResolveInfo,
    dispositionInputs: list,  # noqa: N803
) -> Payload:
    try:
        lines = dev_reverse_fulfillment_order_dispose(
            shop=_shop(info),
            dispositions=dispositions_from_input(dispositionInputs, ["dispositionInputs"]),
        )
    except ReturnInputError as exc:
        return {"reverseFulfillmentOrderLineItems": None, "userErrors": _errors(exc)}
    return {"reverseFulfillmentOrderLineItems": lines, "userErrors": []}


# -- Types ------------------------------------------------------------------------------------


def _location(shop: DevShop, location_id: int | None) -> dict[str, Any] | None:
    if location_id is None:
        return None
    return {
        "id": _gid("Location", location_id),
        "name": "Main warehouse",
        "address": {"address1": "1 Warehouse Way", "city": None, "countryCode": "US"},
    }


def _exchange_lines(ret: DevReturn, _: GraphQLResolveInfo, **args: Any) -> dict:
    qs = DevExchangeLineItem.objects.filter(return_obj=ret).select_related("variant__product")
    return connection(qs, sort_field="id", **args)


def _rfos(ret: DevReturn, _: GraphQLResolveInfo, **args: Any) -> dict:
    return connection(
        DevReverseFulfillmentOrder.objects.filter(return_obj=ret), sort_field="id", **args
    )


def _rfo_lines(rfo: DevReverseFulfillmentOrder, _: GraphQLResolveInfo, **args: Any) -> dict:
    qs = DevReverseFulfillmentOrderLineItem.objects.filter(
        reverse_fulfillment_order=rfo
    ).select_related("return_line_item__fulfillment_line_item")
    return connection(qs, sort_field="id", **args)


def _rfo_deliveries(rfo: DevReverseFulfillmentOrder, _: GraphQLResolveInfo, **args: Any) -> dict:
    return connection(
        DevReverseDelivery.objects.filter(reverse_fulfillment_order=rfo), sort_field="id", **args
    )


def _delivery_lines(delivery: DevReverseDelivery, _: GraphQLResolveInfo, **args: Any) -> dict:
    qs = DevReverseDeliveryLineItem.objects.filter(reverse_delivery=delivery).select_related(
        "reverse_fulfillment_order_line_item"
    )
    return connection(qs, sort_field="id", **args)


def _deliverable(delivery: DevReverseDelivery, _: GraphQLResolveInfo) -> dict[str, Any] | None:
    has_tracking = bool(delivery.tracking_number or delivery.tracking_url)
    has_label = bool(delivery.label_public_url)
    if not has_tracking and not has_label:
        return None
    return {
        "__typename": "ReverseDeliveryShippingDeliverable",
        "tracking": {
            "carrierName": delivery.carrier_name or None,
            "number": delivery.tracking_number or None,
            "url": delivery.tracking_url or None,
        }
        if has_tracking
        else None,
        "label": {
            "createdAt": delivery.label_created_at,
            "publicFileUrl": delivery.label_public_url or None,
            "updatedAt": delivery.label_updated_at,
        }
        if has_label
        else None,
    }


def _outstanding(order: DevOrder, _: GraphQLResolveInfo) -> dict[str, Any]:
    from devshop.graphql.resolvers import money_bag

    if order.financial_status in {"AUTHORIZED", "PENDING", "EXPIRED"}:
        due = order.total_price
    else:
        due = DevReturn.objects.filter(order=order).aggregate(d=Sum("exchange_amount_due"))[
            "d"
        ] or Decimal("0")
    return money_bag(due, order)


def _disposition_location(d: DevReverseFulfillmentOrderDisposition, _: Any) -> Any:
    return _location(None, d.location_id)  # type: ignore[arg-type]


EXCHANGE_RESOLVERS: dict[str, dict[str, Any]] = {
    "QueryRoot": {
        "reverseFulfillmentOrder": resolve_reverse_fulfillment_order,
        "reverseDelivery": resolve_reverse_delivery,
    },
    "Mutation": {
        "removeFromReturn": resolve_remove_from_return,
        "returnCreate": resolve_return_create,
        "returnReopen": resolve_return_reopen,
        "reverseDeliveryCreateWithShipping": resolve_reverse_delivery_create,
        "reverseDeliveryShippingUpdate": resolve_reverse_delivery_shipping_update,
        "reverseFulfillmentOrderDispose": resolve_reverse_fulfillment_order_dispose,
        "stagedUploadsCreate": resolve_staged_uploads_create,
    },
    "Order": {"totalOutstandingSet": _outstanding},
    "Return": {
        "exchangeLineItems": _exchange_lines,
        "reverseFulfillmentOrders": _rfos,
    },
    "ExchangeLineItem": {
        "id": lambda ex, _: _gid("ExchangeLineItem", ex.shopify_id),
        "unprocessedQuantity": lambda ex, _: ex.quantity - ex.processed_quantity,
        "processableQuantity": lambda ex, _: ex.quantity - ex.processed_quantity,
        "variantId": lambda ex, _: (
            _gid("ProductVariant", ex.variant.shopify_id) if ex.variant else None
        ),
        "productId": lambda ex, _: (
            _gid("Product", ex.variant.product.shopify_id) if ex.variant else None
        ),
        "title": lambda ex, _: ex.title or None,
        "lineItems": lambda ex, _: [ex.line_item] if ex.line_item else [],
        "lineItem": lambda ex, _: ex.line_item,
    },
    "ReverseFulfillmentOrder": {
        "id": lambda rfo, _: _gid("ReverseFulfillmentOrder", rfo.shopify_id),
        "order": lambda rfo, _: rfo.return_obj.order,
        "lineItems": _rfo_lines,
        "reverseDeliveries": _rfo_deliveries,
    },
    "ReverseFulfillmentOrderLineItem": {
        "id": lambda line, _: _gid("ReverseFulfillmentOrderLineItem", line.shopify_id),
        "dispositions": lambda line, _: list(line.dispositions.all()),
        "fulfillmentLineItem": lambda line, _: line.return_line_item.fulfillment_line_item,
    },
    "ReverseFulfillmentOrderDisposition": {
        "id": lambda d, _: _gid("ReverseFulfillmentOrderDisposition", d.shopify_id),
        "location": _disposition_location,
    },
    "ReverseDelivery": {
        "id": lambda d, _: _gid("ReverseDelivery", d.shopify_id),
        "deliverable": _deliverable,
        "reverseDeliveryLineItems": _delivery_lines,
    },
    "ReverseDeliveryLineItem": {
        "id": lambda line, _: _gid("ReverseDeliveryLineItem", line.shopify_id),
        "dispositions": lambda line, _: list(line.dispositions.all()),
    },
}
