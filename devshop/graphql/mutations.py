"""Resolvers for the Admin API's mutations, the returns queries and the types they return.

Mutations call the devshop's services (devshop.returns, devshop.simulation,
devshop.webhooks), which change state and fire the webhooks. Bad input answers
``userErrors`` (``UserError``, or ``ReturnUserError`` with a ``ReturnErrorCode`` for
return mutations) and changes nothing, as Shopify does; an unknown id is a ``NOT_FOUND``
user error, not a GraphQL error.
"""

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.db.models import Sum
from django.utils.dateparse import parse_datetime
from graphql import GraphQLError, GraphQLResolveInfo

from devshop.graphql.pagination import connection
from devshop.graphql.returns_exchanges import EXCHANGE_RESOLVERS, dispositions_from_input
from devshop.models import (
    DevFulfillment,
    DevFulfillmentLineItem,
    DevOrder,
    DevReturn,
    DevReturnLineItem,
    DevShop,
    DevWebhookSubscription,
)
from devshop.returns import (
    REASON_DEFINITIONS,
    REASONS_BY_HANDLE,
    ReturnInputError,
    Settlement,
    dev_return_approve,
    dev_return_cancel,
    dev_return_close,
    dev_return_decline,
    dev_return_process,
    dev_return_request,
    fulfillment_line_item_returnable_quantity,
    returnable_fulfillments,
)
from devshop.simulation import SimulationError, dev_fulfillment_event_create
from devshop.webhooks import dev_webhook_subscription_create


def _gid(type_name: str, numeric_id: int) -> str:
    return f"gid://shopify/{type_name}/{numeric_id}"


def _numeric(value: str, expected_type: str) -> int | None:
    """The numeric id of a global id of ``expected_type``; None for anything else."""
    prefix = f"gid://shopify/{expected_type}/"
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    tail = value[len(prefix) :].split("?", 1)[0]
    return int(tail) if tail.isdigit() else None


def _shop(info: GraphQLResolveInfo) -> DevShop:
    return info.context["shop"]


def _user_errors(errors: list[Any], *, with_code: bool = True) -> list[dict[str, Any]]:
    shaped = []
    for error in errors:
        row = {"field": error.field, "message": error.message}
        if with_code:
            row["code"] = error.code
        shaped.append(row)
    return shaped


def _return_error(field: list[str], message: str, code: str) -> dict[str, Any]:
    return {"return": None, "userErrors": [{"field": field, "message": message, "code": code}]}


def _return_or_error(info: GraphQLResolveInfo, value: str, field: list[str]) -> Any:
    numeric = _numeric(value, "Return")
    ret = (
        DevReturn.objects.filter(shop=_shop(info), shopify_id=numeric).first()
        if numeric is not None
        else None
    )
    if ret is None:
        return _return_error(field, "Return does not exist.", "NOT_FOUND")
    return ret


def _return_action(info: GraphQLResolveInfo, value: str, field: list[str], action: Any) -> dict:
    found = _return_or_error(info, value, field)
    if isinstance(found, dict):
        return found
    try:
        return {"return": action(found), "userErrors": []}
    except ReturnInputError as exc:
        return {"return": None, "userErrors": _user_errors(exc.errors)}


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise GraphQLError(f"Invalid decimal {value!r}") from exc


def _datetime(value: Any) -> Any:
    if value is None:
        return None
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise GraphQLError(f"Invalid DateTime {value!r}")
    return parsed


# -- Queries ----------------------------------------------------------------------------------


def resolve_returnable_fulfillments(
    _: Any,
    info: GraphQLResolveInfo,
    orderId: str,  # noqa: N803 - GraphQL argument names
    **args: Any,
) -> dict[str, Any]:
    numeric = _numeric(orderId, "Order")
    order = (
        DevOrder.objects.filter(shop=_shop(info), shopify_id=numeric).first()
        if numeric is not None
        else None
    )
    if order is None:
        raise GraphQLError("Order does not exist.", extensions={"code": "NOT_FOUND"})
    ids = [row["fulfillment"].pk for row in returnable_fulfillments(order=order)]
    return connection(DevFulfillment.objects.filter(pk__in=ids), sort_field="id", **args)


