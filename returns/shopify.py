"""The returns domain's GraphQL documents and the calls that send them.

Shapes follow shopify.dev Admin GraphQL (2026-01+): ``returnableFulfillments(orderId:)`` for what
is still returnable, ``returnRequest`` for a shopper's request (REQUESTED), the merchant's
``returnApproveRequest`` / ``returnDeclineRequest``, ``returnProcess`` to settle (never the
deprecated ``returnRefund``, removed from use on 2025-10-01: changelog "Deprecation of legacy
return APIs"), ``returnCancel`` and ``returnClose``. Every mutation's ``userErrors`` raise
``UserErrors`` through ``AdminApiClient.mutate``; transport and throttling are the client's.
"""

from decimal import Decimal
from typing import Any

from shopapp.admin_api.client import AdminApiClient

RETURN_FIELDS = """
  id name status
  returnLineItems(first: 100) {
    nodes { id quantity ... on ReturnLineItem { fulfillmentLineItem { id lineItem { id } } } }
  }
"""

# One round trip for eligibility: what is still returnable, and (when not cached) the
# products behind the order's line items, whose tags and type the policy checks.
ELIGIBILITY_QUERY = """
query ReturnEligibility($orderId: ID!, $withProducts: Boolean!) {
  order(id: $orderId) @include(if: $withProducts) {
    lineItems(first: 250) { nodes { id product { id tags productType } } }
  }
  returnableFulfillments(orderId: $orderId, first: 50) {
    nodes {
      id
      fulfillment { id }
      returnableFulfillmentLineItems(first: 250) {
        nodes { quantity fulfillmentLineItem { id lineItem { id } } }
      }
    }
  }
}
"""

REASON_DEFINITIONS_QUERY = """
query ReturnReasonDefinitions {
  returnReasonDefinitions(first: 250) { nodes { id handle deleted } }
}
"""

ORDER_TRANSACTIONS_QUERY = """
query ReturnOrderTransactions($id: ID!) {
  order(id: $id) { transactions(first: 20) { id kind status amountSet { shopMoney { amount } } } }
}
"""

RETURN_REQUEST = (
    """
mutation ReturnRequest($input: ReturnRequestInput!) {
  returnRequest(input: $input) { return { """
    + RETURN_FIELDS
    + """ } userErrors { field message code } }
}"""
)

RETURN_APPROVE = """
mutation ReturnApprove($input: ReturnApproveRequestInput!) {
  returnApproveRequest(input: $input) { return { id status } userErrors { field message code } }
}"""

RETURN_DECLINE = """
mutation ReturnDecline($input: ReturnDeclineRequestInput!) {
  returnDeclineRequest(input: $input) {
    return { id status decline { reason note } } userErrors { field message code }
  }
}"""

RETURN_PROCESS = """
mutation ReturnProcess($input: ReturnProcessInput!) {
  returnProcess(input: $input) { return { id status closedAt } userErrors { field message code } }
}"""

RETURN_CANCEL = """
mutation ReturnCancel($id: ID!) {
  returnCancel(id: $id) { return { id status } userErrors { field message code } }
}"""

RETURN_CLOSE = """
mutation ReturnClose($id: ID!) {
  returnClose(id: $id) { return { id status } userErrors { field message code } }
}"""


def gid(type_name: str, numeric_id: int) -> str:
    return f"gid://shopify/{type_name}/{numeric_id}"


def gid_numeric(value: Any) -> int | None:
    """gid://shopify/Return/123 → 123; None for anything else."""
    if not isinstance(value, str) or not value.startswith("gid://shopify/"):
        return None
    tail = value.rsplit("/", 1)[-1].split("?", 1)[0]
    return int(tail) if tail.isdigit() else None


