"""Settings of the development store when it runs as its own server (``manage.py devshop``).

It shares the code base but not the database: its data lives in ``DEVSHOP_DATABASE_URL``
(default: its own SQLite file), so the app's database never sees it.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("RUN_DIR", BASE_DIR / ".run"))
RUN_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("DEVSHOP_SECRET_KEY", "devshop-local-secret")
DEBUG = os.environ.get("DEVSHOP_DEBUG", "0") == "1"
ALLOWED_HOSTS = ["*"]

# The app registered with this store: its credentials and where it lives.
DEVSHOP_APP_CLIENT_ID = os.environ.get("SHOPIFY_API_KEY", "devshop-client-id")
DEVSHOP_APP_CLIENT_SECRET = os.environ.get(
    "SHOPIFY_API_SECRET", "devshop-client-secret-for-local-use-only"
)
DEVSHOP_APP_URL = os.environ.get("APP_URL", "http://127.0.0.1:8000").rstrip("/")
DEVSHOP_APP_SCOPES = os.environ.get(
    "SHOPIFY_SCOPES",
    "read_orders,read_customers,read_fulfillments,write_fulfillments,"
    "read_returns,write_returns,read_products,read_themes,write_app_proxy",
)
# Public base URL of this store, e.g. http://127.0.0.1:8001 (shops live under /store/<domain>/).
DEVSHOP_URL = os.environ.get("DEVSHOP_URL", "http://127.0.0.1:8001").rstrip("/")

# Token lifetimes, as Shopify issues expiring offline tokens: access 1 h, refresh 90 days.
# Configurable so that tests can expire them.
DEVSHOP_ACCESS_TOKEN_TTL = int(os.environ.get("DEVSHOP_ACCESS_TOKEN_TTL", "3600"))
DEVSHOP_REFRESH_TOKEN_TTL = int(os.environ.get("DEVSHOP_REFRESH_TOKEN_TTL", str(90 * 86400)))
# A refresh repeated within this window returns the same answer (Shopify's retry window).
DEVSHOP_REFRESH_RETRY_WINDOW = int(os.environ.get("DEVSHOP_REFRESH_RETRY_WINDOW", "30"))
# Skip the consent page on /admin/oauth/authorize.
DEVSHOP_AUTO_APPROVE = os.environ.get("DEVSHOP_AUTO_APPROVE", "1") == "1"

# Webhooks. The app's shopify.app.toml subscribes every topic to /webhooks/ with this version
# ([webhooks] api_version); the payload is announced in X-Shopify-API-Version.
DEVSHOP_WEBHOOKS_API_VERSION = os.environ.get("SHOPIFY_API_VERSION", "2026-10")
# Shopify retries a failed delivery 8 times over 4 hours with exponential backoff
# (shopify.dev, webhooks best practices): base * (2**8 - 1) = 255 * 56 s ≈ 3 h 58 min.
# A knob (webhook_retry_base_seconds) so tests retry within seconds.
DEVSHOP_WEBHOOK_RETRY_BASE_SECONDS = float(
    os.environ.get("DEVSHOP_WEBHOOK_RETRY_BASE_SECONDS", "56")
)
DEVSHOP_WEBHOOK_MAX_RETRIES = int(os.environ.get("DEVSHOP_WEBHOOK_MAX_RETRIES", "8"))

# Storefront app proxy: https://<shop>/apps/<subpath>/… → APP_URL/proxy/… (shopify.app.toml
# [app_proxy]); the prefix is one of a, apps, community, tools.
DEVSHOP_APP_PROXY_PREFIX = os.environ.get("SHOPIFY_APP_PROXY_PREFIX", "apps")
DEVSHOP_APP_PROXY_SUBPATH = os.environ.get("SHOPIFY_APP_PROXY_SUBPATH", "postpurchase")
DEVSHOP_APP_PROXY_URL = os.environ.get("DEVSHOP_APP_PROXY_URL", DEVSHOP_APP_URL + "/proxy/").rstrip(
    "/"
)

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "devshop",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "devshop.urls"
WSGI_APPLICATION = "devshop.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES = {
    "default": dj_database_url.config(
        env="DEVSHOP_DATABASE_URL", default=f"sqlite:///{RUN_DIR / 'devshop.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
APPEND_SLASH = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"keyvalue": {"()": "shopapp.logging.KeyValueFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "keyvalue"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
