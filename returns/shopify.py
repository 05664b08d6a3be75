"""The returns domain's GraphQL documents and the calls that send them.

Shapes follow shopify.dev Admin GraphQL (2026-01+): ``returnableFulfillments(orderId:)`` for what
is still returnable, ``returnRequest`` for a shopper's request (REQUESTED), the merchant's
``returnApproveRequest`` / ``returnDeclineRequest``, ``returnCreate`` for an exchange (in 2026-10
``returnRequest`` carries no exchange lines; ``returnCreate`` does, and makes the return OPEN),
``returnProcess`` to settle (never the deprecated ``returnRefund``, removed from use on
2025-10-01: changelog "Deprecation of legacy return APIs"), ``returnCancel`` and
``returnClose``; reverse logistics: ``stagedUploadsCreate`` (RETURN_LABEL), the upload to the
staged target, ``reverseDeliveryCreateWithShipping``, and ``reverseFulfillmentOrderDispose`` for
the items that came back. Every mutation's ``userErrors`` raise
``UserErrors`` through ``AdminApiClient.mutate``; transport and throttling are the client's.
"""

import logging
from decimal import Decimal
from typing import Any

import requests

from shopapp.admin_api.client import AdminApiClient, AdminApiUnavailable

logger = logging.getLogger(__name__)

# A return as Shopify holds it now, to adopt when webhooks leave doubt or name what the app
# cannot place (a return made in Shopify's admin): status, ids, units processed and disposed.
# 1 + 50 × 3 + 25 + 2 × (1 + 50 × 3) = 478 points at most.
RETURN_SYNC_QUERY = """
query ReturnSync($id: ID!) {
  return(id: $id) {
    id name status decline { reason note }
    returnLineItems(first: 50) {
      nodes {
        id quantity
        ... on ReturnLineItem { processedQuantity fulfillmentLineItem { id lineItem { id } } }
      }
    }
    exchangeLineItems(first: 25) { nodes { id quantity variantId lineItems { id } } }
    reverseFulfillmentOrders(first: 2) {
      nodes {
        id
        lineItems(first: 50) {
          nodes { id totalQuantity fulfillmentLineItem { id } dispositions { quantity } }
        }
      }
    }
  }
}"""

RETURN_FIELDS = """
  id name status
  returnLineItems(first: 100) {
    nodes { id quantity ... on ReturnLineItem { fulfillmentLineItem { id lineItem { id } } } }
  }
"""

# A return as the app keeps it: its lines (mapped to ours by fulfillment line item), its
# exchange lines (by variant) and its reverse fulfillment order (by fulfillment line item).
# Sized to stay well under the 1,000-point single query limit when read as a query.
RETURN_FULL_FIELDS = """
  id name status
  returnLineItems(first: 50) {
    nodes { id quantity ... on ReturnLineItem { fulfillmentLineItem { id lineItem { id } } } }
  }
  exchangeLineItems(first: 25) { nodes { id quantity variantId } }
  reverseFulfillmentOrders(first: 2) {
    nodes { id lineItems(first: 50) { nodes { id totalQuantity fulfillmentLineItem { id } } } }
  }
"""

# The order's returns, for adopting one our timed-out call created (Order.returns).
# 2 + 10 × (1 + 2 + 25 × 2) = 532 points.
ORDER_RETURNS_QUERY = """
query ReturnOrderReturns($id: ID!) {
  order(id: $id) {
    returns(first: 10, reverse: true) {
      nodes {
        id name status
        returnLineItems(first: 25) {
          nodes { quantity ... on ReturnLineItem { fulfillmentLineItem { id } } }
        }
      }
    }
  }
}
"""

RETURN_QUERY = (
    """
query ReturnRead($id: ID!) { return(id: $id) { """
    + RETURN_FULL_FIELDS
    + """ } }"""
)

