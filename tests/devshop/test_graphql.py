"""The devshop's Admin GraphQL API over real HTTP: schema, search, pagination, auth, cost,
throttle and forced failures, answered as Shopify answers them."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

API_VERSION = "2026-10"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


@pytest.fixture(autouse=True)
def _graphql_knobs_reset(devshop):
    yield
    devshop.client.graphql_throttle_set()
    devshop.client.admin_api_fail_next(0)


def _installed(devshop, **shop_fields) -> tuple[str, str]:
    domain = f"gql-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain, **shop_fields)
    token = devshop.client.app_install_with_token(domain)["access_token"]
    return domain, token


def _post(devshop, domain: str, token: str | None, query: str, variables=None, **kw):
    headers = {"X-Shopify-Access-Token": token} if token else {}
    url = f"{devshop.client.shop_url(domain)}/admin/api/{API_VERSION}/graphql.json"
    return requests.post(
        url, json={"query": query, "variables": variables or {}}, headers=headers, timeout=10, **kw
    )


ORDERS = """
query($first: Int, $after: String, $last: Int, $before: String, $q: String, $reverse: Boolean) {
  orders(first: $first, after: $after, last: $last, before: $before, query: $q,
         sortKey: UPDATED_AT, reverse: $reverse) {
    edges { cursor node { id legacyResourceId name email updatedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


def test_shop_query_answers_with_shopify_ids_and_cost(devshop):
    # given an installed shop
    domain, token = _installed(devshop, currency_code="EUR")

    # when the app asks for the shop
    response = _post(
        devshop,
        domain,
        token,
        "{ shop { id name email myshopifyDomain ianaTimezone currencyCode"
        " primaryDomain { host } } }",
    )

    # then it gets the Shop object and the cost of the call
    assert response.status_code == 200
    body = response.json()
    shop = body["data"]["shop"]
    assert shop["id"].startswith("gid://shopify/Shop/")
    assert shop["myshopifyDomain"] == domain
    assert shop["currencyCode"] == "EUR"
    assert shop["primaryDomain"] == {"host": domain}
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2  # shop 1 + primaryDomain 1
    assert cost["actualQueryCost"] == 2
    assert cost["throttleStatus"]["maximumAvailable"] == 2000.0
    assert cost["throttleStatus"]["restoreRate"] == 100.0


def test_order_has_every_field_the_app_reads(devshop):
    domain, token = _installed(devshop)
    [order_id] = devshop.client.orders_create(domain, count=1, line_items=2)
    query = """query($id: ID!) { order(id: $id) {
      id legacyResourceId name email phone createdAt updatedAt processedAt cancelledAt
      cancelReason closedAt test tags customerLocale currencyCode presentmentCurrencyCode
      displayFinancialStatus displayFulfillmentStatus
      totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
      subtotalPriceSet { shopMoney { amount } } totalDiscountsSet { shopMoney { amount } }
      totalTaxSet { shopMoney { amount } } totalShippingPriceSet { shopMoney { amount } }
      customer { id firstName lastName email phone }
      shippingAddress { city provinceCode countryCodeV2 zip }
      lineItems(first: 10) { edges { cursor node { id title variantTitle sku vendor quantity
        currentQuantity unfulfilledQuantity requiresShipping
        originalUnitPriceSet { shopMoney { amount } } totalDiscountSet { shopMoney { amount } }
        product { id } variant { id } } } }
      fulfillments(first: 5) { id status displayStatus createdAt updatedAt deliveredAt
        inTransitAt estimatedDeliveryAt trackingInfo(first: 3) { company number url }
        fulfillmentLineItems(first: 5) { nodes { id quantity lineItem { id } } }
        events(first: 10) { edges { node { id status happenedAt message city province
          country estimatedDeliveryAt } } } }
    } }"""

    body = _post(devshop, domain, token, query, {"id": f"gid://shopify/Order/{order_id}"}).json()

    assert "errors" not in body, body
    order = body["data"]["order"]
    assert order["id"] == f"gid://shopify/Order/{order_id}"
    assert order["legacyResourceId"] == str(order_id)
    assert order["name"].startswith("#")
    assert order["displayFinancialStatus"] in {"PAID", "AUTHORIZED"}
    assert order["displayFulfillmentStatus"] == "UNFULFILLED"
    assert order["createdAt"].endswith("Z")
    assert "." not in order["createdAt"]  # whole seconds, as Shopify
    assert order["totalPriceSet"]["shopMoney"]["currencyCode"] == "USD"
    assert order["customer"]["id"].startswith("gid://shopify/Customer/")
    assert order["shippingAddress"]["countryCodeV2"]
    items = [edge["node"] for edge in order["lineItems"]["edges"]]
    assert len(items) == 2
    assert all(i["unfulfilledQuantity"] == i["quantity"] for i in items)
    assert items[0]["product"]["id"].startswith("gid://shopify/Product/")
    assert items[0]["variant"]["id"].startswith("gid://shopify/ProductVariant/")
    assert order["fulfillments"] == []


def test_unknown_order_id_is_null_and_other_shops_orders_are_invisible(devshop):
    domain, token = _installed(devshop)
    other, _ = _installed(devshop)
    [foreign] = devshop.client.orders_create(other, count=1)

    body = _post(
        devshop, domain, token, f'{{ order(id: "gid://shopify/Order/{foreign}") {{ id }} }}'
    ).json()

    assert body["data"] == {"order": None}


def test_orders_paginate_forward_and_backward_without_gaps(devshop):
    domain, token = _installed(devshop)
    created = devshop.client.orders_create(domain, count=7)

    seen, after, pages = [], None, 0
    while True:
        data = _post(devshop, domain, token, ORDERS, {"first": 3, "after": after}).json()["data"]
        connection = data["orders"]
        seen += [int(e["node"]["legacyResourceId"]) for e in connection["edges"]]
        pages += 1
        assert connection["pageInfo"]["hasPreviousPage"] is (pages > 1)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert pages == 3
    assert seen == created  # sortKey UPDATED_AT, created one after the other

    # and backward from the end with last/before
    tail = _post(devshop, domain, token, ORDERS, {"last": 3}).json()["data"]["orders"]
    assert [int(e["node"]["legacyResourceId"]) for e in tail["edges"]] == created[-3:]
    assert tail["pageInfo"]["hasPreviousPage"] is True
    before = tail["pageInfo"]["startCursor"]
    prev = _post(devshop, domain, token, ORDERS, {"last": 3, "before": before}).json()
    assert [int(e["node"]["legacyResourceId"]) for e in prev["data"]["orders"]["edges"]] == (
        created[-6:-3]
    )

    # and reversed
    rev = _post(devshop, domain, token, ORDERS, {"first": 2, "reverse": True}).json()
    assert [int(e["node"]["legacyResourceId"]) for e in rev["data"]["orders"]["edges"]] == (
        created[::-1][:2]
    )


def test_orders_require_first_or_last(devshop):
    domain, token = _installed(devshop)

    body = _post(devshop, domain, token, "{ orders { nodes { id } } }").json()

    assert body["errors"][0]["message"] == "you must provide one of first or last"


def test_search_syntax_filters_by_updated_at_name_and_email(devshop):
    # given two old orders and two recent ones
    domain, token = _installed(devshop)
    long_ago = (datetime.now(tz=UTC) - timedelta(days=3)).isoformat()
    old = devshop.client.orders_create(domain, count=2, updated_at=long_ago)
    recent = devshop.client.orders_create(domain, count=2)
    cutoff = (datetime.now(tz=UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def ids(q: str) -> list[int]:
        data = _post(devshop, domain, token, ORDERS, {"first": 50, "q": q}).json()["data"]
        return [int(e["node"]["legacyResourceId"]) for e in data["orders"]["edges"]]

    # then the Shopify search syntax selects them
    assert ids(f"updated_at:>'{cutoff}'") == recent
    assert ids(f"updated_at:>={cutoff}") == recent
    assert ids(f"updated_at:<'{cutoff}'") == old
    assert ids(f"-updated_at:>'{cutoff}'") == old
    first = _post(devshop, domain, token, ORDERS, {"first": 1}).json()["data"]["orders"]
    node = first["edges"][0]["node"]
    assert ids(f"name:{node['name']}") == [old[0]]
    assert ids(f"name:{node['name'].lstrip('#')}") == [old[0]]
    # (a returning customer may share an email: give one order its own)
    devshop.client.order_update(domain, recent[0], email="only-me@example.com")
    assert ids("email:only-me@example.com") == [recent[0]]
    # unknown filters are ignored, as Shopify does
    assert sorted(ids("no_such_filter:1")) == sorted(old + recent)


def test_order_update_bumps_updated_at(devshop):
    domain, token = _installed(devshop)
    [order_id] = devshop.client.orders_create(domain, count=1)
    before = _post(devshop, domain, token, ORDERS, {"first": 1}).json()["data"]["orders"]

    devshop.client.order_update(domain, order_id, email="changed@example.com", tags="vip, gift")

    query = f'{{ order(id: "gid://shopify/Order/{order_id}") {{ email tags updatedAt }} }}'
    after = _post(devshop, domain, token, query).json()["data"]["order"]
    assert after["email"] == "changed@example.com"
    assert after["tags"] == ["vip", "gift"]
    assert after["updatedAt"] >= before["edges"][0]["node"]["updatedAt"]


def test_order_update_rejects_unknown_fields(devshop):
    domain, _ = _installed(devshop)
    [order_id] = devshop.client.orders_create(domain, count=1)

    response = requests.post(
        f"{devshop.base_url}/_devshop/shops/{domain}/orders/{order_id}",
        json={"no_such_field": 1},
        timeout=10,
    )

    assert response.status_code == 400


@pytest.mark.parametrize("token", [None, "shpat_not_a_real_token"])
def test_missing_or_unknown_token_gets_401_with_shopify_body(devshop, token):
    domain, _ = _installed(devshop)

    response = _post(devshop, domain, token, "{ shop { id } }")

    assert response.status_code == 401
    assert response.json() == {"errors": INVALID_TOKEN}


def test_expired_token_gets_401(devshop):
    domain = f"gql-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain)
    devshop.client.knobs_set(access_token_ttl=0)
    token = devshop.client.app_install_with_token(domain)["access_token"]

    response = _post(devshop, domain, token, "{ shop { id } }")

    assert response.status_code == 401
    assert response.json() == {"errors": INVALID_TOKEN}


def test_unknown_field_fails_validation_in_shopifys_shape(devshop):
    domain, token = _installed(devshop)

    response = _post(devshop, domain, token, "{ orders(first: 1) { nodes { id bogus } } }")

    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["message"] == "Field 'bogus' doesn't exist on type 'Order'"
    assert error["extensions"] == {
        "code": "undefinedField",
        "typeName": "Order",
        "fieldName": "bogus",
    }
    assert error["locations"]
    assert "data" not in response.json()


def test_syntax_error_and_bad_body(devshop):
    domain, token = _installed(devshop)

    syntax = _post(devshop, domain, token, "{ shop { id }").json()
    bad = requests.post(
        f"{devshop.client.shop_url(domain)}/admin/api/{API_VERSION}/graphql.json",
        data="not json",
        headers={"X-Shopify-Access-Token": token, "Content-Type": "application/json"},
        timeout=10,
    )

    assert syntax["errors"][0]["message"].startswith("Syntax Error")
    assert bad.status_code == 400


def test_connection_cost_is_two_plus_first_times_item(devshop):
    domain, token = _installed(devshop)
    devshop.client.orders_create(domain, count=2, line_items=1)

    query = "{ orders(first: 10) { edges { node { id lineItems(first: 5) { nodes { id } } } } } }"
    cost = _post(devshop, domain, token, query).json()["extensions"]["cost"]

    # orders 2 + 10 × (order 1 + lineItems (2 + 5 × 1))
    assert cost["requestedQueryCost"] == 2 + 10 * (1 + 2 + 5)
    # two orders came back, one line item each
    assert cost["actualQueryCost"] == 2 + 2 * (1 + 2 + 1)


def test_query_over_single_query_limit_is_refused(devshop):
    domain, token = _installed(devshop)

    query = "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }"
    body = _post(devshop, domain, token, query).json()

    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert "data" not in body


def test_empty_bucket_answers_throttled_in_shopifys_shape(devshop):
    # given a tiny bucket that refills slowly, and enough orders that a query costs what
    # it requested (an emptier answer would be refunded)
    domain, token = _installed(devshop)
    devshop.client.orders_create(domain, count=10, line_items=1)
    devshop.client.graphql_throttle_set(bucket_size=50, restore_rate=1)
    query = "{ orders(first: 10) { nodes { id } } }"  # requested cost 12

    # when the app fires queries until the bucket runs dry
    bodies = [_post(devshop, domain, token, query).json() for _ in range(6)]

    # then the last ones are THROTTLED with HTTP 200, no data, and the bucket's status
    throttled = [b for b in bodies if "errors" in b]
    assert throttled, bodies
    body = throttled[0]
    assert body["errors"] == [
        {
            "message": "Throttled",
            "extensions": {
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/rate-limits",
            },
        }
    ]
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 12
    assert cost["actualQueryCost"] is None
    assert cost["throttleStatus"]["maximumAvailable"] == 50
    assert cost["throttleStatus"]["currentlyAvailable"] < 12
    assert cost["throttleStatus"]["restoreRate"] == 1


def test_buckets_are_per_shop(devshop):
    devshop.client.graphql_throttle_set(bucket_size=20, restore_rate=1)
    a, token_a = _installed(devshop)
    devshop.client.orders_create(a, count=10, line_items=1)
    b, token_b = _installed(devshop)
    query = "{ orders(first: 10) { nodes { id } } }"
    _post(devshop, a, token_a, query)
    assert "errors" in _post(devshop, a, token_a, query).json()

    assert "errors" not in _post(devshop, b, token_b, query).json()


@pytest.mark.parametrize("status", [503, 429])
def test_forced_failures_answer_the_next_calls_then_stop(devshop, status):
    domain, token = _installed(devshop)
    devshop.client.admin_api_fail_next(2, status=status, retry_after=1)

    statuses = [_post(devshop, domain, token, "{ shop { id } }") for _ in range(3)]

    assert [r.status_code for r in statuses] == [status, status, 200]
    assert statuses[0].headers["Retry-After"] == "1"


def test_product_lists_its_variants_with_availability_and_cost(devshop):
    # given an installed shop with an apparel order (a product in sizes and colours), one of
    # whose variants is then sold out
    domain, token = _installed(devshop)
    (order_id,) = devshop.client.orders_create(
        domain, count=1, line_items=1, line_item_product_type="Apparel"
    )
    lines = _post(
        devshop,
        domain,
        token,
        "query($id: ID!) { order(id: $id) { lineItems(first: 5) { nodes {"
        " product { id } variant { id } } } } }",
        {"id": f"gid://shopify/Order/{order_id}"},
    ).json()["data"]["order"]["lineItems"]["nodes"]
    product_gid, ordered_gid = lines[0]["product"]["id"], lines[0]["variant"]["id"]
    devshop.client.variant_update(
        domain, int(ordered_gid.rsplit("/", 1)[-1]), available_for_sale=False
    )

    # when the app reads the product's variants
    query = (
        "query($id: ID!) { product(id: $id) {"
        " variants(first: 50) { nodes { id title availableForSale } } } }"
    )
    body = _post(devshop, domain, token, query, {"id": product_gid}).json()

    # then every variant comes back with its title and availability, at Shopify's cost
    nodes = body["data"]["product"]["variants"]["nodes"]
    assert len(nodes) == 6
    assert all(" / " in n["title"] for n in nodes)
    assert [n["availableForSale"] for n in nodes if n["id"] == ordered_gid] == [False]
    assert sum(n["availableForSale"] for n in nodes) == 5
    assert body["extensions"]["cost"]["requestedQueryCost"] == 1 + 2 + 50
    # and another shop's product is not there
    other_domain, other_token = _installed(devshop)
    other = _post(devshop, other_domain, other_token, query, {"id": product_gid}).json()
    assert other["data"]["product"] is None


def test_a_variant_repriced_by_the_merchant_reads_at_its_new_price(devshop):
    # given an installed shop with an order, and one of its variants
    domain, token = _installed(devshop)
    (order_id,) = devshop.client.orders_create(domain, count=1, line_items=1)
    query = "query($id: ID!) { productVariant(id: $id) { price availableForSale } }"
    (line,) = _post(
        devshop,
        domain,
        token,
        "query($id: ID!) { order(id: $id) { lineItems(first: 5) { nodes { variant { id } } } } }",
        {"id": f"gid://shopify/Order/{order_id}"},
    ).json()["data"]["order"]["lineItems"]["nodes"]
    gid = line["variant"]["id"]
    variant_id = int(gid.rsplit("/", 1)[-1])

    # when the merchant changes its price
    devshop.client.variant_update(domain, variant_id, price="123.45")

    # then the Admin API reads the new price, stock unchanged
    read = _post(devshop, domain, token, query, {"id": gid}).json()["data"]["productVariant"]
    assert (read["price"], read["availableForSale"]) == ("123.45", True)

    # and a price that is not an amount is refused, changing nothing
    for bad in ("-1", "abc", "1.234", "NaN"):
        refused = requests.post(
            f"{devshop.base_url}/_devshop/shops/{domain}/variants/{variant_id}",
            json={"price": bad},
            timeout=10,
        )
        assert refused.status_code == 400, bad
    read = _post(devshop, domain, token, query, {"id": gid}).json()["data"]["productVariant"]
    assert read["price"] == "123.45"


# --- Shopify's published schema, as it is (2026-10 where it differs from 2026-01) -----------


@pytest.mark.parametrize(
    ("field", "sort_key"),
    [("orders(first: 1, sortKey: NUMBER)", "NUMBER"), ("orders(first: 1, sortKey: ID)", None)],
)
def test_sort_keys_shopify_does_not_have_fail_validation(devshop, field, sort_key):
    # OrderSortKeys has ORDER_NUMBER, not NUMBER; FulfillmentEventSortKeys has no RELEVANCE
    domain, token = _installed(devshop)

    body = _post(devshop, domain, token, f"{{ {field} {{ nodes {{ id }} }} }}").json()

    if sort_key is None:
        assert "errors" not in body
    else:
        assert sort_key in body["errors"][0]["message"]


def test_fulfillment_events_cannot_be_sorted_by_relevance(devshop):
    domain, token = _installed(devshop)
    (order_id,) = devshop.client.orders_create(domain, count=1)
    query = f"""{{ order(id: "gid://shopify/Order/{order_id}") {{
        fulfillments(first: 1) {{
          events(first: 1, sortKey: RELEVANCE) {{ nodes {{ id }} }}
        }}
    }} }}"""

    body = _post(devshop, domain, token, query).json()

    assert "RELEVANCE" in body["errors"][0]["message"]


def test_customers_default_email_and_phone_replace_the_deprecated_fields(devshop):
    domain, token = _installed(devshop)
    (order_id,) = devshop.client.orders_create(domain, count=1, email="ana@example.com")
    query = f"""{{ order(id: "gid://shopify/Order/{order_id}") {{
        customer {{ defaultEmailAddress {{ emailAddress }} defaultPhoneNumber {{ phoneNumber }} }}
    }} }}"""

    customer = _post(devshop, domain, token, query).json()["data"]["order"]["customer"]

    assert customer["defaultEmailAddress"] == {"emailAddress": "ana@example.com"}


def test_fulfillment_not_required_is_an_order_with_nothing_left_to_fulfil(devshop):
    # shopify.dev changelog (2026-10): FULFILLMENT_NOT_REQUIRED is an order not fulfilled with
    # nothing left to fulfil (cancelled, or every unit refunded or edited away); earlier versions
    # still read UNFULFILLED. A gift card or download is still to fulfil: Shopify fulfils it too.
    domain, token = _installed(devshop)
    (cancelled,) = devshop.client.orders_create(domain, count=1)
    devshop.client.order_cancel(domain, cancelled)
    (digital,) = devshop.client.orders_create(domain, count=1, requires_shipping=False)
    (boxed,) = devshop.client.orders_create(domain, count=1, requires_shipping=True)
    query = "query($id: ID!) { order(id: $id) { displayFulfillmentStatus } }"

    def status(order_id: int, version: str) -> str:
        url = f"{devshop.client.shop_url(domain)}/admin/api/{version}/graphql.json"
        body = {"query": query, "variables": {"id": f"gid://shopify/Order/{order_id}"}}
        answer = requests.post(
            url, json=body, headers={"X-Shopify-Access-Token": token}, timeout=10
        )
        return answer.json()["data"]["order"]["displayFulfillmentStatus"]

    assert [status(o, API_VERSION) for o in (cancelled, digital, boxed)] == [
        "FULFILLMENT_NOT_REQUIRED",
        "UNFULFILLED",
        "UNFULFILLED",
    ]
    assert status(cancelled, "2026-07") == "UNFULFILLED"


def test_mutation_errors_can_be_read_through_displayable_error(devshop):
    domain, token = _installed(devshop)
    mutation = """mutation { returnApproveRequest(input: {id: "gid://shopify/Return/1"}) {
        return { id } userErrors { ... on DisplayableError { field message } } } }"""

    body = _post(devshop, domain, token, mutation).json()

    assert "errors" not in body
    assert body["data"]["returnApproveRequest"]["userErrors"][0]["message"]
