"""The store's storefront, and its app proxy to the app, as Shopify runs them.

    /store/<shop>/                          home page (links to the app's proxied pages)
    /store/<shop>/account/login | logout    fake customer login (the storefront's own cookie)
    /store/<shop>/<prefix>/<subpath>/<path> app proxy → APP_URL/proxy/<path>

The proxy follows shopify.dev "App proxies": same method, body and child path; the original
query plus ``shop``, ``logged_in_customer_id``, ``path_prefix``, ``timestamp`` and ``signature``;
``X-Forwarded-For`` and ``X-Forwarded-Host`` added; ``Cookie`` stripped from the request and
``Set-Cookie`` (with Shopify's list of disallowed headers) from the response; a 30x answer
handed to the browser with its ``Location`` as the app wrote it (a relative one resolves
against the storefront URL, as on Shopify, where an app's redirect to its own host sends the
shopper there: github.com/gnikyt/laravel-shopify issue 656);
``Content-Type: application/liquid`` rendered in the theme layout unless ``{% layout none %}``.
"""

import hashlib
import hmac
import logging
import re
import time
from functools import cache
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from devshop.models import DevCustomer, DevShop

logger = logging.getLogger(__name__)

# Shopify's proxy timeout is not documented; 10 s covers a slow app page without hanging a
# storefront thread forever.
PROXY_CONNECT_TIMEOUT_SECONDS = 2.0
PROXY_READ_TIMEOUT_SECONDS = 10.0
# Parameters Shopify adds: a shopper cannot choose them (inferred: Shopify signs its own values,
# so any copy in the shopper's URL is replaced, not passed along).
PROXY_PARAMS = ("shop", "logged_in_customer_id", "path_prefix", "timestamp", "signature")
# Response headers Shopify's proxy removes (shopify.dev, app proxies: "disallowed headers").
STRIPPED_RESPONSE_HEADERS = {
    "accept-patch",
    "accept-ranges",
    "connection",
    "cookie",
    "date",
    "delta-base",
    "im",
    "p3p",
    "pragma",
    "preference-applied",
    "proxy-authenticate",
    "public-key-pins",
    "server",
    "service-worker-allowed",
    "set-cookie",
    "trailer",
    "tk",
    "warning",
    "x-powered-by",
}
# Hop-by-hop and framing headers that describe one connection, not the content: requests has
# already decoded the body and Django frames the response again.
_HOP_BY_HOP = {
    "content-encoding",
    "content-length",
    "keep-alive",
    "proxy-authorization",
    "te",
    "transfer-encoding",
    "upgrade",
}
# Request headers not passed to the app: the shopper's cookies (Shopify strips them), and those
# the proxy sets itself.
_NOT_FORWARDED = {
    "cookie",
    "host",
    "content-length",
    "connection",
    "accept-encoding",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
} | _HOP_BY_HOP

CUSTOMER_COOKIE = "devshop_storefront_customer"
_LAYOUT_TAG = re.compile(r"{%-?\s*layout\s+(['\"]?)(\w+)\1\s*-?%}")
_THEME_DIR = Path(__file__).resolve().parent / "templates" / "devshop" / "storefront"


@cache
def _liquid() -> Any:
    """The theme's Liquid environment, built on first use: importing python-liquid takes most of
    a second, which the devshop's first request (and its readiness probe) should not pay."""
    from liquid import CachingFileSystemLoader, Environment

    # Shopify's Liquid does not autoescape output: themes and app pages escape with `| escape`.
    return Environment(loader=CachingFileSystemLoader(_THEME_DIR), autoescape=False)


def _theme_source(name: str) -> str:
    env = _liquid()
    return env.loader.get_source(env, name).text