# Eligibility: what is still returnable, and (when not cached) the products behind the
# order's line items, whose tags and type the policy checks. Both connections are paged
# (pageInfo/endCursor) until done: an order shipped in many parcels or of many lines loses
# nothing. Each page stays well under Shopify's 1,000-point single query limit (connections
# cost 2 + first × their nodes): 2 + 4 × (1 + 1 + 2 + 50 × 3) = 618 for fulfillments,
# 1 + 2 + 50 × 2 = 103 for products, 721 together; later pages ask only for what is left.
# Four parcels a page rather than more: missing lines matter more than a second round trip.
# The one bound kept: 50 returnable lines per parcel (a parcel with more is logged).
ELIGIBILITY_QUERY = """
query ReturnEligibility(
  $orderId: ID!, $withProducts: Boolean!, $withReturnable: Boolean!,
  $after: String, $lineItemsAfter: String
) {
  order(id: $orderId) @include(if: $withProducts) {
    lineItems(first: 50, after: $lineItemsAfter) {
      nodes { id product { id tags productType } }
      pageInfo { hasNextPage endCursor }
    }
  }
  returnableFulfillments(orderId: $orderId, first: 4, after: $after)
    @include(if: $withReturnable) {
    nodes {
      id
      fulfillment { id }
      returnableFulfillmentLineItems(first: 50) {
        nodes { quantity fulfillmentLineItem { id lineItem { id } } }
        pageInfo { hasNextPage }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""


# What the portal knows of the products behind an order's items: tags and type (the policy's
# final-sale and excluded-type rules) and variants (exchange choices), one aliased
# ``product(id:)`` per product. Each costs 1 + 2 + 50 × 1 = 53 points (tags and productType
# are scalars), so 15 products (795) stay under Shopify's 1,000-point single query limit;
# more products take more queries.
PRODUCT_VARIANTS_FIELDS = (
    "id tags productType variants(first: 50) { nodes { id title availableForSale } }"
)
PRODUCTS_PER_VARIANTS_QUERY = 15


def _product_variants_query(count: int, fields: str = PRODUCT_VARIANTS_FIELDS) -> str:
    params = ", ".join(f"$p{i}: ID!" for i in range(count))
    aliases = "\n".join(f"  p{i}: product(id: $p{i}) {{ {fields} }}" for i in range(count))
    return f"query ReturnExchangeVariants({params}) {{\n{aliases}\n}}"


# The price of the variants sent in exchange, which returnProcess books on the order: each
# exchange line names its variant (ExchangeLineItem.variantId, in every version; productId
# exists only from 2026-10), read by id.
EXCHANGE_VARIANTS_QUERY = """
query ReturnExchangeVariants($id: ID!) {
  return(id: $id) { exchangeLineItems(first: 25) { nodes { id variantId } } }
}"""
# Variants per query: one object each, well under the single query limit.
VARIANTS_PER_PRICES_QUERY = 25


def _variant_prices_query(count: int) -> str:
    params = ", ".join(f"$v{i}: ID!" for i in range(count))
    aliases = "\n".join(f"  v{i}: productVariant(id: $v{i}) {{ id price }}" for i in range(count))
    return f"query ReturnVariantPrices({params}) {{\n{aliases}\n}}"


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

RETURN_APPROVE = (
    """
mutation ReturnApprove($input: ReturnApproveRequestInput!) {
  returnApproveRequest(input: $input) { return { """
    + RETURN_FULL_FIELDS
    + """ } userErrors { field message code } }
}"""
)

RETURN_CREATE = (
    """