def resolve_return(_: Any, info: GraphQLResolveInfo, id: str) -> DevReturn | None:  # noqa: A002
    numeric = _numeric(id, "Return")
    if numeric is None:
        return None
    return DevReturn.objects.filter(shop=_shop(info), shopify_id=numeric).first()


def resolve_reason_definitions(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict:
    first = args.get("first") or len(REASON_DEFINITIONS)
    nodes = REASON_DEFINITIONS[:first]
    return {
        "edges": [{"cursor": str(r.id), "node": r} for r in nodes],
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": len(REASON_DEFINITIONS) > first,
            "hasPreviousPage": False,
            "startCursor": str(nodes[0].id) if nodes else None,
            "endCursor": str(nodes[-1].id) if nodes else None,
        },
    }


def _returnable_lines(f: DevFulfillment, _: GraphQLResolveInfo, **args: Any) -> dict:
    ids = [
        fli.pk
        for fli in f.fulfillment_line_items.select_related("fulfillment")
        if fulfillment_line_item_returnable_quantity(fli) > 0
    ]
    return connection(
        DevFulfillmentLineItem.objects.filter(pk__in=ids).select_related("line_item"),
        sort_field="id",
        **args,
    )


def _order_returns(order: DevOrder, _: GraphQLResolveInfo, **args: Any) -> dict:
    return connection(DevReturn.objects.filter(order=order), sort_field="id", **args)


def _order_return_status(order: DevOrder, _: GraphQLResolveInfo) -> str:
    statuses = set(DevReturn.objects.filter(order=order).values_list("status", flat=True))
    if DevReturn.Status.REQUESTED in statuses:
        return "RETURN_REQUESTED"
    if DevReturn.Status.OPEN in statuses:
        return "IN_PROGRESS"
    if DevReturn.Status.CLOSED in statuses:
        return "RETURNED"
    return "NO_RETURN"


def _order_transactions(order: DevOrder, _: GraphQLResolveInfo, first: int | None = None) -> list:
    # One synthetic payment per order: the parent a returnProcess refund points at.
    from devshop.graphql.resolvers import money_bag

    kind = "AUTHORIZATION" if order.financial_status == "AUTHORIZED" else "SALE"
    return [
        {
            "id": _gid("OrderTransaction", order.shopify_id),
            "kind": kind,
            "status": "SUCCESS",
            "gateway": "bogus",
            "amountSet": money_bag(order.total_price, order),
            "processedAt": order.processed_at,
            "test": order.test,
        }
    ][: first if first is not None else None]


def _return_line_items(ret: DevReturn, _: GraphQLResolveInfo, **args: Any) -> dict:
    qs = DevReturnLineItem.objects.filter(return_obj=ret).select_related("fulfillment_line_item")
    return connection(qs, sort_field="id", **args)


def _reason_definition(line: DevReturnLineItem, _: GraphQLResolveInfo) -> Any:
    return REASONS_BY_HANDLE.get(line.return_reason_handle)


# -- Mutations --------------------------------------------------------------------------------


def resolve_return_request(_: Any, info: GraphQLResolveInfo, input: dict) -> dict:  # noqa: A002
    numeric = _numeric(input["orderId"], "Order")
    order = (
        DevOrder.objects.filter(shop=_shop(info), shopify_id=numeric).first()
        if numeric is not None
        else None
    )
    if order is None:
        return _return_error(["input", "orderId"], "Order does not exist.", "NOT_FOUND")
    lines = []
    for index, line in enumerate(input["returnLineItems"]):
        fli_id = _numeric(line["fulfillmentLineItemId"], "FulfillmentLineItem")
        reason_id = line.get("returnReasonDefinitionId")
        reason_numeric = _numeric(reason_id, "ReturnReasonDefinition") if reason_id else None
        if reason_id and reason_numeric is None:
            return _return_error(
                ["input", "returnLineItems", str(index), "returnReasonDefinitionId"],
                "Return reason definition not found.",
                "NOT_FOUND",
            )
        lines.append(
            {
                "fulfillment_line_item_id": fli_id if fli_id is not None else -1,
                "quantity": line["quantity"],
                "return_reason": line.get("returnReason"),
                "return_reason_definition_id": reason_numeric,
                "customer_note": line.get("customerNote"),
                "restocking_fee_percentage": (line.get("restockingFee") or {}).get("percentage"),
            }
        )
    fee = (input.get("returnShippingFee") or {}).get("amount")
    try:
        ret = dev_return_request(
            order=order,
            lines=lines,
            return_shipping_fee=_decimal(fee["amount"]) if fee else None,
        )
    except ReturnInputError as exc:
        return {"return": None, "userErrors": _user_errors(exc.errors)}
    return {"return": ret, "userErrors": []}


