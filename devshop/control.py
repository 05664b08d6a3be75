"""The control API (``/_devshop/…``): what a merchant would do by clicking in their admin,
scriptable from tests, the simulator and the demo. JSON in, JSON out. Shopify has no such API;
nothing in the app calls it.
"""

import json
import random
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from devshop.knobs import DEFAULTS, knob_get, knob_set
from devshop.models import DevShop
from devshop.session_tokens import session_token_mint


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if not request.body:
        return {}
    data = json.loads(request.body)
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def shop_as_dict(shop: DevShop) -> dict[str, Any]:
    return {
        "id": shop.shopify_id,
        "myshopify_domain": shop.myshopify_domain,
        "name": shop.name,
        "email": shop.email,
        "currency_code": shop.currency_code,
        "iana_timezone": shop.iana_timezone,
        "primary_locale": shop.primary_locale,
        "plan": shop.plan,
        "app_installed": shop.app_installed,
        "granted_scopes": shop.granted_scopes,
    }


@csrf_exempt
@require_http_methods(["POST"])
def shop_create(request: HttpRequest) -> JsonResponse:
    """Create (or return) a store: {"myshopify_domain": "demo.myshopify.com", "name": …}."""
    data = _json_body(request)
    domain = data.get("myshopify_domain") or f"shop-{random.randint(1000, 99999)}.myshopify.com"
    shop, _ = DevShop.objects.get_or_create(
        myshopify_domain=domain,
        defaults={
            "shopify_id": random.randint(10**9, 10**11),
            "name": data.get("name") or domain.split(".")[0].replace("-", " ").title(),
            "email": data.get("email") or f"owner@{domain.split('.')[0]}.example",
            "currency_code": data.get("currency_code", "USD"),
            "iana_timezone": data.get("iana_timezone", "America/New_York"),
            "primary_locale": data.get("primary_locale", "en"),
            "plan": data.get("plan", "standard"),
        },
    )
    return JsonResponse(shop_as_dict(shop), status=201)


@require_http_methods(["GET"])
def shop_detail(request: HttpRequest, shop: str) -> JsonResponse:
    found = DevShop.objects.filter(myshopify_domain=shop).first()
    if found is None:
        return JsonResponse({"error": "no such shop"}, status=404)
    return JsonResponse(shop_as_dict(found))


@csrf_exempt
@require_http_methods(["POST"])
def session_token_create(request: HttpRequest, shop: str) -> JsonResponse:
    """Mint a session token as App Bridge would inside the admin: {"id_token": "<jwt>"}.

    Optional body: {"user_id": 1, "lifetime_seconds": 60, "now": <unix seconds>}.
    """
    if not DevShop.objects.filter(myshopify_domain=shop).exists():
        return JsonResponse({"error": "no such shop"}, status=404)
    data = _json_body(request)
    token = session_token_mint(
        shop_domain=shop,
        user_id=int(data.get("user_id", 1)),
        lifetime_seconds=int(data.get("lifetime_seconds", 60)),
        now=data.get("now"),
    )
    return JsonResponse({"id_token": token})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def knobs(request: HttpRequest) -> JsonResponse:
    """GET: the current knobs. POST {"access_token_ttl": 1, …}: set some."""
    if request.method == "POST":
        for key, value in _json_body(request).items():
            knob_set(key, value)
    keys = set(DEFAULTS)
    return JsonResponse({key: knob_get(key) for key in sorted(keys)})


@csrf_exempt
@require_http_methods(["POST"])
def app_install_view(request: HttpRequest, shop: str) -> JsonResponse:
    """Managed install, as a merchant clicking Install in the admin: {"scopes": "read_orders"}
    (default: the app's configured scopes). The app gets its token on its first load."""
    from devshop.oauth import app_install

    found = DevShop.objects.filter(myshopify_domain=shop).first()
    if found is None:
        return JsonResponse({"error": "no such shop"}, status=404)
    app_install(shop=found, scopes=_json_body(request).get("scopes"))
    return JsonResponse(shop_as_dict(found))


@csrf_exempt
@require_http_methods(["POST"])
def app_uninstall_view(request: HttpRequest, shop: str) -> JsonResponse:
    """Uninstall the app from the store: its tokens are revoked at once."""
    from devshop.oauth import app_uninstall

    found = DevShop.objects.filter(myshopify_domain=shop).first()
    if found is None:
        return JsonResponse({"error": "no such shop"}, status=404)
    revoked = app_uninstall(shop=found)
    return JsonResponse({**shop_as_dict(found), "tokens_revoked": revoked})


@csrf_exempt
@require_http_methods(["POST"])
def access_token_check(request: HttpRequest, shop: str) -> JsonResponse:
    """Would the Admin API accept this token now? {"access_token": "shpat_…"} → {"valid": …}."""
    from devshop.tokens import dev_token_authenticate

    found = DevShop.objects.filter(myshopify_domain=shop).first()
    if found is None:
        return JsonResponse({"error": "no such shop"}, status=404)
    token = str(_json_body(request).get("access_token", ""))
    return JsonResponse(
        {"valid": dev_token_authenticate(shop=found, access_token=token) is not None}
    )