mutation ReturnCreate($returnInput: ReturnInput!) {
  returnCreate(returnInput: $returnInput) { return { """
    + RETURN_FULL_FIELDS
    + """ } userErrors { field message code } }
}"""
)

RETURN_DECLINE = """
mutation ReturnDecline($input: ReturnDeclineRequestInput!) {
  returnDeclineRequest(input: $input) {
    return { id status decline { reason note } } userErrors { field message code }
  }
}"""

# The order comes back with the return: an exchange worth more than what came back leaves the
# buyer owing the difference (PARTIALLY_PAID, totalOutstandingSet), which the merchant must see.
RETURN_PROCESS = """
mutation ReturnProcess($input: ReturnProcessInput!) {
  returnProcess(input: $input) {
    return {
      id status closedAt
      order { displayFinancialStatus totalOutstandingSet { shopMoney { amount currencyCode } } }
      exchangeLineItems(first: 25) { nodes { id lineItems { id } } }
    }
    userErrors { field message code }
  }
}"""

# What became of a return's items so far and where they were shipped from: the units already
# disposed per reverse fulfillment order line (a retry after a lost answer disposes only what
# Shopify does not have yet) and each fulfillment's location (restocking goes back there).
# Sized well under the 1,000-point single query limit (50 lines, 10 fulfillments of 50).
REVERSE_FULFILLMENT_ORDER_STATE_QUERY = """
query ReturnDisposeState($rfo: ID!, $order: ID!) {
  reverseFulfillmentOrder(id: $rfo) {
    id status
    lineItems(first: 50) {
      nodes { id totalQuantity fulfillmentLineItem { id } dispositions { quantity } }
    }
  }
  order(id: $order) {
    fulfillments(first: 10) { location { id } fulfillmentLineItems(first: 50) { nodes { id } } }
  }
}"""

# shopify.dev "reverseFulfillmentOrderDispose": units of reverse fulfillment order lines
# RESTOCKED (locationId required), NOT_RESTOCKED, PROCESSING_REQUIRED or MISSING. Each call
# disposes the units it names on top of earlier dispositions; the answer lists the lines with
# every disposition they have, so the totals come back with it.
REVERSE_FULFILLMENT_ORDER_DISPOSE = """
mutation ReturnDispose($inputs: [ReverseFulfillmentOrderDisposeInput!]!) {
  reverseFulfillmentOrderDispose(dispositionInputs: $inputs) {
    reverseFulfillmentOrderLineItems { id totalQuantity dispositions { quantity type } }
    userErrors { field message code }
  }
}"""

STAGED_UPLOADS_CREATE = """
mutation ReturnLabelStage($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message }
  }
}"""

REVERSE_DELIVERY_CREATE = """
mutation ReturnReverseDelivery(
  $rfo: ID!, $lines: [ReverseDeliveryLineItemInput!]!, $tracking: ReverseDeliveryTrackingInput,
  $label: ReverseDeliveryLabelInput, $notify: Boolean
) {
  reverseDeliveryCreateWithShipping(
    reverseFulfillmentOrderId: $rfo, reverseDeliveryLineItems: $lines,
    trackingInput: $tracking, labelInput: $label, notifyCustomer: $notify
  ) {
    reverseDelivery {
      id
      deliverable {
        ... on ReverseDeliveryShippingDeliverable {
          label { publicFileUrl } tracking { number url carrierName }
        }
      }
    }
    userErrors { field message code }
  }
}"""

# Seconds for the label upload to the staged target (a file of at most 10 MB, our form's limit).
UPLOAD_TIMEOUT_SECONDS = (5.0, 60.0)

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
    "products": {line item id: (product id, tags, product type)} (empty without products)}.

    One request while both connections fit a page; then one per further page of whichever
    still has more, each asking only for that one."""
    returnable: dict[int, list[tuple[str, int]]] = {}
    products: dict[int, tuple[int, list[str], str]] = {}
    variables: dict[str, Any] = {
        "orderId": order_gid,
        "withProducts": with_products,
        "withReturnable": True,
        "after": None,
        "lineItemsAfter": None,
    }
    while variables["withProducts"] or variables["withReturnable"]:
        data = client.execute(ELIGIBILITY_QUERY, variables)
        if variables["withReturnable"]:
            page = data.get("returnableFulfillments") or {}
            for node in page.get("nodes") or []:
                _returnable_lines_read(node, returnable, order_gid=order_gid)
            more, cursor = _next_page(page)
            variables["withReturnable"], variables["after"] = more, cursor
        if variables["withProducts"]:
            page = (data.get("order") or {}).get("lineItems") or {}
            for node in page.get("nodes") or []:
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
            more, cursor = _next_page(page)
            variables["withProducts"], variables["lineItemsAfter"] = more, cursor
    return {"returnable": returnable, "products": products}


def _next_page(page: dict[str, Any]) -> tuple[bool, str | None]:
    """(another page to read, its cursor); a next page without a cursor ends the loop."""
    info = page.get("pageInfo") or {}
    cursor = info.get("endCursor")
    return bool(info.get("hasNextPage") and cursor), cursor


def _returnable_lines_read(
    node: dict[str, Any], returnable: dict[int, list[tuple[str, int]]], *, order_gid: str
) -> None:
    lines = node.get("returnableFulfillmentLineItems") or {}
    for line in lines.get("nodes") or []:
        fli = line.get("fulfillmentLineItem") or {}
        line_item_id = gid_numeric((fli.get("lineItem") or {}).get("id"))
        if line_item_id is None or not fli.get("id"):
            continue
        returnable.setdefault(line_item_id, []).append((fli["id"], int(line["quantity"])))
    if (lines.get("pageInfo") or {}).get("hasNextPage"):
        # Beyond 50 returnable lines in one parcel (ELIGIBILITY_QUERY's one bound): the rest
        # read as not returnable. Said out loud, so that a merchant's report leads here.
        logger.warning(
            "returns.eligibility.fulfillment_lines_truncated",
            extra={"order": order_gid, "returnable_fulfillment": node.get("id")},
        )