def eligibility_fetch(
    client: AdminApiClient, *, order_gid: str, with_products: bool
) -> dict[str, Any]:
    """{"returnable": {line item id: [(fulfillment line item gid, quantity)]},
    "products": {line item id: (product id, tags, product type)} (empty without products)}."""
    data = client.execute(ELIGIBILITY_QUERY, {"orderId": order_gid, "withProducts": with_products})
    returnable: dict[int, list[tuple[str, int]]] = {}
    for node in (data.get("returnableFulfillments") or {}).get("nodes") or []:
        lines = (node.get("returnableFulfillmentLineItems") or {}).get("nodes") or []
        for line in lines:
            fli = line.get("fulfillmentLineItem") or {}
            line_item_id = gid_numeric((fli.get("lineItem") or {}).get("id"))
            if line_item_id is None or not fli.get("id"):
                continue
            returnable.setdefault(line_item_id, []).append((fli["id"], int(line["quantity"])))
    products: dict[int, tuple[int, list[str], str]] = {}
    order = data.get("order") or {}
    for node in (order.get("lineItems") or {}).get("nodes") or []:
        line_item_id = gid_numeric(node.get("id"))
        product = node.get("product") or {}
        product_id = gid_numeric(product.get("id"))
        if line_item_id is None or product_id is None:
            continue
        products[line_item_id] = (
            product_id,
            [str(t) for t in product.get("tags") or []],
            str(product.get("productType") or ""),
        )
    return {"returnable": returnable, "products": products}


def reason_definition_ids(client: AdminApiClient) -> dict[str, str]:
    """handle → ReturnReasonDefinition gid, deleted definitions left out."""
    data = client.execute(REASON_DEFINITIONS_QUERY)
    nodes = (data.get("returnReasonDefinitions") or {}).get("nodes") or []
    return {n["handle"]: n["id"] for n in nodes if not n.get("deleted")}


def refund_parent_transaction(client: AdminApiClient, *, order_gid: str) -> str | None:
    """The order's successful payment (SALE or CAPTURE), the parent a refund points at."""
    data = client.execute(ORDER_TRANSACTIONS_QUERY, {"id": order_gid})
    for tx in (data.get("order") or {}).get("transactions") or []:
        if tx.get("status") == "SUCCESS" and tx.get("kind") in {"SALE", "CAPTURE"}:
            return tx["id"]
    return None


def return_request_send(
    client: AdminApiClient,
    *,
    order_gid: str,
    lines: list[dict[str, Any]],
    shipping_fee: Decimal,
    currency: str,
) -> dict[str, Any]:
    """returnRequest; ``lines`` are ReturnRequestLineItemInput dicts. Returns the Return."""
    payload: dict[str, Any] = {"orderId": order_gid, "returnLineItems": lines}
    if shipping_fee > 0 and currency:
        payload["returnShippingFee"] = {
            "amount": {"amount": str(shipping_fee), "currencyCode": currency}
        }
    return client.mutate("returnRequest", RETURN_REQUEST, {"input": payload})["return"]


def return_approve_send(
    client: AdminApiClient, *, return_gid: str, notify_customer: bool
) -> dict[str, Any]:
    variables = {"input": {"id": return_gid, "notifyCustomer": notify_customer}}
    return client.mutate("returnApproveRequest", RETURN_APPROVE, variables)["return"]


def return_decline_send(
    client: AdminApiClient, *, return_gid: str, reason: str, note: str, notify_customer: bool
) -> dict[str, Any]:
    variables = {
        "input": {
            "id": return_gid,
            "declineReason": reason,
            "declineNote": note,
            "notifyCustomer": notify_customer,
        }
    }
    return client.mutate("returnDeclineRequest", RETURN_DECLINE, variables)["return"]


def return_process_send(client: AdminApiClient, *, process_input: dict[str, Any]) -> dict:
    return client.mutate("returnProcess", RETURN_PROCESS, {"input": process_input})["return"]


def return_cancel_send(client: AdminApiClient, *, return_gid: str) -> dict[str, Any]:
    return client.mutate("returnCancel", RETURN_CANCEL, {"id": return_gid})["return"]


def return_close_send(client: AdminApiClient, *, return_gid: str) -> dict[str, Any]:
    return client.mutate("returnClose", RETURN_CLOSE, {"id": return_gid})["return"]
