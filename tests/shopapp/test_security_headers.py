"""Framing headers on every answer, including the ones no view of ours writes (a 404 from the
URL resolver, a 405, Django's admin), and production's refusal of unsafe defaults."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
SHOP = "frames.myshopify.com"


def _ancestors(response) -> str:
    policy = response.get("Content-Security-Policy", "")
    (directive,) = [d.strip() for d in policy.split(";") if "frame-ancestors" in d]
    return directive


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/app/no-such-page"),  # 404 from the resolver
        ("get", "/app/returns/1/approve"),  # 405: approve is POST only
        ("get", "/auth/no-such-page"),
    ],
)
def test_embedded_error_answers_may_be_framed_by_the_shops_admin_only(client, method, path):
    response = getattr(client, method)(path, {"shop": SHOP})

    assert response.status_code in {404, 405}
    assert _ancestors(response) == (f"frame-ancestors https://{SHOP} https://admin.shopify.com")
    assert "X-Frame-Options" not in response


def test_an_embedded_error_without_a_shop_allows_shopify_admins_only(client):
    response = client.get("/app/no-such-page", {"shop": "evil.example"})

    assert _ancestors(response) == (
        "frame-ancestors https://*.myshopify.com https://admin.shopify.com"
    )


@pytest.mark.parametrize(
    "path", ["/django-admin/login/", "/webhooks/", "/no-such-page", "/notifications/x"]
)
def test_everything_else_may_be_framed_by_no_one(client, path):
    response = client.get(path)

    assert _ancestors(response) == "frame-ancestors 'none'"
    assert response["X-Frame-Options"] == "DENY"


def test_storefront_pages_are_left_to_shopify(client):
    # Shopify fetches them server-side; the theme editor previews the storefront in a frame.
    response = client.get("/proxy/track")

    assert response.status_code == 403  # unsigned
    assert "Content-Security-Policy" not in response
    assert "X-Frame-Options" not in response


# Production settings, in a process of their own.


def _production_env(**overrides: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if k in {"PATH", "HOME", "LANG", "VIRTUAL_ENV", "PYTHONPATH", "SYSTEMROOT"}
    }
    env = {
        **keep,
        "DJANGO_SETTINGS_MODULE": "shopapp.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SHOPIFY_API_KEY": secrets.token_hex(16),
        "SHOPIFY_API_SECRET": secrets.token_hex(32),
        "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "APP_URL": "https://app.example.com",
        "DATABASE_URL": "postgres://app@db.example.com:5432/app",
        "REDIS_URL": "redis://redis.example.com:6379/0",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL"])
def test_production_refuses_to_start_without_its_database_or_redis(missing):
    result = _run(
        ["-c", "import django; django.setup(); print('started')"],
        _production_env(**{missing: ""}),
    )

    assert result.returncode != 0
    assert "Missing required settings for production" in result.stderr
    assert missing in result.stderr
    assert "started" not in result.stdout


def test_production_passes_djangos_deploy_checks_with_warnings_as_errors():
    # HSTS, the HTTPS redirect, secure cookies, clickjacking protection, a strong key, no DEBUG.
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], _production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