def app_proxy_signature(pairs: list[tuple[str, str]], secret: str) -> str:
    """Shopify's app-proxy signature: every ``k=v1,v2`` (repeated keys' values joined with ","
    in the order received), sorted, concatenated with no separator, HMAC-SHA256 hex."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        if key == "signature":
            continue
        grouped.setdefault(key, []).append(value)
    message = "".join(sorted(f"{key}={','.join(values)}" for key, values in grouped.items()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _prefix() -> str:
    return getattr(settings, "DEVSHOP_APP_PROXY_PREFIX", "apps")


def _subpath() -> str:
    return getattr(settings, "DEVSHOP_APP_PROXY_SUBPATH", "postpurchase")


def path_prefix() -> str:
    return f"/{_prefix()}/{_subpath()}"


def _storefront_base(shop: DevShop) -> str:
    return f"/store/{shop.myshopify_domain}"


def _customer_id(request: HttpRequest, shop: DevShop) -> str:
    """The logged-in customer's id, from the storefront's own signed cookie; "" if nobody."""
    return request.get_signed_cookie(
        CUSTOMER_COOKIE, default="", salt=f"devshop.storefront:{shop.myshopify_domain}"
    )


def _customer(shop: DevShop, customer_id: str) -> dict[str, Any] | None:
    if not customer_id:
        return None
    found = DevCustomer.objects.filter(shop=shop, shopify_id=int(customer_id)).first()
    if found is None:
        return {"id": int(customer_id), "first_name": "", "last_name": "", "name": "", "email": ""}
    return {
        "id": found.shopify_id,
        "first_name": found.first_name,
        "last_name": found.last_name,
        "name": str(found),
        "email": found.email,
    }


def _liquid_globals(request: HttpRequest, shop: DevShop) -> dict[str, Any]:
    base = _storefront_base(shop)
    return {
        "shop": {
            "name": shop.name,
            "domain": shop.myshopify_domain,
            "permanent_domain": shop.myshopify_domain,
            "email": shop.email,
            "currency": shop.currency_code,
            "locale": shop.primary_locale,
            "url": base,
        },
        "customer": _customer(shop, _customer_id(request, shop)),
        "request": {"path": request.path, "host": request.get_host()},
        "routes": {
            "root_url": base + "/",
            "account_login_url": base + "/account/login",
            "account_logout_url": base + "/account/logout",
        },
        "app_proxy": {"path_prefix": base + path_prefix()},
    }


def _render_page(
    request: HttpRequest, shop: DevShop, source: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """Render Liquid ``source`` as a theme would: inside theme.liquid unless it says
    ``{% layout none %}`` (Shopify's tag; python-liquid has no layout tag, so it is read here)."""
    use_layout = True
    match = _LAYOUT_TAG.search(source)
    if match:
        use_layout = match.group(2) != "none"
        source = _LAYOUT_TAG.sub("", source, count=1)
    scope = {**_liquid_globals(request, shop), **context}
    env = _liquid()
    body = env.from_string(source).render(**scope)
    if use_layout:
        body = env.get_template("theme.liquid").render(**scope, content_for_layout=body)
    return HttpResponse(body, status=status, content_type="text/html; charset=utf-8")


def _shop_or_404(request: HttpRequest, domain: str) -> DevShop | HttpResponse:
    shop = DevShop.objects.filter(myshopify_domain=domain).first()
    if shop is None:
        return HttpResponse("Store not found", status=404, content_type="text/plain")
    return shop


def storefront_home(request: HttpRequest, shop: str) -> HttpResponse:
    found = _shop_or_404(request, shop)
    if isinstance(found, HttpResponse):
        return found
    source = _theme_source("index.liquid")
    return _render_page(request, found, source, {"page_title": found.name})


@csrf_exempt
def storefront_login(request: HttpRequest, shop: str) -> HttpResponse:
    """A fake customer login: pick a customer of the store, or enter a customer id.

    The choice lives in the storefront's own cookie (scoped to this store's path), which the app
    proxy never forwards; the app sees it only as ``logged_in_customer_id``.
    """
    found = _shop_or_404(request, shop)
    if isinstance(found, HttpResponse):
        return found
    error = ""
    if request.method == "POST":
        # A typed id wins over a picked one.
        raw = (
            request.POST.get("customer_id_entered") or request.POST.get("customer_id") or ""
        ).strip()
        return_to = request.POST.get("return_to") or ""
        if raw.isdigit() and int(raw) > 0:
            # Only paths on this store: never an open redirect.
            base = _storefront_base(found)
            target = return_to if return_to.startswith(base + "/") else base + "/"
            response = HttpResponseRedirect(target)
            response.set_signed_cookie(
                CUSTOMER_COOKIE,
                str(int(raw)),
                salt=f"devshop.storefront:{found.myshopify_domain}",
                path=base + "/",
                httponly=True,
                samesite="Lax",
            )
            return response
        error = "Enter a customer id (a positive number)."
    customers = [
        {"id": c.shopify_id, "name": str(c) or f"Customer {c.shopify_id}"}
        for c in DevCustomer.objects.filter(shop=found).order_by("id")[:50]
    ]
    source = _theme_source("login.liquid")
    context = {
        "page_title": "Log in",
        "customers": customers,
        "error": error,
        "return_to": request.GET.get("return_to", ""),
    }
    return _render_page(request, found, source, context, status=400 if error else 200)


@csrf_exempt
def storefront_logout(request: HttpRequest, shop: str) -> HttpResponse:
    response = HttpResponseRedirect(f"/store/{shop}/")
    response.delete_cookie(CUSTOMER_COOKIE, path=f"/store/{shop}/")
    return response


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _forwarded_request_headers(request: HttpRequest, shop: DevShop) -> dict[str, str]:
    headers = {
        name: value for name, value in request.headers.items() if name.lower() not in _NOT_FORWARDED
    }
    headers["X-Forwarded-For"] = _client_ip(request)
    headers["X-Forwarded-Host"] = shop.myshopify_domain
    return headers


def _no_cookie_session() -> requests.Session:
    """A session that never keeps a cookie: the app's Set-Cookie must never come back to it."""
    http = requests.Session()
    http.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return http


def signed_proxy_query(
    *, query_string: str, shop: DevShop, customer_id: str, secret: str, now: int | None = None
) -> list[tuple[str, str]]:
    """The query the app receives: the shopper's parameters, then Shopify's, signed."""
    pairs = [
        (key, value)
        for key, value in parse_qsl(query_string, keep_blank_values=True)
        if key not in PROXY_PARAMS
    ]
    pairs += [
        ("shop", shop.myshopify_domain),
        ("logged_in_customer_id", customer_id),
        ("path_prefix", path_prefix()),
        ("timestamp", str(int(now if now is not None else time.time()))),
    ]
    pairs.append(("signature", app_proxy_signature(pairs, secret)))
    return pairs


@csrf_exempt
def app_proxy(request: HttpRequest, shop: str, subpath: str = "") -> HttpResponse:
    found = _shop_or_404(request, shop)
    if isinstance(found, HttpResponse):
        return found
    if not found.app_installed:
        # The proxy route exists only while the app is installed.
        return _render_page(
            request, found, "<h1>Page not found</h1>", {"page_title": "Not found"}, status=404
        )
    pairs = signed_proxy_query(
        query_string=request.META.get("QUERY_STRING", ""),
        shop=found,
        customer_id=_customer_id(request, found),
        secret=settings.DEVSHOP_APP_CLIENT_SECRET,
    )
    target = f"{settings.DEVSHOP_APP_PROXY_URL}/{subpath}?{urlencode(pairs)}"
    facts = {"shop": found.myshopify_domain, "method": request.method, "path": "/" + subpath}
    try:
        with _no_cookie_session() as http:
            upstream = http.request(
                request.method or "GET",
                target,
                data=request.body or None,
                headers=_forwarded_request_headers(request, found),
                timeout=(PROXY_CONNECT_TIMEOUT_SECONDS, PROXY_READ_TIMEOUT_SECONDS),
                # The browser follows a redirect (a Post/Redirect/Get lands on its own URL).
                allow_redirects=False,
            )
    except requests.RequestException as exc:
        logger.warning(
            "devshop.storefront.proxy_error", extra={**facts, "error": type(exc).__name__}
        )
        return _render_page(
            request,
            found,
            "<h1>This page isn't available right now</h1>",
            {"page_title": "Unavailable"},
            status=502,
        )
    logger.info("devshop.storefront.proxied", extra={**facts, "status_code": upstream.status_code})

    content_type = upstream.headers.get("Content-Type", "")
    if content_type.split(";")[0].strip().lower() == "application/liquid":
        from liquid.exceptions import LiquidError

        try:
            return _render_page(request, found, upstream.text, {}, status=upstream.status_code)
        except LiquidError as exc:
            logger.warning(
                "devshop.storefront.liquid_error", extra={**facts, "error": type(exc).__name__}
            )
            return HttpResponse(
                f"Liquid error: {exc}", status=500, content_type="text/plain; charset=utf-8"
            )

    response = HttpResponse(upstream.content, status=upstream.status_code)
    # Django sets a default Content-Type: only the app's own (or none) may go out.
    del response["Content-Type"]
    for name, value in upstream.headers.items():
        lowered = name.lower()
        if lowered in STRIPPED_RESPONSE_HEADERS or lowered in _HOP_BY_HOP:
            continue
        response[name] = value
    return response


def _proxy_routes() -> list:
    prefix = re.escape(_prefix())
    subpath = re.escape(_subpath())
    return [
        re_path(rf"^{prefix}/{subpath}/?$", app_proxy),
        re_path(rf"^{prefix}/{subpath}/(?P<subpath>.+)$", app_proxy),
    ]


urlpatterns = [
    path("", storefront_home),
    path("account/login", storefront_login),
    path("account/logout", storefront_logout),
    *_proxy_routes(),
]
