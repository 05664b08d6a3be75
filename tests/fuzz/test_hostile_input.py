"""Hostile input at every public door: the webhook intake, the app proxy pages, the OAuth
install and callback, and the session-token-guarded admin. Random headers, bodies, encodings,
sizes and parameters, some of them validly signed so the input gets past the signature into the
code behind it. The properties: never a 500 (the test client re-raises any exception a view
lets through), and never a stored row, or a page, without a valid signature.
"""

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from shopapp.models import Shop, WebhookEvent
from shopapp.proxy import app_proxy_signature
from tests.shopapp.test_embedded import make_shop
from tests.shopapp.webhook_support import fixture_bytes

pytestmark = pytest.mark.django_db

SHOP = "fuzz.myshopify.com"
BODY_LIMIT = 4096

# -- building blocks ---------------------------------------------------------------------------

# Header values arrive as latin-1 text (WSGI); everything else may be any Unicode, NUL included.
header_text = st.text(st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=60)
any_text = st.text(max_size=80)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
ORDER_KEYS = ["id", "order_id", "order", "name", "email", "line_items", "updated_at", "phone"]


def _spliced(base: bytes, at: int, junk: bytes) -> bytes:
    at %= len(base) + 1
    return base[:at] + junk + base[at:]


webhook_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(st.sampled_from(ORDER_KEYS), json_values, max_size=5).map(
        lambda value: json.dumps(value).encode()
    ),
    st.builds(
        _spliced,
        st.just(fixture_bytes("orders/create")),
        st.integers(0, 10**6),
        st.binary(min_size=1, max_size=8),
    ),
    st.sampled_from(
        [
            fixture_bytes("orders/create"),
            fixture_bytes("fulfillments/create"),
            "{}".encode("utf-16"),
            b"\xef\xbb\xbf{}",
            b'{"id": 1e400}',
            b'{"id": NaN, "email": Infinity}',
            b'{"email": "a\\u0000b", "id": 5}',
            b'{"id": "\\ud800"}',
            b"[" * 5000 + b"]" * 5000,
            b'{"a":' * 5000 + b"1" + b"}" * 5000,
            b"x" * (BODY_LIMIT + 1),
        ]
    ),
)
TOPICS = ["orders/create", "orders/updated", "fulfillments/create", "returns/request"]
TOPICS += ["customers/redact", "shop/redact", "app/uninstalled", "fulfillment_events/create"]


def _hmac_b64(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def shop(settings):
    settings.WEBHOOK_MAX_BODY_BYTES = BODY_LIMIT
    # No Shopify here: a token exchange for an unknown shop meets a closed port at once.
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = "http://127.0.0.1:9/{shop}"
    return make_shop(SHOP)


@pytest.fixture
def http():
    return Client(raise_request_exception=True)


# -- the webhook intake ------------------------------------------------------------------------


@given(
    body=webhook_bodies,
    topic=st.sampled_from(TOPICS) | header_text,
    domain=st.sampled_from([SHOP, "other.myshopify.com", SHOP.upper()]) | header_text,
    webhook_id=header_text,
    signature=st.sampled_from(["valid", "missing", "garbage", "other-secret", "hex"]),
    extra=st.dictionaries(
        st.sampled_from(
            [
                "X-Shopify-Triggered-At",
                "X-Shopify-API-Version",
                "X-Shopify-Event-Id",
                "X-Shopify-Order-Id",
                "Content-Encoding",
            ]
        ),
        header_text,
    ),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/json; charset=utf-16", ""]
    ),
)
def test_webhook_intake_never_fails_and_stores_only_what_shopify_signed(
    http, shop, body, topic, domain, webhook_id, signature, extra, content_type
):
    secret = settings.SHOPIFY_API_SECRET
    signatures = {
        "valid": _hmac_b64(body, secret),
        "missing": None,
        "garbage": "not-a-signature",
        "other-secret": _hmac_b64(body, secret + "x"),
        "hex": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": domain,
        "X-Shopify-Webhook-Id": webhook_id,
        **extra,
    }
    if signatures[signature] is not None:
        headers["X-Shopify-Hmac-Sha256"] = signatures[signature]
    before = WebhookEvent.objects.count()

    # generic(): the bytes as they are (post() would re-encode them to the declared charset).
    response = http.generic(
        "POST", "/webhooks/", data=body, content_type=content_type, headers=headers
    )

    assert response.status_code < 500 or response.status_code == 503
    stored = WebhookEvent.objects.count() - before
    assert stored in (0, 1)
    if signature != "valid":
        assert stored == 0
        assert response.status_code in (400, 401, 413)
    if stored:
        assert response.status_code == 200


# -- the app proxy pages -----------------------------------------------------------------------

PROXY_PATHS = ["/proxy/track", "/proxy/returns", "/proxy/track/abc", "/proxy/returns/abc"]
PROXY_PATHS += ["/proxy/returns/abc/label", "/proxy/track/" + "x" * 300]
FORM_KEYS = ["order", "contact", "lookup", "step", "form_token", "tracking_number", "state"]
FORM_KEYS += ["resolution", "quantity-1", "reason-1", "note-1", "variant-1", "locale"]
RESERVED = ["shop", "signature", "timestamp", "logged_in_customer_id", "path_prefix"]


