"""The control API (``/_devshop/…``): what a merchant would do by clicking in their admin,
scriptable from tests, the simulator and the demo. JSON in, JSON out. Shopify has no such API;
nothing in the app calls it.
"""

import json
import random
from decimal import Decimal, InvalidOperation
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
        "admin_api_requests": shop.admin_api_requests,
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


# -- Orders and a direct install, for tests that don't exercise OAuth (devshop.orders) ------


def _shop_or_404(shop: str) -> DevShop | None:
    return DevShop.objects.filter(myshopify_domain=shop).first()


@csrf_exempt
@require_http_methods(["POST"])
def app_install_with_token(request: HttpRequest, shop: str) -> JsonResponse:
    """Install the app and hand its token straight back: {"expiring": true} → the token
    response Shopify's token endpoint would give ({"access_token", "scope", …})."""
    from devshop.orders import dev_app_install
    from devshop.tokens import dev_token_response

    found = _shop_or_404(shop)
    if found is None:
        return JsonResponse({"error": "no such shop"}, status=404)
    token = dev_app_install(shop=found, expiring=bool(_json_body(request).get("expiring", True)))
    return JsonResponse(dev_token_response(token), status=201)


@csrf_exempt
@require_http_methods(["POST"])
def orders_create(request: HttpRequest, shop: str) -> JsonResponse:
    """Create fake orders: {"count": 3, "email": …, "line_items": 2, "updated_at": …}."""
    from devshop.orders import dev_orders_create_fake

    found = _shop_or_404(shop)
    if found is None:
        return JsonResponse({"error": "no such shop"}, status=404)
    try:
        data = _json_body(request)
        count = int(data.pop("count", 1))
        orders = dev_orders_create_fake(shop=found, count=count, overrides=data)
    except (TypeError, ValueError) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(
        {
            "ids": [o.shopify_id for o in orders],
            "orders": [
                {
                    "id": o.shopify_id,
                    "admin_graphql_api_id": f"gid://shopify/Order/{o.shopify_id}",
                    "name": o.name,
                    "updated_at": o.updated_at.isoformat(),
                }
                for o in orders
            ],
        },
        status=201,
    )


@csrf_exempt
@require_http_methods(["POST"])
def order_update(request: HttpRequest, shop: str, order_id: int) -> JsonResponse:
    """Change an order's fields ({"email": …, "tags": …}); bumps updated_at unless given."""
    from django.core.exceptions import ValidationError

    from devshop.models import DevOrder
    from devshop.orders import dev_order_update

    order = DevOrder.objects.filter(shop__myshopify_domain=shop, shopify_id=order_id).first()
    if order is None:
        return JsonResponse({"error": "no such order"}, status=404)
    try:
        order = dev_order_update(order=order, fields=_json_body(request))
    except (ValueError, ValidationError) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(
        {"id": order.shopify_id, "name": order.name, "updated_at": order.updated_at.isoformat()}
    )


@csrf_exempt
@require_http_methods(["POST"])
def variant_update(request: HttpRequest, shop: str, variant_id: int) -> JsonResponse:
    """Mark a variant sold out or back in stock, or change its price, as a merchant would:
    {"available_for_sale": false} and/or {"price": "19.99"}."""
    from devshop.models import DevVariant

    variant = DevVariant.objects.filter(
        product__shop__myshopify_domain=shop, shopify_id=variant_id
    ).first()
    if variant is None:
        return JsonResponse({"error": "no such variant"}, status=404)
    data = _json_body(request)
    fields = []
    if "available_for_sale" in data:
        if not isinstance(data["available_for_sale"], bool):
            return JsonResponse({"error": "available_for_sale must be true or false"}, status=400)
        variant.available_for_sale = data["available_for_sale"]
        fields.append("available_for_sale")
    if "price" in data:
        try:
            price = Decimal(str(data["price"]))
        except InvalidOperation:
            price = Decimal("-1")
        if not price.is_finite() or price < 0 or price != price.quantize(Decimal("0.01")):
            return JsonResponse({"error": "price must be an amount like 19.99"}, status=400)
        variant.price = price
        fields.append("price")
    if not fields:
        return JsonResponse({"error": "give available_for_sale and/or price"}, status=400)
    variant.save(update_fields=fields)
    return JsonResponse(
        {
            "id": variant.shopify_id,
            "available_for_sale": variant.available_for_sale,
            "price": str(variant.price),
        }
    )


