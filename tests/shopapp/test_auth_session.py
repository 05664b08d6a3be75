"""session_token_required on a test-only view: every rejection path with real JWTs."""

import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.http import HttpResponse
from django.urls import include, path

from shopapp.auth.session import RETRY_HEADER, session_token_required
from shopapp.auth.tokens import shop_tokens_assign
from shopapp.models import Shop


@session_token_required
def probe(request):
    return HttpResponse(f"shop={request.shop.myshopify_domain}")


urlpatterns = [
    path("auth/", include("shopapp.auth.urls")),
    path("app/probe", probe),
]

pytestmark = pytest.mark.urls(__name__)

DOMAIN = "embedded.myshopify.com"


def mint(
    settings,
    *,
    domain: str = DOMAIN,
    secret: str | None = None,
    aud: str | None = None,
    iss_domain: str | None = None,
    offset: int = 0,
    lifetime: int = 60,
    drop: tuple[str, ...] = (),
    algorithm: str = "HS256",
) -> str:
    now = int(time.time()) + offset
    claims = {
        "iss": f"https://{iss_domain or domain}/admin",
        "dest": f"https://{domain}",
        "aud": aud or settings.SHOPIFY_API_KEY,
        "sub": "42",
        "exp": now + lifetime,
        "nbf": now,
        "iat": now,
        "jti": "5b1e3c1e-2f0c-4b8a-9a53-7b7c3c1f2d10",
        "sid": "abc123",
    }
    for claim in drop:
        claims.pop(claim)
    return jwt.encode(claims, secret or settings.SHOPIFY_API_SECRET, algorithm=algorithm)


@pytest.fixture
def installed_shop(db):
    shop = Shop(myshopify_domain=DOMAIN, is_active=True)
    from datetime import timedelta

    from django.utils import timezone

    shop_tokens_assign(
        shop=shop,
        access_token="shpat_test",
        access_token_expires_at=timezone.now() + timedelta(hours=1),
        refresh_token="shprt_test",
        refresh_token_expires_at=timezone.now() + timedelta(days=90),
    )
    shop.save()
    return shop


def test_valid_bearer_token_sets_request_shop_and_csp(client, settings, installed_shop):
    response = client.get("/app/probe", HTTP_AUTHORIZATION="Bearer " + mint(settings))

    assert response.status_code == 200
    assert response.content == b"shop=embedded.myshopify.com"
    assert response["Content-Security-Policy"] == (
        "frame-ancestors https://embedded.myshopify.com https://admin.shopify.com;"
    )
    assert "X-Frame-Options" not in response


def test_valid_id_token_on_a_document_load(client, settings, installed_shop):
    response = client.get("/app/probe", {"id_token": mint(settings), "shop": DOMAIN})

    assert response.status_code == 200
    assert response.content == b"shop=embedded.myshopify.com"


def test_shop_comes_from_the_token_not_the_query(client, settings, installed_shop, db):
    Shop.objects.create(myshopify_domain="other.myshopify.com", is_active=True)
    response = client.get(
        "/app/probe?shop=other.myshopify.com", HTTP_AUTHORIZATION="Bearer " + mint(settings)
    )

    assert response.content == b"shop=embedded.myshopify.com"


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("forged", {"secret": "another-secret-of-sufficient-length-000"}),
        ("wrong_aud", {"aud": "someone-elses-app"}),
        ("expired", {"offset": -120}),
        ("not_yet_valid", {"offset": 60}),
        ("mismatched_hosts", {"iss_domain": "attacker.myshopify.com"}),
        ("no_exp", {"drop": ("exp",)}),
        ("no_nbf", {"drop": ("nbf",)}),
        ("no_sid", {"drop": ("sid",)}),
        ("hs512", {"algorithm": "HS512"}),
    ],
)
def test_invalid_bearer_token_gets_401_with_retry_header(
    client, settings, installed_shop, case, kwargs
):
    response = client.get("/app/probe", HTTP_AUTHORIZATION="Bearer " + mint(settings, **kwargs))

    assert response.status_code == 401, case
    assert response[RETRY_HEADER] == "1"
    assert "X-Frame-Options" not in response