def product_facts_fetch(
    client: AdminApiClient, *, product_ids: list[int]
) -> dict[int, tuple[list[str], str, list[tuple[int, str, bool]]]]:
    """{product id: (tags, product type, [(variant id, title, availableForSale)])}, variants in
    Shopify's order; a product Shopify no longer has is left out. One query per
    PRODUCTS_PER_VARIANTS_QUERY products."""
    found: dict[int, tuple[list[str], str, list[tuple[int, str, bool]]]] = {}
    ids = sorted(set(product_ids))
    for start in range(0, len(ids), PRODUCTS_PER_VARIANTS_QUERY):
        chunk = ids[start : start + PRODUCTS_PER_VARIANTS_QUERY]
        variables = {f"p{i}": gid("Product", pid) for i, pid in enumerate(chunk)}
        data = client.execute(_product_variants_query(len(chunk)), variables)
        for i, product_id in enumerate(chunk):
            product = data.get(f"p{i}")
            if not product:
                continue
            variants = []
            for node in (product.get("variants") or {}).get("nodes") or []:
                variant_id = gid_numeric(node.get("id"))
                if variant_id is not None:
                    variants.append(
                        (
                            variant_id,
                            str(node.get("title") or ""),
                            bool(node.get("availableForSale")),
                        )
                    )
            found[product_id] = (
                [str(t) for t in product.get("tags") or []],
                str(product.get("productType") or ""),
                variants,
            )
    return found


def product_variants_fetch(
    client: AdminApiClient, *, product_ids: list[int]
) -> dict[int, list[tuple[int, str, bool]]]:
    """{product id: [(variant id, title, availableForSale)]} in Shopify's order; a product
    Shopify no longer has is left out."""
    return {
        product_id: variants
        for product_id, (_tags, _type, variants) in product_facts_fetch(
            client, product_ids=product_ids
        ).items()
    }


def exchange_unit_prices(client: AdminApiClient, *, return_gid: str) -> dict[str, Decimal]:
    """{ExchangeLineItem gid: unit price} of the return's exchange lines, read as the price of
    their variant (returnCreate is sent without a discount, so the exchange line costs what
    the variant does). A line whose variant Shopify no longer has is left out."""
    data = client.execute(EXCHANGE_VARIANTS_QUERY, {"id": return_gid})
    nodes = (((data.get("return") or {}).get("exchangeLineItems")) or {}).get("nodes") or []
    variant_ids = sorted({n["variantId"] for n in nodes if n.get("variantId")})
    prices: dict[str, Decimal] = {}
    for start in range(0, len(variant_ids), VARIANTS_PER_PRICES_QUERY):
        chunk = variant_ids[start : start + VARIANTS_PER_PRICES_QUERY]
        variables = {f"v{i}": variant_id for i, variant_id in enumerate(chunk)}
        found = client.execute(_variant_prices_query(len(chunk)), variables)
        for i in range(len(chunk)):
            variant = found.get(f"v{i}") or {}
            if variant.get("id") and variant.get("price") is not None:
                prices[variant["id"]] = Decimal(str(variant["price"]))
    return {
        node["id"]: prices[node["variantId"]]
        for node in nodes
        if node.get("id") and node.get("variantId") in prices
    }


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


def return_create_send(
    client: AdminApiClient,
    *,
    order_gid: str,
    lines: list[dict[str, Any]],
    exchange_lines: list[dict[str, Any]],
    shipping_fee: Decimal,
    currency: str,
    requested_at: str | None = None,
) -> dict[str, Any]:
    """returnCreate (directly OPEN) with ``exchange_lines`` ([{variantId, quantity}]);
    ``lines`` are ReturnLineItemInput dicts. Returns the Return (RETURN_FULL_FIELDS)."""
    payload: dict[str, Any] = {
        "orderId": order_gid,
        "returnLineItems": lines,
        "exchangeLineItems": exchange_lines,
    }
    if requested_at:
        payload["requestedAt"] = requested_at
    if shipping_fee > 0 and currency:
        payload["returnShippingFee"] = {
            "amount": {"amount": str(shipping_fee), "currencyCode": currency}
        }
    return client.mutate("returnCreate", RETURN_CREATE, {"returnInput": payload})["return"]


def order_returns_fetch(client: AdminApiClient, *, order_gid: str) -> list[dict[str, Any]]:
    """The order's most recent returns: [{id, name, status, lines: [(fli gid, quantity)]}]."""
    data = client.execute(ORDER_RETURNS_QUERY, {"id": order_gid})
    found = []
    for node in ((data.get("order") or {}).get("returns") or {}).get("nodes") or []:
        lines = [
            ((line.get("fulfillmentLineItem") or {}).get("id") or "", int(line["quantity"]))
            for line in (node.get("returnLineItems") or {}).get("nodes") or []
        ]
        found.append(
            {
                "id": node["id"],
                "name": node.get("name") or "",
                "status": node["status"],
                "lines": lines,
            }
        )
    return found


def return_fetch(client: AdminApiClient, *, return_gid: str) -> dict[str, Any] | None:
    return client.execute(RETURN_QUERY, {"id": return_gid}).get("return")