@csrf_exempt
@require_http_methods(["POST"])
def product_status_set(request: HttpRequest, shop: str, product_id: int) -> JsonResponse:
    """Set a product's status as a merchant would ({"status": "DRAFT"}, one of Shopify's
    ProductStatus values): a draft or archived product leaves the online store."""
    from devshop.models import DevProduct
    from devshop.orders import dev_now

    product = DevProduct.objects.filter(shop__myshopify_domain=shop, shopify_id=product_id).first()
    if product is None:
        return JsonResponse({"error": "no such product"}, status=404)
    status = _json_body(request).get("status")
    if status not in {"ACTIVE", "ARCHIVED", "DRAFT", "UNLISTED"}:
        return JsonResponse({"error": "status: ACTIVE, ARCHIVED, DRAFT or UNLISTED"}, status=400)
    product.status = status
    product.updated_at = dev_now()
    product.save(update_fields=["status", "updated_at"])
    return JsonResponse({"id": product.shopify_id, "status": product.status})


@csrf_exempt
@require_http_methods(["POST"])
def product_update(request: HttpRequest, shop: str, product_id: int) -> JsonResponse:
    """Edit a product as a merchant would in their admin: {"tags": "Summer, Final-Sale",
    "product_type": "Underwear"} (either or both). Tags are comma-separated, as Shopify's
    product form takes them; ``updated_at`` moves. No products/update webhook: the app
    subscribes to none and reads tags and type through the Admin API.

    Its picture too: {"has_image": false} removes it, {"image_url": "https://…"} puts one
    hosted elsewhere in place of the one the devshop draws ("" brings that one back)."""
    from devshop.models import DevProduct
    from devshop.orders import dev_now

    product = DevProduct.objects.filter(shop__myshopify_domain=shop, shopify_id=product_id).first()
    if product is None:
        return JsonResponse({"error": "no such product"}, status=404)
    data = _json_body(request)
    fields = {key: data[key] for key in ("tags", "product_type", "image_url") if key in data}
    if "has_image" in data:
        if not isinstance(data["has_image"], bool):
            return JsonResponse({"error": "has_image must be true or false"}, status=400)
        fields["has_image"] = data["has_image"]
    texts = [value for key, value in fields.items() if key != "has_image"]
    if not fields or not all(isinstance(value, str) for value in texts):
        return JsonResponse(
            {"error": "give tags, product_type, image_url (strings) and/or has_image"},
            status=400,
        )
    image_url = str(fields.get("image_url", "")).strip()
    if image_url and not image_url.startswith(("https://", "http://")):
        return JsonResponse({"error": "image_url must be an http(s) URL"}, status=400)
    for key, value in fields.items():
        setattr(product, key, value.strip() if isinstance(value, str) else value)
    product.updated_at = dev_now()
    product.save(update_fields=[*fields, "updated_at"])
    return JsonResponse(
        {
            "id": product.shopify_id,
            "tags": [t.strip() for t in product.tags.split(",") if t.strip()],
            "product_type": product.product_type,
            "has_image": product.has_image,
            "image_url": product.image_url,
        }
    )


@csrf_exempt
@require_http_methods(["POST"])
def theme_publish(request: HttpRequest, shop: str) -> JsonResponse:
    """Add a theme and publish it: {"name": "Sense", "background": "#FDFBF7", "text": "#242833",
    "button": "#C7392F"} (colours default to Dawn's). Fires themes/publish."""
    from devshop.themes import DAWN_COLOURS, colours_checked, dev_theme_publish, theme_as_rest

    found = _shop_or_404(shop)
    if found is None:
        return JsonResponse({"error": "no such shop"}, status=404)
    data = _json_body(request)
    name = data.get("name") or "Dawn"
    if not isinstance(name, str) or len(name) > 255:
        return JsonResponse(
            {"error": "name must be a string of at most 255 characters"}, status=400
        )
    try:
        colours = colours_checked(data, base=DAWN_COLOURS)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    theme = dev_theme_publish(shop=found, name=name, colours=colours)
    return JsonResponse(theme_as_rest(theme), status=201)


