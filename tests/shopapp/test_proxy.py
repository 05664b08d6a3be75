"""shopapp.proxy: the app-proxy signature and the guard on /proxy/ views, with real signatures
computed here and Shopify's documented vectors (shopify.dev, app proxies; secret "hush")."""

import hashlib
import hmac
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.http import JsonResponse, QueryDict
from django.test import Client
from django.urls import path
from django.utils import timezone

from shopapp.auth.services import shop_access_token_get
from shopapp.auth.tokens import shop_tokens_assign
from shopapp.models import Shop
from shopapp.proxy import app_proxy_required, app_proxy_signature, app_proxy_signature_valid

SECRET = "test-proxy-secret"

DOCS_QUERY = (
    "extra=1&extra=2&shop=shop-name.myshopify.com&logged_in_customer_id=1"
    "&path_prefix=%2Fapps%2Fawesome_reviews&timestamp=1317327555"
)
DOCS_SIGNATURE = "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"
DOCS_QUERY_NO_CUSTOMER = DOCS_QUERY.replace("logged_in_customer_id=1", "logged_in_customer_id=")
DOCS_SIGNATURE_NO_CUSTOMER = "e072b6d7e6622d85912a5214b860d3100dc1e73d9bc29f43796ac8c9ff8093cb"


@app_proxy_required
def whoami(request):
    return JsonResponse(
        {"shop": request.shop.myshopify_domain, "customer": request.logged_in_customer_id}
    )


@app_proxy_required
def needs_admin_api(request):
    # What any page does when it must read Shopify: ask for the shop's token.
    return JsonResponse({"token_length": len(shop_access_token_get(shop=request.shop))})


urlpatterns = [path("proxy/whoami", whoami), path("proxy/needs-admin-api", needs_admin_api)]


