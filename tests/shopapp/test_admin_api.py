"""The Admin API client against the devshop over real HTTP: queries and pagination, errors,
401s, Shopify's cost-based throttle, retries of 5xx / 429 / network errors, userErrors."""

import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from shopapp.admin_api.client import (
    AdminApiClient,
    AdminApiThrottled,
    AdminApiUnauthorized,
    AdminApiUnavailable,
    GraphQLErrors,
    UserErrors,
    admin_client_for_shop,
    user_errors_raise,
)
from tests.conftest import free_port

ORDERS_PAGE = """
query Page($first: Int!, $after: String) {
  orders(first: $first, after: $after, sortKey: CREATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { id name }
  }
}"""


class Sleeps:
    """Records the client's waits and really waits (the devshop's bucket refills in time)."""

    def __init__(self, real: bool = True) -> None:
        self.calls: list[float] = []
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.real:
            time.sleep(seconds)


@pytest.fixture(autouse=True)
def _graphql_knobs_reset(devshop):
    yield
    devshop.client.graphql_throttle_set()
    devshop.client.admin_api_fail_next(0)


def _store(devshop) -> tuple[str, str]:
    domain = f"api-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain)
    return domain, devshop.client.app_install_with_token(domain)["access_token"]


def test_query_pages_through_orders(devshop):
    # given a store with 7 orders
    domain, token = _store(devshop)
    created = devshop.client.orders_create(domain, count=7)
    client = AdminApiClient(domain, token)

    # when the app pages through them 3 at a time
    names, after, pages = [], None, 0
    while True:
        data = client.execute(ORDERS_PAGE, {"first": 3, "after": after})
        names += [node["id"] for node in data["orders"]["nodes"]]
        pages += 1
        if not data["orders"]["pageInfo"]["hasNextPage"]:
            break
        after = data["orders"]["pageInfo"]["endCursor"]

    # then it sees each order once, over three pages, and the call's cost
    assert pages == 3
    assert names == [f"gid://shopify/Order/{i}" for i in created]
    assert client.last_cost["requestedQueryCost"] == 2 + 3 * 1
    assert client.last_cost["throttleStatus"]["maximumAvailable"] == 2000


def test_client_uses_the_version_and_url_template_from_settings(devshop, settings):
    settings.SHOPIFY_API_VERSION = "2026-07"

    client = AdminApiClient("x.myshopify.com", "shpat_x")

    assert client.url == (
        f"{devshop.base_url}/store/x.myshopify.com/admin/api/2026-07/graphql.json"
    )
    assert "shpat_x" not in repr(client)


def test_unknown_field_raises_graphql_errors(devshop):
    domain, token = _store(devshop)

    with pytest.raises(GraphQLErrors) as caught:
        AdminApiClient(domain, token).execute("{ shop { id notAField } }")

    assert caught.value.errors[0]["extensions"]["code"] == "undefinedField"
    assert "notAField" in str(caught.value)


def test_wrong_token_raises_unauthorized_without_retrying(devshop):
    domain, _ = _store(devshop)
    sleeps = Sleeps(real=False)

    with pytest.raises(AdminApiUnauthorized) as caught:
        AdminApiClient(domain, "shpat_wrong", sleep=sleeps).execute("{ shop { id } }")

    assert caught.value.status == 401
    assert sleeps.calls == []


def test_expired_token_raises_unauthorized(devshop):
    domain = f"api-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain)
    devshop.client.knobs_set(access_token_ttl=0)
    token = devshop.client.app_install_with_token(domain)["access_token"]

    with pytest.raises(AdminApiUnauthorized):
        AdminApiClient(domain, token).execute("{ shop { id } }")


def test_throttled_query_waits_for_the_bucket_and_succeeds(devshop):
    # given a bucket of 30 points refilling at 20/s, nearly emptied by a 22-point query
    domain, token = _store(devshop)
    devshop.client.orders_create(domain, count=10, line_items=1)
    devshop.client.graphql_throttle_set(bucket_size=30, restore_rate=20)
    query = "{ orders(first: 20) { nodes { id } } }"  # requested 22, actual 12
    sleeps = Sleeps()
    client = AdminApiClient(domain, token, sleep=sleeps)
    client.execute(query)
    client.execute(query)  # 30 − 12 − 12 (+ a little refill) left: under 22

    # when the app queries again
    data = client.execute(query)

    # then the client waited (requested − available) / restoreRate, and got its data
    assert len(data["orders"]["nodes"]) == 10
    assert sleeps.calls, "the client should have waited out THROTTLED"
    assert 0 < sleeps.calls[0] <= (22 - 0) / 20
    assert client.throttle_waited_seconds == pytest.approx(sum(sleeps.calls))