@csrf_exempt
@require_http_methods(["POST"])
def theme_colours(request: HttpRequest, shop: str) -> JsonResponse:
    """Save colours in the published theme's editor: {"button": "#0B5FFF"} (any of background,
    text, button; the rest kept). Fires themes/update."""
    from devshop.themes import (
        colours_checked,
        dev_theme_colours_save,
        dev_theme_main,
        theme_as_rest,
        theme_colours,
    )

    found = _shop_or_404(shop)
    if found is None:
        return JsonResponse({"error": "no such shop"}, status=404)
    try:
        colours = colours_checked(_json_body(request), base=theme_colours(dev_theme_main(found)))
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    theme = dev_theme_colours_save(shop=found, colours=colours)
    return JsonResponse({**theme_as_rest(theme), "colours": colours})


# Webhooks (devshop.webhooks) ----------------------------------------------------------------


@csrf_exempt
@require_http_methods(["POST"])
def webhooks_flush(request: HttpRequest) -> JsonResponse:
    """Deliver everything due now, at once (tests use it for determinism). Returns counts:
    {"due", "delivered", "failed" (retry scheduled), "gave_up", "duplicates", "pending"}."""
    from devshop.models import DevWebhookDelivery
    from devshop.webhooks import dev_webhook_deliver_due

    counts = dev_webhook_deliver_due()
    counts["pending"] = DevWebhookDelivery.objects.filter(
        status=DevWebhookDelivery.Status.PENDING
    ).count()
    return JsonResponse(counts)


@require_http_methods(["GET"])
def webhooks_list(request: HttpRequest) -> JsonResponse:
    """Deliveries with their status and attempts; filters: ?shop=…&topic=…&status=…"""
    from devshop.webhooks import delivery_as_dict, dev_webhook_delivery_list

    rows = dev_webhook_delivery_list(
        shop=request.GET.get("shop"),
        topic=request.GET.get("topic"),
        status=request.GET.get("status"),
        limit=int(request.GET.get("limit", "200")),
    )
    return JsonResponse({"deliveries": [delivery_as_dict(row) for row in rows]})


@csrf_exempt
@require_http_methods(["POST"])
def webhook_emit(request: HttpRequest, shop: str) -> JsonResponse:
    """Emit one event by hand: {"topic": "orders/create", "payload": {…}, "event_id"?,
    "test"?}. Queues one delivery per subscription; the loop or a flush sends them."""
    from devshop.webhooks import delivery_as_dict, dev_webhook_emit

    found = DevShop.objects.filter(myshopify_domain=shop).first()
    if found is None:
        return JsonResponse({"error": "no such shop"}, status=404)
    data = _json_body(request)
    topic, payload = data.get("topic"), data.get("payload")
    if not isinstance(topic, str) or "/" not in topic or not isinstance(payload, dict):
        return JsonResponse(
            {"error": "topic (e.g. orders/create) and payload (an object) are required"},
            status=400,
        )
    deliveries = dev_webhook_emit(
        shop=found,
        topic=topic,
        payload=payload,
        event_id=data.get("event_id"),
        is_test=bool(data.get("test", False)),
    )
    return JsonResponse(
        {
            "event_id": deliveries[0].event_id if deliveries else None,
            "deliveries": [delivery_as_dict(row) for row in deliveries],
        },
        status=201,
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def webhook_subscriptions(request: HttpRequest, shop: str) -> JsonResponse:
    """GET: the shop's Admin-API subscriptions. POST {"topic", "uri", "api_version"?, "name"?}:
    create one, as webhookSubscriptionCreate would."""
    from devshop.models import DevWebhookSubscription
    from devshop.webhooks import dev_webhook_subscription_create

    found = DevShop.objects.filter(myshopify_domain=shop).first()
    if found is None:
        return JsonResponse({"error": "no such shop"}, status=404)
    if request.method == "POST":
        data = _json_body(request)
        if not data.get("topic") or not data.get("uri"):
            return JsonResponse({"error": "topic and uri are required"}, status=400)
        dev_webhook_subscription_create(
            shop=found,
            topic=data["topic"],
            uri=data["uri"],
            api_version=data.get("api_version"),
            name=data.get("name", ""),
        )
    rows = DevWebhookSubscription.objects.filter(shop=found).order_by("id")
    return JsonResponse(
        {
            "subscriptions": [
                {
                    "id": row.shopify_id,
                    "topic": row.topic,
                    "uri": row.uri,
                    "api_version": row.api_version,
                    "name": row.name,
                    "consecutive_failures": row.consecutive_failures,
                }
                for row in rows
            ]
        },
        status=201 if request.method == "POST" else 200,
    )