def resolve_return_approve(_: Any, info: GraphQLResolveInfo, input: dict) -> dict:  # noqa: A002
    return _return_action(
        info,
        input["id"],
        ["input", "id"],
        lambda ret: dev_return_approve(ret=ret, notify_customer=bool(input.get("notifyCustomer"))),
    )


def resolve_return_decline(_: Any, info: GraphQLResolveInfo, input: dict) -> dict:  # noqa: A002
    return _return_action(
        info,
        input["id"],
        ["input", "id"],
        lambda ret: dev_return_decline(
            ret=ret,
            reason=input["declineReason"],
            note=input.get("declineNote") or "",
            notify_customer=bool(input.get("notifyCustomer")),
        ),
    )


def resolve_return_cancel(_: Any, info: GraphQLResolveInfo, id: str, **_args: Any) -> dict:  # noqa: A002
    return _return_action(info, id, ["id"], lambda ret: dev_return_cancel(ret=ret))


def resolve_return_close(_: Any, info: GraphQLResolveInfo, id: str) -> dict:  # noqa: A002
    return _return_action(info, id, ["id"], lambda ret: dev_return_close(ret=ret))


def resolve_return_process(_: Any, info: GraphQLResolveInfo, input: dict) -> dict:  # noqa: A002
    found = _return_or_error(info, input["returnId"], ["input", "returnId"])
    if isinstance(found, dict):
        return found
    lines = []
    dispositions = []
    for index, line in enumerate(input.get("returnLineItems") or []):
        numeric = _numeric(line["id"], "ReturnLineItem")
        if numeric is None:
            return _return_error(
                ["input", "returnLineItems", str(index), "id"],
                "Return line item not found.",
                "NOT_FOUND",
            )
        lines.append((numeric, int(line["quantity"])))
        dispositions += dispositions_from_input(
            line.get("dispositions") or [],
            ["input", "returnLineItems", str(index), "dispositions"],
        )
    exchange_lines = []
    for index, line in enumerate(input.get("exchangeLineItems") or []):
        numeric = _numeric(line["id"], "ExchangeLineItem")
        if numeric is None:
            return _return_error(
                ["input", "exchangeLineItems", str(index), "id"],
                "Exchange line item not found.",
                "NOT_FOUND",
            )
        exchange_lines.append((numeric, int(line["quantity"])))
    refund = Decimal("0")
    credit = Decimal("0")
    issue = (input.get("financialTransfer") or {}).get("issueRefund")
    if issue:
        for index, tx in enumerate(issue.get("orderTransactions") or []):
            if _numeric(tx["parentId"], "OrderTransaction") != found.order.shopify_id:
                return _return_error(
                    [
                        "input",
                        "financialTransfer",
                        "issueRefund",
                        "orderTransactions",
                        str(index),
                        "parentId",
                    ],
                    "Transaction does not exist.",
                    "NOT_FOUND",
                )
            refund += _decimal(tx["transactionAmount"]["amount"])
        for method in issue.get("refundMethods") or []:
            store_credit = method.get("storeCreditRefund")
            if store_credit:
                credit += _decimal(store_credit["amount"]["amount"])
        # ReturnProcessRefundInput.allowOverRefunding: the order's total refunded, store
        # credit included, across all its returns, may not pass what was paid for it. An
        # exchange booked but not paid for yet (buyer-owes, held) adds nothing paid.
        settled = DevReturn.objects.filter(order=found.order).aggregate(
            r=Sum("refunded_amount"), c=Sum("store_credit_amount"), d=Sum("exchange_amount_due")
        )
        paid = found.order.total_price - (settled["d"] or Decimal("0"))
        already = (settled["r"] or Decimal("0")) + (settled["c"] or Decimal("0"))
        if not issue.get("allowOverRefunding") and refund + credit + already > paid:
            return _return_error(
                ["input", "financialTransfer", "issueRefund"],
                "Refund amount exceeds the amount paid for the order.",
                "INVALID",
            )
    try:
        # Neither return nor exchange lines: everything unprocessed, as before.
        given = bool(lines or exchange_lines)
        ret = dev_return_process(
            ret=found,
            lines=lines if given else None,
            refund=Settlement(refund=refund, store_credit=credit, note=input.get("note") or ""),
            notify_customer=bool(input.get("notifyCustomer")),
            exchange_lines=exchange_lines if given else None,
            dispositions=dispositions,
        )
    except ReturnInputError as exc:
        return {"return": None, "userErrors": _user_errors(exc.errors)}
    return {"return": ret, "userErrors": []}