@given(
    path=st.sampled_from(PROXY_PATHS),
    method=st.sampled_from(["GET", "POST"]),
    params=st.lists(
        st.tuples(st.sampled_from(FORM_KEYS + RESERVED) | any_text, any_text), max_size=5
    ),
    signed=st.booleans(),
    customer=st.sampled_from(["", "42"]) | any_text,
    skew=st.sampled_from([0, 0, -3600, 3600]),
    form=st.dictionaries(st.sampled_from(FORM_KEYS) | any_text, any_text, max_size=8),
    raw_query=st.sampled_from(["", "%ZZ=%FF", "a=%00", "&&==&", "shop"]),
)
def test_proxy_pages_never_fail_and_answer_only_signed_requests(
    http, shop, path, method, params, signed, customer, skew, form, raw_query
):
    pairs = list(params)
    if signed:
        pairs += [
            ("shop", SHOP),
            ("logged_in_customer_id", customer),
            ("path_prefix", "/apps/postpurchase"),
            ("timestamp", str(int(time.time()) + skew)),
        ]
        pairs.append(("signature", app_proxy_signature(pairs, secret=settings.SHOPIFY_API_SECRET)))
    query = urlencode(pairs) + (f"&{raw_query}" if raw_query else "")
    url = f"{path}?{query}"

    response = http.get(url) if method == "GET" else http.post(url, data=form)

    assert response.status_code < 500
    if not signed:
        assert response.status_code in (403, 404)


# -- install and the OAuth callback -----------------------------------------------------------

CALLBACK_KEYS = ["code", "hmac", "shop", "state", "timestamp", "host"]


def _callback_hmac(params: dict[str, str]) -> str:
    message = "&".join(sorted(f"{k}={v}" for k, v in params.items() if k != "hmac"))
    return hmac.new(
        settings.SHOPIFY_API_SECRET.encode(), message.encode(), hashlib.sha256
    ).hexdigest()


@given(
    params=st.dictionaries(st.sampled_from(CALLBACK_KEYS) | any_text, any_text, max_size=7),
    shop_param=st.sampled_from([SHOP, "new.myshopify.com"]) | any_text,
    fresh=st.booleans(),
    signed=st.booleans(),
)
def test_oauth_callback_never_fails_and_installs_nothing_unasked(
    http, shop, params, shop_param, fresh, signed
):
    params = {**params, "shop": shop_param}
    if fresh:
        params["timestamp"] = str(int(time.time()))
    if signed:
        params["hmac"] = _callback_hmac(params)
    shops_before = list(Shop.objects.values_list("myshopify_domain", "access_token_encrypted"))

    response = http.get("/auth/callback", params)

    assert response.status_code < 500 or response.status_code == 503
    assert response.status_code != 302
    after = list(Shop.objects.values_list("myshopify_domain", "access_token_encrypted"))
    assert after == shops_before


@given(shop_param=any_text | st.sampled_from([SHOP, "New-Shop.myshopify.com"]))
def test_install_never_fails(http, shop, shop_param):
    response = http.get("/auth/install", {"shop": shop_param})

    assert response.status_code in (302, 400, 429)


# -- the embedded admin behind session tokens -------------------------------------------------

ADMIN_PATHS = ["/app/", "/app/orders", "/app/orders/1", "/app/orders/delayed", "/app/returns/"]
ADMIN_PATHS += ["/app/returns/1", "/app/notifications/", "/app/settings", "/app/privacy"]
claim_values = st.one_of(
    st.sampled_from(
        [
            f"https://{SHOP}",
            f"https://{SHOP}/admin",
            "https://unknown.myshopify.com",
            "https://unknown.myshopify.com/admin",
            "javascript:alert(1)",
        ]
    ),
    st.integers(),
    st.floats(),
    any_text,
    st.none(),
    st.lists(st.integers(), max_size=2),
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(claims: dict) -> str:
    """An HS256 JWT signed with the app's secret, claims of any JSON type (PyJWT's encoder
    refuses some, which is what a hostile signer would not do)."""
    head = _b64url(b'{"alg":"HS256","typ":"JWT"}')
    body = _b64url(json.dumps(claims).encode())
    mac = hmac.new(
        settings.SHOPIFY_API_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256
    ).digest()
    return f"{head}.{body}.{_b64url(mac)}"


session_tokens = st.one_of(
    header_text,
    header_text.map(lambda text: "Bearer " + text),
    st.fixed_dictionaries(
        {},
        optional={
            "iss": claim_values,
            "dest": claim_values,
            "aud": st.just(settings.SHOPIFY_API_KEY) | claim_values,
            "exp": st.just(int(time.time()) + 600) | claim_values,
            "nbf": st.just(int(time.time()) - 5) | claim_values,
            "sid": claim_values,
            "sub": claim_values,
        },
    ).map(lambda claims: "Bearer " + _token(claims)),
)


@given(
    path=st.sampled_from(ADMIN_PATHS),
    method=st.sampled_from(["GET", "POST"]),
    authorization=st.none() | session_tokens,
    id_token=st.none() | any_text,
    shop_param=st.none() | any_text,
)
def test_admin_never_fails_and_shows_nothing_without_a_valid_session_token(
    http, shop, path, method, authorization, id_token, shop_param
):
    query = {k: v for k, v in {"id_token": id_token, "shop": shop_param}.items() if v is not None}
    headers = {"Authorization": authorization} if authorization is not None else {}

    if method == "GET":
        response = http.get(path, query, headers=headers)
    else:
        response = http.post(f"{path}?{urlencode(query)}", {}, headers=headers)

    # 503: Shopify (here, a closed port) did not answer a token exchange; said so, not a crash.
    assert response.status_code < 500 or response.status_code == 503
    if response.status_code == 200:
        # Only a token Shopify could have signed, for the installed shop, opens a page.
        assert authorization is not None or id_token is not None
        assert SHOP in response["Content-Security-Policy"]