def return_sync_fetch(client: AdminApiClient, *, return_gid: str) -> dict[str, Any] | None:
    """The return now (RETURN_SYNC_QUERY), or None when Shopify has no such return."""
    return client.execute(RETURN_SYNC_QUERY, {"id": return_gid}).get("return")


def return_label_stage(
    client: AdminApiClient, *, filename: str, mime_type: str, size: int
) -> dict[str, Any]:
    """stagedUploadsCreate for a RETURN_LABEL: {url, resourceUrl, parameters}. POST (a form
    whose fields are the returned parameters, then the file) works for every Shopify target."""
    target = {
        "filename": filename,
        "mimeType": mime_type,
        "resource": "RETURN_LABEL",
        "httpMethod": "POST",
        "fileSize": str(size),
    }
    data = client.mutate("stagedUploadsCreate", STAGED_UPLOADS_CREATE, {"input": [target]})
    return data["stagedTargets"][0]


def return_label_upload(target: dict[str, Any], *, filename: str, mime_type: str, content: bytes):
    """Send the file to the staged target: the parameters as form fields, in order, then the
    file last (storage buckets ignore fields after the file). Raises AdminApiUnavailable."""
    fields: list[tuple[str, tuple[str | None, Any] | tuple[str, bytes, str]]] = [
        (p["name"], (None, p["value"])) for p in target.get("parameters") or []
    ]
    fields.append(("file", (filename, content, mime_type)))
    try:
        response = requests.post(target["url"], files=fields, timeout=UPLOAD_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise AdminApiUnavailable(f"label upload: {type(exc).__name__}") from exc
    if response.status_code >= 300:
        raise AdminApiUnavailable(
            f"label upload answered {response.status_code}", status=response.status_code
        )


def reverse_delivery_create_send(
    client: AdminApiClient,
    *,
    rfo_gid: str,
    label_url: str | None,
    tracking_number: str,
    tracking_url: str,
    notify_customer: bool,
) -> dict[str, Any]:
    """reverseDeliveryCreateWithShipping for every line of the reverse fulfillment order
    (``reverseDeliveryLineItems: []`` means all, shopify.dev "Manage reverse deliveries")."""
    tracking = {k: v for k, v in {"number": tracking_number, "url": tracking_url}.items() if v}
    variables: dict[str, Any] = {
        "rfo": rfo_gid,
        "lines": [],
        "tracking": tracking or None,
        "label": {"fileUrl": label_url} if label_url else None,
        "notify": notify_customer,
    }
    return client.mutate("reverseDeliveryCreateWithShipping", REVERSE_DELIVERY_CREATE, variables)[
        "reverseDelivery"
    ]


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


def reverse_fulfillment_order_state(
    client: AdminApiClient, *, rfo_gid: str, order_gid: str
) -> dict[str, Any]:
    """{"disposed": {reverse fulfillment order line gid: units disposed so far},
    "locations": {fulfillment line item gid: the gid of the location that shipped it}}."""
    data = client.execute(
        REVERSE_FULFILLMENT_ORDER_STATE_QUERY, {"rfo": rfo_gid, "order": order_gid}
    )
    rfo = data.get("reverseFulfillmentOrder") or {}
    disposed = {
        node["id"]: sum(int(d.get("quantity") or 0) for d in node.get("dispositions") or [])
        for node in (rfo.get("lineItems") or {}).get("nodes") or []
        if node.get("id")
    }
    locations: dict[str, str] = {}
    for fulfillment in (data.get("order") or {}).get("fulfillments") or []:
        location = (fulfillment.get("location") or {}).get("id")
        if not location:
            continue
        for node in (fulfillment.get("fulfillmentLineItems") or {}).get("nodes") or []:
            if node.get("id"):
                locations[node["id"]] = location
    return {"disposed": disposed, "locations": locations}


def reverse_fulfillment_order_dispose_send(
    client: AdminApiClient, *, dispositions: list[dict[str, Any]]
) -> dict[str, int]:
    """reverseFulfillmentOrderDispose with ``dispositions`` (ReverseFulfillmentOrderDisposeInput
    dicts). Returns {line gid: units disposed in all, this call included} for the lines named."""
    data = client.mutate(
        "reverseFulfillmentOrderDispose",
        REVERSE_FULFILLMENT_ORDER_DISPOSE,
        {"inputs": dispositions},
    )
    return {
        node["id"]: sum(int(d.get("quantity") or 0) for d in node.get("dispositions") or [])
        for node in data.get("reverseFulfillmentOrderLineItems") or []
        if node.get("id")
    }
