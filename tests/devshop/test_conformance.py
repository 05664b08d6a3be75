"""Conformance: the devshop signs as Shopify does, and the app verifies as Shopify's own code does.

Two references, independent of our code:
- Shopify's documented test vectors (secret "hush"): the OAuth callback example and the two
  app proxy examples (reference §1 and §5);
- Shopify's official Node library, ``@shopify/shopify-api@12.3.0``, run as an oracle by
  ``scripts/shopify-oracle/oracle.mjs`` (installed by ``scripts/setup-extras.sh``). It checks
  what the devshop really sends: a delivered webhook's bytes and headers, a minted session token,
  an app proxy request and an OAuth callback.
"""

import base64
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import shopify
from django.conf import settings
from django.http import QueryDict
from django.test import Client

from devshop.oauth import oauth_query_sign
from devshop.session_tokens import session_token_mint
from devshop.storefront import app_proxy_signature as devshop_app_proxy_signature
from devshop.webhooks import webhook_hmac
from shopapp.models import WebhookEvent
from shopapp.proxy import app_proxy_signature_valid
from tests.conftest import REPO, need, start_devshop
from tests.devshop.capture_server import CaptureServer

ORACLE_DIR = REPO / "scripts" / "shopify-oracle"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify" / "webhooks"
TIMEOUT = 10

# Shopify's documented vectors.
OAUTH_DOCS = {
    "code": "0907a61c0c8d55e99db179b68161bc00",
    "shop": "some-shop.myshopify.com",
    "state": "0.6784241404160823",
    "timestamp": "1337178173",
}
OAUTH_DOCS_HMAC = "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
PYTHON_LIB_OAUTH = {
    "shop": "some-shop.myshopify.com",
    "code": "a94a110d86d2452eb3e2af4cfb8a3828",
    "timestamp": "1337178173",
}
PYTHON_LIB_OAUTH_HMAC = "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"
PROXY_DOCS = [
    ("extra", "1"),
    ("extra", "2"),
    ("shop", "shop-name.myshopify.com"),
    ("logged_in_customer_id", "1"),
    ("path_prefix", "/apps/awesome_reviews"),
    ("timestamp", "1317327555"),
]
PROXY_DOCS_SIGNATURE = "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"
PROXY_DOCS_NO_CUSTOMER = [(k, "" if k == "logged_in_customer_id" else v) for k, v in PROXY_DOCS]
PROXY_DOCS_NO_CUSTOMER_SIGNATURE = (
    "e072b6d7e6622d85912a5214b860d3100dc1e73d9bc29f43796ac8c9ff8093cb"
)


# ------------------------------------------------------------------------------------------
# Documented vectors: no Node needed.


def test_devshop_oauth_signature_matches_the_docs_vector():
    assert oauth_query_sign(OAUTH_DOCS, "hush") == OAUTH_DOCS_HMAC
    assert oauth_query_sign(PYTHON_LIB_OAUTH, "hush") == PYTHON_LIB_OAUTH_HMAC


def test_app_oauth_verifier_accepts_the_docs_vector():
    # The app checks OAuth callbacks with ShopifyAPI's Session.validate_hmac.
    shopify.Session.setup(api_key="client-id", secret="hush")
    assert shopify.Session.validate_hmac({**OAUTH_DOCS, "hmac": OAUTH_DOCS_HMAC})
    assert not shopify.Session.validate_hmac({**OAUTH_DOCS, "state": "1", "hmac": OAUTH_DOCS_HMAC})


@pytest.mark.parametrize(
    ("pairs", "signature"),
    [
        (PROXY_DOCS, PROXY_DOCS_SIGNATURE),
        (PROXY_DOCS_NO_CUSTOMER, PROXY_DOCS_NO_CUSTOMER_SIGNATURE),
    ],
    ids=["customer", "no-customer"],
)
def test_app_proxy_signatures_match_the_docs_vectors(pairs, signature):
    # the devshop signs them as the docs do
    assert devshop_app_proxy_signature(pairs, "hush") == signature
    # and the app accepts them
    assert app_proxy_signature_valid([*pairs, ("signature", signature)], secret="hush")


# ------------------------------------------------------------------------------------------
# Shopify's own library as the oracle.