def resolve_fulfillment_event_create(
    _: Any,
    info: GraphQLResolveInfo,
    fulfillmentEvent: dict,  # noqa: N803
) -> dict:
    numeric = _numeric(fulfillmentEvent["fulfillmentId"], "Fulfillment")
    fulfillment = (
        DevFulfillment.objects.filter(order__shop=_shop(info), shopify_id=numeric).first()
        if numeric is not None
        else None
    )
    if fulfillment is None:
        return {
            "fulfillmentEvent": None,
            "userErrors": [
                {
                    "field": ["fulfillmentEvent", "fulfillmentId"],
                    "message": "Fulfillment does not exist.",
                }
            ],
        }
    place_keys = ("address1", "city", "province", "country", "zip", "latitude", "longitude")
    place = {key: fulfillmentEvent.get(key) for key in place_keys}
    try:
        event = dev_fulfillment_event_create(
            fulfillment=fulfillment,
            status=fulfillmentEvent["status"],
            happened_at=_datetime(fulfillmentEvent.get("happenedAt")),
            message=fulfillmentEvent.get("message") or "",
            place=place,
            estimated_delivery_at=_datetime(fulfillmentEvent.get("estimatedDeliveryAt")),
        )
    except SimulationError as exc:
        return {
            "fulfillmentEvent": None,
            "userErrors": [{"field": ["fulfillmentEvent", "fulfillmentId"], "message": str(exc)}],
        }
    return {"fulfillmentEvent": event, "userErrors": []}


def topic_rest(enum_value: str) -> str:
    """ORDERS_PARTIALLY_FULFILLED → orders/partially_fulfilled (the resource part is the
    longest known prefix: FULFILLMENT_EVENTS, REVERSE_FULFILLMENT_ORDERS…)."""
    resources = [
        "REVERSE_FULFILLMENT_ORDERS",
        "REVERSE_DELIVERIES",
        "FULFILLMENT_EVENTS",
        "FULFILLMENTS",
        "ORDERS",
        "REFUNDS",
        "RETURNS",
        "APP",
    ]
    for resource in resources:
        if enum_value.startswith(resource + "_"):
            return f"{resource.lower()}/{enum_value[len(resource) + 1 :].lower()}"
    return enum_value.lower()


def _uri_error(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.netloc:
        return None
    # Shopify only calls HTTPS endpoints; the devshop also allows plain HTTP on the loopback
    # so tests and the demo can subscribe local servers.
    if parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}:
        return None
    if parts.scheme in {"pubsub", "arn"}:
        return "The devshop delivers to HTTP endpoints only"
    return "Address is invalid"