def test_throttle_wait_is_bounded(devshop):
    # given a bucket that can never hold the query's cost
    domain, token = _store(devshop)
    devshop.client.graphql_throttle_set(bucket_size=5, restore_rate=1)
    sleeps = Sleeps(real=False)
    client = AdminApiClient(domain, token, max_throttle_wait=3, sleep=sleeps)

    # when the app asks for more than the bucket holds
    with pytest.raises(AdminApiThrottled) as caught:
        client.execute("{ orders(first: 10) { nodes { id } } }")

    # then it gives up once waiting would pass the bound, with the cost for the caller
    assert caught.value.cost["requestedQueryCost"] == 12
    assert sum(sleeps.calls) <= 3


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_then_succeed(devshop, status):
    domain, token = _store(devshop)
    devshop.client.admin_api_fail_next(2, status=status)
    sleeps = Sleeps(real=False)

    data = AdminApiClient(domain, token, sleep=sleeps).execute("{ shop { myshopifyDomain } }")

    assert data == {"shop": {"myshopifyDomain": domain}}
    assert len(sleeps.calls) == 2
    # exponential backoff with jitter: the second wait is drawn from a doubled range
    assert 0.25 <= sleeps.calls[0] <= 0.5
    assert 0.5 <= sleeps.calls[1] <= 1.0


def test_429_honours_retry_after(devshop):
    domain, token = _store(devshop)
    devshop.client.admin_api_fail_next(1, status=429, retry_after=2)
    sleeps = Sleeps(real=False)

    AdminApiClient(domain, token, sleep=sleeps).execute("{ shop { id } }")

    assert sleeps.calls == [2.0]


def test_server_errors_give_up_after_the_retries(devshop):
    domain, token = _store(devshop)
    devshop.client.admin_api_fail_next(10, status=503)
    sleeps = Sleeps(real=False)

    with pytest.raises(AdminApiUnavailable) as caught:
        AdminApiClient(domain, token, max_retries=2, sleep=sleeps).execute("{ shop { id } }")

    assert caught.value.status == 503
    assert len(sleeps.calls) == 2


def test_network_errors_are_retried_then_raise(settings):
    # given nothing listening where the shop should be
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = f"http://127.0.0.1:{free_port()}/store/{{shop}}"
    sleeps = Sleeps(real=False)
    client = AdminApiClient(
        "closed.myshopify.com", "shpat_x", max_retries=3, timeout=(0.5, 0.5), sleep=sleeps
    )

    with pytest.raises(AdminApiUnavailable) as caught:
        client.execute("{ shop { id } }")

    assert len(sleeps.calls) == 3
    assert "ConnectionError" in str(caught.value)


def test_user_errors_raise_with_field_message_and_code():
    data = {
        "returnApproveRequest": {
            "return": None,
            "userErrors": [
                {"field": ["input", "id"], "message": "Return not found", "code": "NOT_FOUND"}
            ],
        }
    }

    with pytest.raises(UserErrors) as caught:
        user_errors_raise(data, mutation="returnApproveRequest")

    assert caught.value.codes == ["NOT_FOUND"]
    assert caught.value.user_errors[0]["field"] == ["input", "id"]
    assert "input.id: Return not found (NOT_FOUND)" in str(caught.value)


def test_user_errors_helper_returns_the_payload_when_there_are_none():
    data = {"fulfillmentEventCreate": {"fulfillmentEvent": {"id": "gid://x/1"}, "userErrors": []}}

    payload = user_errors_raise(data, mutation="fulfillmentEventCreate")

    assert payload["fulfillmentEvent"] == {"id": "gid://x/1"}


def test_admin_client_for_shop_uses_the_stored_token(devshop, db):
    from shopapp.auth.tokens import shop_tokens_assign
    from shopapp.models import Shop

    # given a shop whose token the app stored (encrypted)
    domain = f"api-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain)
    grant = devshop.client.app_install_with_token(domain)
    now = timezone.now()
    shop = Shop(myshopify_domain=domain, is_active=True, installed_at=now)
    shop_tokens_assign(
        shop=shop,
        access_token=grant["access_token"],
        access_token_expires_at=now + timedelta(seconds=grant["expires_in"]),
        refresh_token=grant["refresh_token"],
        refresh_token_expires_at=now + timedelta(seconds=grant["refresh_token_expires_in"]),
    )
    shop.save()

    # when a job builds its client from the shop
    data = admin_client_for_shop(shop).execute("{ shop { myshopifyDomain } }")

    # then the call is made with that shop's token
    assert data["shop"]["myshopifyDomain"] == domain


def test_admin_client_for_shop_needing_reauth_raises(db):
    from shopapp.auth.services import ShopNeedsReauth
    from shopapp.models import Shop

    shop = Shop.objects.create(
        myshopify_domain="reauth.myshopify.com",
        is_active=True,
        needs_reauth=True,
        access_token_encrypted="x",
    )

    with pytest.raises(ShopNeedsReauth):
        admin_client_for_shop(shop)
