"""The store's admin, just enough of it to open the app the way Shopify's admin does.

    GET /store/<shop>/admin                    the admin home: the store and its apps
    GET /store/<shop>/admin/apps/app           admin chrome around an iframe:
            APP_URL/app/?embedded=1&host=<base64 admin host>&shop=<shop>&id_token=<JWT>
    GET /store/<shop>/admin/apps/app/token     {"id_token": <JWT>}: a fresh session token

The iframe's first load is the app's managed install when the app is not yet installed: the
app exchanges the session token for an offline token (devshop.oauth grants it and marks the
app installed). The app's pages carry ``id_token`` in their own links, so clicks work for as
long as that token lives (one minute, as App Bridge's tokens do).

App Bridge (cdn.shopify.com) cannot load here, so nothing inside the frame can ask for a new
token. The frame page stands in for it:

- a document the app serves after its token has died is its bounce page, which would wait for
  App Bridge forever; the frame page sees the iframe load after the token's lifetime and
  reloads the app with a fresh token;
- an app page may ``parent.postMessage`` ``{"type": "devshop:id-token:request", "requestId"}``
  (answered with ``{"type": "devshop:id-token", "requestId", "idToken"}``) or
  ``{"type": "devshop:reload", "path": "/app/…"}`` (the frame reloads that path with a fresh
  token). Shopify's admin speaks App Bridge's own protocol instead; nothing in the app relies
  on these messages.
"""

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from devshop.models import DevShop
from devshop.oauth import admin_host_param
from devshop.session_tokens import session_token_mint

# App Bridge's tokens live one minute (shopify.dev, session tokens).
SESSION_TOKEN_LIFETIME_SECONDS = 60
# The app accepts a token this long past ``exp`` (ShopifyAPI's leeway): a document the iframe
# loads later than lifetime + leeway after its token was minted can only be the bounce page.
APP_TOKEN_LEEWAY_SECONDS = 10
# The staff member App Bridge would name in ``sub``; the devshop has a single one.
ADMIN_USER_ID = 1
APP_TITLE = "Post-purchase"


def _mint(shop: DevShop) -> str:
    return session_token_mint(
        shop_domain=shop.myshopify_domain,
        user_id=ADMIN_USER_ID,
        lifetime_seconds=SESSION_TOKEN_LIFETIME_SECONDS,
    )


def _app_src(shop: DevShop, id_token: str, path: str = "/app/") -> str:
    query = {
        "embedded": "1",
        "host": admin_host_param(shop),
        "shop": shop.myshopify_domain,
        "id_token": id_token,
    }
    return f"{settings.DEVSHOP_APP_URL}{path}?{urlencode(query)}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@require_GET
def admin_home(request: HttpRequest, shop: str) -> HttpResponse:
    dev_shop = get_object_or_404(DevShop, myshopify_domain=shop)
    return render(
        request,
        "devshop/admin/home.html",
        {"shop": dev_shop, "app_title": APP_TITLE, "nav": "home"},
    )


@require_GET
def app_frame(request: HttpRequest, shop: str) -> HttpResponse:
    dev_shop = get_object_or_404(DevShop, myshopify_domain=shop)
    # What the frame page's script needs, as one JSON blob (json_script escapes it for HTML).
    frame_config = {
        "appUrl": settings.DEVSHOP_APP_URL,
        "appOrigin": _origin(settings.DEVSHOP_APP_URL),
        "host": admin_host_param(dev_shop),
        "shop": dev_shop.myshopify_domain,
        "tokenUrl": request.path.rstrip("/") + "/token",
        "staleAfterMs": (SESSION_TOKEN_LIFETIME_SECONDS + APP_TOKEN_LEEWAY_SECONDS) * 1000,
    }
    response = render(
        request,
        "devshop/admin/app_frame.html",
        {
            "shop": dev_shop,
            "app_title": APP_TITLE,
            "app_src": _app_src(dev_shop, _mint(dev_shop)),
            "frame_config": frame_config,
            "nav": "apps",
        },
    )
    # The page embeds a live session token: never from a cache.
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def app_token(request: HttpRequest, shop: str) -> JsonResponse:
    """A fresh session token for the frame page's script, as ``shopify.idToken()`` gives one."""
    dev_shop = get_object_or_404(DevShop, myshopify_domain=shop)
    response = JsonResponse({"id_token": _mint(dev_shop)})
    response["Cache-Control"] = "no-store"
    return response