def test_expired_within_leeway_is_accepted(client, settings, installed_shop):
    # exp 5 s ago: inside the 10 s leeway App Bridge's clock skew needs
    token = mint(settings, offset=-65)
    assert client.get("/app/probe", HTTP_AUTHORIZATION="Bearer " + token).status_code == 200


def test_non_bearer_authorization_gets_401(client, settings, installed_shop):
    response = client.get("/app/probe", HTTP_AUTHORIZATION="Token " + mint(settings))

    assert response.status_code == 401
    assert response[RETRY_HEADER] == "1"


def test_dest_that_is_not_a_shop_gets_401(client, settings, installed_shop):
    token = mint(settings, domain="evil.example.com")
    assert client.get("/app/probe", HTTP_AUTHORIZATION="Bearer " + token).status_code == 401


def test_invalid_id_token_on_a_document_load_bounces(client, settings, installed_shop):
    stale = mint(settings, offset=-600)
    response = client.get(
        "/app/probe",
        {"id_token": stale, "shop": DOMAIN, "host": "YWRtaW4", "embedded": "1", "page": "2"},
    )

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/auth/session-token"
    query = parse_qs(location.query)
    assert query["shop"] == [DOMAIN]
    assert query["embedded"] == ["1"]
    reload_url = urlsplit(query["shopify-reload"][0])
    assert reload_url.path == "/app/probe"
    assert "id_token" not in parse_qs(reload_url.query)
    assert parse_qs(reload_url.query)["page"] == ["2"]
    assert response["Content-Security-Policy"].startswith(
        "frame-ancestors https://embedded.myshopify.com "
    )


def test_document_load_without_any_token_bounces(client, installed_shop):
    response = client.get("/app/probe", {"shop": DOMAIN})

    assert response.status_code == 302
    assert response["Location"].startswith("/auth/session-token?")


def test_post_with_id_token_in_the_url_only_is_refused(client, settings, installed_shop):
    response = client.post(f"/app/probe?id_token={mint(settings)}")

    assert response.status_code == 401
    assert response[RETRY_HEADER] == "1"


def test_post_with_bearer_needs_no_csrf_cookie(settings, installed_shop):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    response = csrf_client.post("/app/probe", HTTP_AUTHORIZATION="Bearer " + mint(settings))

    assert response.status_code == 200


def test_first_load_of_an_unknown_shop_runs_the_token_exchange(client, devshop, db):
    # given a store where the merchant just installed the app (managed install)
    domain = "first-load.myshopify.com"
    devshop.client.shop_create(domain)
    token = devshop.client.session_token(domain)

    # when the admin loads the app
    response = client.get("/app/probe", {"id_token": token, "shop": domain})

    # then the app installed itself and served the page
    assert response.status_code == 200
    assert response.content == f"shop={domain}".encode()
    shop = Shop.objects.get(myshopify_domain=domain)
    assert shop.is_active is True
    assert shop.access_token_expires_at is not None


def test_load_of_an_uninstalled_shop_reinstalls_it(client, devshop, db):
    # given a shop that was uninstalled, then installed again from the admin
    domain = "returning.myshopify.com"
    devshop.client.shop_create(domain)
    client.get("/app/probe", {"id_token": devshop.client.session_token(domain)})
    devshop.client.app_uninstall(domain)
    Shop.objects.filter(myshopify_domain=domain).update(
        is_active=False, access_token_encrypted="", refresh_token_encrypted=""
    )
    devshop.client.app_install(domain)

    # when the admin loads the app (a fetch this time)
    response = client.get(
        "/app/probe", HTTP_AUTHORIZATION="Bearer " + devshop.client.session_token(domain)
    )

    # then
    assert response.status_code == 200
    shop = Shop.objects.get(myshopify_domain=domain)
    assert shop.is_active is True
    assert shop.uninstalled_at is None


def test_exchange_refused_by_shopify_bounces_and_stores_nothing(client, devshop, settings, db):
    # given a token the app accepts but the store does not know the shop of
    token = mint(settings, domain="unknown-to-store.myshopify.com")

    # when
    response = client.get("/app/probe", {"id_token": token})

    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/auth/session-token?")
    assert not Shop.objects.filter(myshopify_domain="unknown-to-store.myshopify.com").exists()