def signed(pairs: list[tuple[str, str]], secret: str = SECRET) -> str:
    """A query string signed as Shopify signs it, computed independently of shopapp.proxy."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    message = "".join(sorted(f"{k}={','.join(v)}" for k, v in grouped.items()))
    signature = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return urlencode([*pairs, ("signature", signature)])


def shopify_params(shop: str, customer: str = "", timestamp: int | None = None) -> list:
    return [
        ("shop", shop),
        ("logged_in_customer_id", customer),
        ("path_prefix", "/apps/postpurchase"),
        ("timestamp", str(timestamp if timestamp is not None else int(time.time()))),
    ]


@pytest.fixture
def shop(db):
    return Shop.objects.create(myshopify_domain="proxy-test.myshopify.com", is_active=True)


@pytest.fixture
def browser(settings):
    settings.SHOPIFY_API_SECRET = SECRET
    # CSRF enforced as in production: the guard must exempt proxied POSTs (no cookies there).
    return Client(enforce_csrf_checks=True)


# The signature itself.


@pytest.mark.parametrize(
    ("query", "signature"),
    [(DOCS_QUERY, DOCS_SIGNATURE), (DOCS_QUERY_NO_CUSTOMER, DOCS_SIGNATURE_NO_CUSTOMER)],
)
def test_docs_vectors_validate(query, signature):
    querydict = QueryDict(f"{query}&signature={signature}")
    assert app_proxy_signature(querydict, secret="hush") == signature
    assert app_proxy_signature_valid(querydict, secret="hush")


def test_docs_vector_as_pairs_validates():
    pairs = [*QueryDict(DOCS_QUERY).lists()]
    flat = [(key, value) for key, values in pairs for value in values]
    assert app_proxy_signature_valid([*flat, ("signature", DOCS_SIGNATURE)], secret="hush")


@pytest.mark.parametrize(
    "mutation",
    [
        lambda q: q.replace("extra=1&extra=2", "extra=2&extra=1"),  # value order is signed
        lambda q: q.replace("shop-name", "other-shop"),
        lambda q: q + "&added=1",
        lambda q: q.replace("timestamp=1317327555", "timestamp=1317327556"),
    ],
)
def test_any_change_breaks_the_docs_signature(mutation):
    assert not app_proxy_signature_valid(
        QueryDict(f"{mutation(DOCS_QUERY)}&signature={DOCS_SIGNATURE}"), secret="hush"
    )


def test_a_signature_wrong_in_its_last_character_only_is_invalid():
    # A comparison of a prefix of the signature would let this through.
    flipped = DOCS_SIGNATURE[:-1] + ("0" if DOCS_SIGNATURE[-1] != "0" else "1")

    assert not app_proxy_signature_valid(
        QueryDict(f"{DOCS_QUERY}&signature={flipped}"), secret="hush"
    )


def test_wrong_secret_missing_or_repeated_signature_are_invalid():
    assert not app_proxy_signature_valid(
        QueryDict(f"{DOCS_QUERY}&signature={DOCS_SIGNATURE}"), secret="not-hush"
    )
    assert not app_proxy_signature_valid(QueryDict(DOCS_QUERY), secret="hush")
    assert not app_proxy_signature_valid(
        QueryDict(f"{DOCS_QUERY}&signature={DOCS_SIGNATURE}&signature={DOCS_SIGNATURE}"),
        secret="hush",
    )


# The guard on views.

pytestmark_urls = pytest.mark.urls("tests.shopapp.test_proxy")


@pytestmark_urls
def test_signed_fresh_request_reaches_the_view(shop, browser):
    query = signed([("order", "1001"), *shopify_params(shop.myshopify_domain, "42")])

    response = browser.get(f"/proxy/whoami?{query}")

    assert response.status_code == 200
    assert response.json() == {"shop": shop.myshopify_domain, "customer": 42}


@pytestmark_urls
def test_nobody_logged_in_is_none(shop, browser):
    response = browser.get(f"/proxy/whoami?{signed(shopify_params(shop.myshopify_domain))}")

    assert response.json()["customer"] is None


@pytestmark_urls
def test_signed_post_passes_without_a_csrf_cookie(shop, browser):
    query = signed(shopify_params(shop.myshopify_domain, "42"))

    response = browser.post(f"/proxy/whoami?{query}", data={"reason": "too small"})

    assert response.status_code == 200


@pytestmark_urls
@pytest.mark.parametrize(
    "make_query",
    [
        pytest.param(lambda d: urlencode(shopify_params(d)), id="missing-signature"),
        pytest.param(lambda d: signed(shopify_params(d), secret="wrong"), id="wrong-secret"),
        pytest.param(
            lambda d: signed(shopify_params(d)).replace(
                "logged_in_customer_id=", "logged_in_customer_id=7"
            ),
            id="tampered-customer",
        ),
        pytest.param(
            lambda d: signed(shopify_params(d, timestamp=int(time.time()) - 91)), id="stale"
        ),
        pytest.param(
            lambda d: signed(shopify_params(d, timestamp=int(time.time()) + 91)), id="future"
        ),
        pytest.param(lambda d: signed(shopify_params("unknown.myshopify.com")), id="unknown-shop"),
        pytest.param(
            lambda d: signed([*shopify_params(d), ("shop", "other.myshopify.com")]),
            id="repeated-shop",
        ),
        pytest.param(
            lambda d: signed([p for p in shopify_params(d) if p[0] != "timestamp"]),
            id="missing-timestamp",
        ),
    ],
)
def test_rejections_answer_a_generic_403(shop, browser, make_query):
    response = browser.get(f"/proxy/whoami?{make_query(shop.myshopify_domain)}")

    assert response.status_code == 403
    assert response.content == b"Forbidden"


def _resplit(shopify_signed: str, into: list[tuple[str, str]]) -> str:
    """``into`` with the signature Shopify gave ``shopify_signed``: the same signed text split
    at other places (Shopify joins the sorted pairs with no separator)."""
    signature = QueryDict(shopify_signed)["signature"]
    return urlencode([*into, ("signature", signature)])


@pytestmark_urls
def test_a_signed_query_split_differently_is_refused(shop, browser):
    # given the query Shopify signed for an anonymous shopper who typed a crafted parameter
    domain, now = shop.myshopify_domain, int(time.time())
    honest = signed([("a", "1logged_in_customer_id=42"), *shopify_params(domain, timestamp=now)])
    # when the same signed text is cut elsewhere: `a=1` and a customer id of the attacker's
    params = dict(shopify_params(domain, timestamp=now))
    forged = _resplit(
        honest,
        [
            ("a", "1"),
            ("logged_in_customer_id", "42logged_in_customer_id="),
            *[(k, v) for k, v in params.items() if k != "logged_in_customer_id"],
        ],
    )
    assert app_proxy_signature_valid(QueryDict(forged), secret=SECRET)

    # then neither the forged nor the crafted query reaches the view
    assert browser.get(f"/proxy/whoami?{forged}").status_code == 403
    assert browser.get(f"/proxy/whoami?{honest}").status_code == 403


@pytestmark_urls
@pytest.mark.parametrize(
    "extra",
    [
        ("next", "/x?shop=other.myshopify.com"),
        ("q", "timestamp=1"),
        ("xlogged_in_customer_id", "1"),
        ("path_prefix_x", "1"),
    ],
)
def test_reserved_names_inside_other_parameters_are_refused(shop, browser, extra):
    query = signed([extra, *shopify_params(shop.myshopify_domain)])

    assert browser.get(f"/proxy/whoami?{query}").status_code == 403


@pytestmark_urls
@pytest.mark.parametrize("customer", ["42x", "-1", "٤٢", " 42"])
def test_a_customer_id_that_is_not_digits_is_refused(shop, browser, customer):
    query = signed(shopify_params(shop.myshopify_domain, customer))

    assert browser.get(f"/proxy/whoami?{query}").status_code == 403


@pytestmark_urls
def test_an_uninstalled_shop_is_refused(shop, browser):
    shop.is_active = False
    shop.save()

    response = browser.get(f"/proxy/whoami?{signed(shopify_params(shop.myshopify_domain))}")

    assert response.status_code == 403


@pytestmark_urls
def test_the_tolerance_is_a_setting(shop, browser, settings):
    settings.SHOPIFY_APP_PROXY_TIMESTAMP_TOLERANCE_SECONDS = 300
    query = signed(shopify_params(shop.myshopify_domain, timestamp=int(time.time()) - 200))

    response = browser.get(f"/proxy/whoami?{query}")

    assert response.status_code == 200


def test_the_guard_keeps_the_view_name():
    assert whoami.__name__ == "whoami"


@pytestmark_urls
@pytest.mark.parametrize("needs_reauth", [False, True], ids=["no-token", "needs-reauth"])
def test_a_page_that_needs_shopify_without_a_usable_token_answers_503_not_500(
    shop, browser, needs_reauth, caplog
):
    # Installed as far as the proxy can tell (an active Shop), but no token the app can use:
    # an uninstall not delivered yet, or a refresh token Shopify refused.
    if needs_reauth:
        past = timezone.now() - timedelta(hours=1)
        shop_tokens_assign(
            shop=shop,
            access_token="shpat_expired",
            access_token_expires_at=past,
            refresh_token="shprt_refused",
            refresh_token_expires_at=past,
        )
        shop.needs_reauth = True
        shop.save()

    response = browser.get(
        f"/proxy/needs-admin-api?{signed(shopify_params(shop.myshopify_domain))}"
    )

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "not available right now" in response.content.decode()
    reasons = [r.reason for r in caplog.records if r.msg == "shopapp.proxy.token_unavailable"]
    assert reasons == (
        ["waiting for the merchant to open the app"] if needs_reauth else ["not installed"]
    )