def resolve_webhook_subscription_create(
    _: Any,
    info: GraphQLResolveInfo,
    topic: str,
    webhookSubscription: dict,  # noqa: N803
) -> dict:
    uri = webhookSubscription.get("uri") or webhookSubscription.get("callbackUrl") or ""
    problem = _uri_error(uri) if uri else "Address can't be blank"
    if problem:
        return {
            "webhookSubscription": None,
            "userErrors": [{"field": ["webhookSubscription", "callbackUrl"], "message": problem}],
        }
    subscription = dev_webhook_subscription_create(
        shop=_shop(info),
        topic=topic_rest(topic),
        uri=uri,
        api_version=info.context.get("api_version"),
        filter=webhookSubscription.get("filter") or "",
        include_fields=webhookSubscription.get("includeFields") or [],
        format=(webhookSubscription.get("format") or "JSON").lower(),
    )
    return {"webhookSubscription": subscription, "userErrors": []}


def _subscription_topic(sub: DevWebhookSubscription, _: GraphQLResolveInfo) -> str:
    return sub.topic.replace("/", "_").upper()


MUTATION_RESOLVERS: dict[str, dict[str, Any]] = {
    "QueryRoot": {
        "returnableFulfillments": resolve_returnable_fulfillments,
        "return": resolve_return,
        "returnReasonDefinitions": resolve_reason_definitions,
    },
    "Mutation": {
        "fulfillmentEventCreate": resolve_fulfillment_event_create,
        "returnApproveRequest": resolve_return_approve,
        "returnCancel": resolve_return_cancel,
        "returnClose": resolve_return_close,
        "returnDeclineRequest": resolve_return_decline,
        "returnProcess": resolve_return_process,
        "returnRequest": resolve_return_request,
        "webhookSubscriptionCreate": resolve_webhook_subscription_create,
    },
    "Order": {
        "returns": _order_returns,
        "returnStatus": _order_return_status,
        "transactions": _order_transactions,
    },
    "Fulfillment": {
        "location": lambda f, _: {
            "id": _gid("Location", f.order.shop.shopify_id + 1),
            "name": f.location_name or "Main warehouse",
            "address": {"address1": "1 Warehouse Way", "city": None, "countryCode": "US"},
        },
    },
    "ReturnableFulfillment": {
        "id": lambda f, _: _gid("ReturnableFulfillment", f.shopify_id),
        "fulfillment": lambda f, _: f,
        "returnableFulfillmentLineItems": _returnable_lines,
    },
    "ReturnableFulfillmentLineItem": {
        "fulfillmentLineItem": lambda fli, _: fli,
        "quantity": lambda fli, _: fulfillment_line_item_returnable_quantity(fli),
    },
    "Return": {
        "id": lambda r, _: _gid("Return", r.shopify_id),
        "decline": lambda r, _: (
            {"reason": r.decline_reason, "note": r.decline_note or None}
            if r.decline_reason
            else None
        ),
        "totalQuantity": lambda r, _: sum(line.quantity for line in r.return_line_items.all()),
        "returnLineItems": _return_line_items,
    },
    "ReturnLineItem": {
        "id": lambda line, _: _gid("ReturnLineItem", line.shopify_id),
        "unprocessedQuantity": lambda line, _: line.quantity - line.processed_quantity,
        "returnReasonDefinition": _reason_definition,
    },
    "ReturnReasonDefinition": {
        "id": lambda r, _: _gid("ReturnReasonDefinition", r.id),
        "deleted": lambda r, _: False,
    },
    "WebhookSubscription": {
        "id": lambda s, _: _gid("WebhookSubscription", s.shopify_id),
        "topic": _subscription_topic,
        "format": lambda s, _: (s.format or "json").upper(),
        "apiVersion": lambda s, _: {
            "handle": s.api_version,
            "displayName": s.api_version,
            "supported": True,
        },
    },
}

# Exchanges and reverse logistics (returnCreate, reverse deliveries, dispositions…).
for _type_name, _fields in EXCHANGE_RESOLVERS.items():
    MUTATION_RESOLVERS.setdefault(_type_name, {}).update(_fields)