@pytest.fixture(scope="module")
def oracle():
    """Run cases through @shopify/shopify-api; returns one result per case."""
    node = shutil.which("node")
    if node is None:
        need("node is not installed (the Shopify oracle runs on Node 20)")
    if not (ORACLE_DIR / "node_modules" / "@shopify" / "shopify-api").is_dir():
        need("the Shopify oracle is not installed: run scripts/setup-extras.sh")

    def run(cases: list[dict]) -> list[dict]:
        for case in cases:
            case.setdefault("api_key", settings.SHOPIFY_API_KEY)
            case.setdefault("secret", settings.SHOPIFY_API_SECRET)
        completed = subprocess.run(
            [node, str(ORACLE_DIR / "oracle.mjs")],
            input=json.dumps({"cases": cases}),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ORACLE_DIR,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        return json.loads(completed.stdout)["results"]

    return run


def query_object(pairs: list[tuple[str, str]]) -> dict:
    """A query as the Node library takes it: repeated keys become arrays."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return {key: values if len(values) > 1 else values[0] for key, values in grouped.items()}


def test_oracle_accepts_the_docs_vectors(oracle):
    # The oracle agrees with our reading of the documented vectors (and rejects a forgery).
    results = oracle(
        [
            {
                "kind": "validate_hmac",
                "secret": "hush",
                "now": 1337178173,
                "query": {**OAUTH_DOCS, "hmac": OAUTH_DOCS_HMAC},
            },
            {
                "kind": "validate_hmac",
                "secret": "hush",
                "now": 1317327555,
                "signator": "appProxy",
                "query": query_object([*PROXY_DOCS, ("signature", PROXY_DOCS_SIGNATURE)]),
            },
            {
                "kind": "validate_hmac",
                "secret": "hush",
                "now": 1317327555,
                "signator": "appProxy",
                "query": query_object(
                    [*PROXY_DOCS_NO_CUSTOMER, ("signature", PROXY_DOCS_NO_CUSTOMER_SIGNATURE)]
                ),
            },
            {
                "kind": "validate_hmac",
                "secret": "hush",
                "now": 1317327555,
                "signator": "appProxy",
                "query": query_object(
                    [*PROXY_DOCS, ("signature", PROXY_DOCS_NO_CUSTOMER_SIGNATURE)]
                ),
            },
        ]
    )
    assert [r.get("valid") for r in results] == [True, True, True, False]


@pytest.fixture(scope="module")
def capture():
    server = CaptureServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(capture, tmp_path_factory):
    """A devshop whose app is the capture server: what it sends is read byte for byte."""
    server = start_devshop(tmp_path_factory.mktemp("devshop-conformance"), {"APP_URL": capture.url})
    server.client.knobs_set(webhook_delivery_paused=True)
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
def shop(store, capture):
    capture.reset()
    domain = f"cf-{uuid.uuid4().hex[:10]}.myshopify.com"
    store.client.shop_create(domain)
    store.client.app_install(domain)
    return domain


@pytest.mark.parametrize("fixture", ["orders__create", "fulfillments__update", "returns__request"])
def test_a_delivered_webhook_validates_in_shopifys_library_and_in_the_app(
    oracle, store, capture, shop, fixture, db
):
    # given a webhook the devshop really sent, captured byte for byte
    topic = fixture.replace("__", "/")
    payload = json.loads((FIXTURES / f"{fixture}.json").read_text())
    store.client.webhook_emit(shop, topic, payload)
    store.client.webhooks_flush()
    [sent] = capture.received(x_shopify_shop_domain=shop)
    headers = dict(sent.headers)

    # when Shopify's library validates it (and a copy with one byte changed)
    tampered = sent.body.replace(b'"id":', b'"id": ', 1)
    results = oracle(
        [
            {"kind": "webhook", "raw_body_b64": base64.b64encode(body).decode(), "headers": headers}
            for body in (sent.body, tampered)
        ]
    )

    # then the original is valid, with the topic, shop, version and id Shopify's code reads
    genuine, forged = (r["result"] for r in results)
    assert genuine["valid"] is True, genuine
    assert genuine["topic"] == topic.upper().replace("/", "_")
    assert genuine["domain"] == shop
    assert genuine["apiVersion"] == settings.SHOPIFY_API_VERSION
    assert genuine["webhookId"] == sent.header("X-Shopify-Webhook-Id")
    assert forged == {"valid": False, "reason": "invalid_hmac"}

    # and the app's /webhooks/ accepts the same bytes and headers, and stores the event
    response = Client().post(
        "/webhooks/",
        data=sent.body,
        content_type="application/json",
        **{
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in sent.headers
            if name.lower().startswith("x-shopify-")
        },
    )
    assert response.status_code == 200
    assert WebhookEvent.objects.filter(webhook_id=sent.header("X-Shopify-Webhook-Id")).exists()


def test_devshop_webhook_hmac_agrees_with_the_oracle_on_unusual_bodies(oracle):
    bodies = [b"{}", '{"note":"Grüße ✓ \\u00e9"}'.encode(), b'{"a":1}\n']
    secret = "conformance-secret"
    results = oracle(
        [
            {
                "kind": "webhook",
                "secret": secret,
                "raw_body_b64": base64.b64encode(body).decode(),
                "headers": {
                    "X-Shopify-Hmac-Sha256": webhook_hmac(body, secret),
                    "X-Shopify-Topic": "orders/create",
                    "X-Shopify-Shop-Domain": "a.myshopify.com",
                    "X-Shopify-API-Version": "2026-10",
                    "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                },
            }
            for body in bodies
        ]
    )
    assert [r["result"]["valid"] for r in results] == [True, True, True]


def test_session_tokens_minted_by_the_devshop_validate_in_shopifys_library(oracle, store, shop):
    # given tokens minted by the devshop: by its server, and by the module directly
    from_server = store.client.session_token(shop)
    from_module = session_token_mint(
        shop_domain=shop,
        user_id=7,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )
    wrong_audience = session_token_mint(
        shop_domain=shop, secret=settings.SHOPIFY_API_SECRET, audience="another-app"
    )
    expired = session_token_mint(
        shop_domain=shop,
        now=time.time() - 120,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )

    # when Shopify's library decodes them
    results = oracle(
        [
            {"kind": "session_token", "token": token}
            for token in (from_server, from_module, wrong_audience, expired)
        ]
    )

    # then the genuine ones are valid, with Shopify's claims, and the others refused
    server_ok, module_ok, audience_bad, expired_bad = results
    for result, user in ((server_ok, "1"), (module_ok, "7")):
        assert result["ok"] is True, result
        claims = result["payload"]
        assert claims["iss"] == f"https://{shop}/admin"
        assert claims["dest"] == f"https://{shop}"
        assert claims["aud"] == settings.SHOPIFY_API_KEY
        assert claims["sub"] == user
        assert claims["exp"] - claims["iat"] == 60
        assert {"nbf", "jti", "sid"} <= set(claims)
    assert audience_bad["ok"] is False
    assert "invalid API key" in audience_bad["error"]
    assert expired_bad["ok"] is False

    # and the app's own verifier accepts the genuine ones too
    from shopapp.auth.session import session_token_decode

    assert session_token_decode(from_server)["dest"] == f"https://{shop}"
    assert session_token_decode(from_module)["sub"] == "7"


def test_an_app_proxy_request_signed_by_the_devshop_validates_in_shopifys_library(
    oracle, store, capture, shop
):
    # given a storefront request the devshop proxied to the app, with repeated parameters
    with requests.Session() as shopper:
        shopper.post(
            store.client.storefront_url(shop, "/account/login"),
            data={"customer_id_entered": "8675309"},
            timeout=TIMEOUT,
        )
        shopper.get(
            store.client.app_proxy_url(shop, "track") + "?order=%231001&tag=a&tag=b&q=x+y",
            timeout=TIMEOUT,
        )
    [received] = capture.received()
    pairs = received.query_pairs
    timestamp = int(dict(pairs)["timestamp"])
    tampered = [(k, "other.myshopify.com" if k == "shop" else v) for k, v in pairs]

    # when Shopify's library checks it with its app proxy signator
    results = oracle(
        [
            {
                "kind": "validate_hmac",
                "signator": "appProxy",
                "now": timestamp,
                "query": query_object(query),
            }
            for query in (pairs, tampered)
        ]
    )

    # then it is valid, a tampered copy is not, and the app agrees on both
    assert [r.get("valid") for r in results] == [True, False], results
    assert dict(pairs)["logged_in_customer_id"] == "8675309"
    assert app_proxy_signature_valid(
        QueryDict(received.query_string), secret=settings.SHOPIFY_API_SECRET
    )
    assert not app_proxy_signature_valid(tampered, secret=settings.SHOPIFY_API_SECRET)


def test_an_oauth_callback_signed_by_the_devshop_validates_in_shopifys_library(
    oracle, store, capture, shop
):
    # given the redirect the devshop's consent step sends back to the app
    response = requests.get(
        f"{store.client.shop_url(shop)}/admin/oauth/authorize",
        params={
            "client_id": settings.SHOPIFY_API_KEY,
            "redirect_uri": f"{capture.url}/auth/callback",
            "state": uuid.uuid4().hex,
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert response.status_code == 302, response.text
    query = dict(parse_qsl(urlsplit(response.headers["Location"]).query, keep_blank_values=True))

    # when Shopify's library (and ShopifyAPI, which the app uses) validate it
    [result] = oracle([{"kind": "validate_hmac", "query": query, "now": int(query["timestamp"])}])
    shopify.Session.setup(api_key=settings.SHOPIFY_API_KEY, secret=settings.SHOPIFY_API_SECRET)

    # then both accept it
    assert result == {"ok": True, "valid": True}
    assert shopify.Session.validate_hmac(query)
