"""The storefront tracking page, called as Shopify's app proxy calls it: every request here is
signed with the app's secret exactly as Shopify signs it (shopapp.proxy's rule, checked
against Shopify's documented vectors elsewhere). The devshop-driven tests, through a real
storefront that renders Liquid, are in test_page_storefront.py.

Shared factories live here (make_shop, make_order, …) and are imported by the other page tests.
"""

import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, unquote, urlencode

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from shopapp.models import LineItem, Order, Shop
from shopapp.proxy import app_proxy_signature
from shopapp.storefront.links import form_token, tracking_link_token
from tracking.models import (
    Delay,
    Shipment,
    ShipmentLineItem,
    Stage,
    TrackingEvent,
    TrackingPageView,
    TrackingSettings,
)
from tracking.stages import STAGE_LABELS, STAGE_PROGRESS

pytestmark = pytest.mark.django_db

FORM_TOKEN_RE = re.compile(r'name="form_token" value="[^"]*"')
_counter = iter(range(10_000, 10_000_000))


# ---------------------------------------------------------------------------------------------
# Factories and the signed-request helper


def make_shop(domain: str | None = None, **fields) -> Shop:
    n = next(_counter)
    defaults = {
        "name": "Acme Outdoor",
        "is_active": True,
        "installed_at": timezone.now(),
        "timezone": "Europe/Paris",
        "primary_locale": "en",
    }
    defaults.update(fields)
    return Shop.objects.create(myshopify_domain=domain or f"shop-{n}.myshopify.com", **defaults)


def make_order(shop: Shop, number: int | None = None, **fields) -> Order:
    number = number or next(_counter)
    defaults = {
        "shopify_id": 5_000_000_000 + number,
        "name": f"#{number}",
        "order_number": number,
        "email": "ada@example.com",
        "phone": "+33 6 12 34 56 78",
        "customer_first_name": "Ada",
        "shopify_created_at": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        "fulfillment_status": "",
    }
    defaults.update(fields)
    order = Order.objects.create(shop=shop, **defaults)
    return order


def make_line_item(order: Order, title: str = "Trail shoe", quantity: int = 1, **fields):
    n = next(_counter)
    return LineItem.objects.create(
        shop=order.shop,
        order=order,
        shopify_id=fields.pop("shopify_id", 7_000_000_000 + n),
        title=title,
        quantity=quantity,
        **fields,
    )


def make_shipment(order: Order, stage: str = Stage.IN_TRANSIT, items=(), **fields) -> Shipment:
    n = next(_counter)
    defaults = {
        "fulfillment_id": 6_000_000_000 + n,
        "name": f"{order.name}.{n}",
        "status": "success",
        "shipment_status": "in_transit",
        "stage": stage,
        "tracking_company": "UPS",
        "tracking_numbers": [f"1Z999AA1{n:010d}"],
        "tracking_urls": [f"https://www.ups.com/track?tracknum=1Z999AA1{n:010d}"],
        "shopify_created_at": datetime(2026, 3, 3, 10, 0, tzinfo=UTC) + timedelta(seconds=n),
    }
    defaults.update(fields)
    shipment = Shipment.objects.create(shop=order.shop, order=order, **defaults)
    for line, quantity in items:
        ShipmentLineItem.objects.create(
            shop=order.shop,
            shipment=shipment,
            line_item_shopify_id=line.shopify_id,
            quantity=quantity,
        )
    return shipment


def make_event(shipment: Shipment, status: str = "in_transit", **fields) -> TrackingEvent:
    n = next(_counter)
    defaults = {
        "shopify_id": 8_000_000_000 + n,
        "stage": fields.pop("stage", ""),
        "happened_at": datetime(2026, 3, 4, 8, 0, tzinfo=UTC),
        "message": "Departed facility",
        "city": "Lyon",
        "province": "",
        "country": "France",
    }
    defaults.update(fields)
    return TrackingEvent.objects.create(
        shop=shipment.shop, shipment=shipment, status=status, **defaults
    )


def signed_query(shop: Shop, *, customer_id: str = "", extra=(), now: int | None = None) -> str:
    """The query Shopify's proxy sends: the shopper's parameters plus Shopify's, signed."""
    pairs = list(extra) + [
        ("shop", shop.myshopify_domain),
        ("logged_in_customer_id", customer_id),
        ("path_prefix", "/apps/postpurchase"),
        ("timestamp", str(now if now is not None else int(time.time()))),
    ]
    pairs.append(("signature", app_proxy_signature(pairs, secret=settings.SHOPIFY_API_SECRET)))
    return urlencode(pairs)


def proxy_get(client, shop: Shop, path: str = "", **kwargs):
    headers = kwargs.pop("headers", {})
    return client.get(
        f"/proxy/track{path}?{signed_query(shop, **kwargs)}",
        headers={"X-Forwarded-For": "203.0.113.9", **headers},
    )


def proxy_post(client, shop: Shop, data: dict, path: str = "", ip: str = "203.0.113.9", **kw):
    headers = kw.pop("headers", {})
    payload = {"form_token": form_token(shop), "lookup": "order", **data}
    return client.post(
        f"/proxy/track{path}?{signed_query(shop, **kw)}",
        data=payload,
        headers={"X-Forwarded-For": ip, **headers},
    )


def follow(client, shop: Shop, response, **kwargs):
    """The GET a browser makes after a lookup's 303: its Location resolved against the
    lookup's URL (…/track), through the proxy again (signed afresh)."""
    assert response.status_code == 303, response.status_code
    path, _, query = response["Location"].partition("?")
    assert path.startswith("track/"), path
    extra = parse_qsl(query) + list(kwargs.pop("extra", ()))
    return proxy_get(client, shop, path[len("track") :], extra=extra, **kwargs)


def body(response) -> str:
    """The page's markup, without its inline stylesheet (class names appear in both)."""
    html = response.content.decode()
    return html.split("</style>", 1)[1] if "</style>" in html else html


def full(response) -> str:
    return response.content.decode()


@pytest.fixture(autouse=True)
def _redis_db(settings):
    """Each test starts with fresh rate-limit counters (REDIS_URL's own database)."""
    import redis

    connection = redis.Redis.from_url(settings.REDIS_URL)
    try:
        for key in connection.scan_iter("tracking:rl:*"):
            connection.delete(key)
    except redis.RedisError:
        pass


# ---------------------------------------------------------------------------------------------
# Smoke


def test_lookup_page_is_liquid_private_and_has_the_forms(client):
    # given an installed shop
    shop = make_shop()

    # when Shopify forwards a shopper's GET
    response = proxy_get(client, shop)

    # then the page is Liquid for the theme, never cached, with both lookup forms
    assert response.status_code == 200
    assert response["Content-Type"] == "application/liquid; charset=utf-8"
    assert response["Cache-Control"] == "private, no-store"
    assert "Set-Cookie" not in response
    assert not response.cookies
    html = body(response)
    assert 'name="order"' in html
    assert 'name="contact"' in html
    assert 'name="tracking_number"' in html
    assert html.count('name="form_token"') == 2


# ---------------------------------------------------------------------------------------------
# The proxy guard: nothing is revealed without Shopify's signature


def _order_with_shipment(shop: Shop, number: int = 1001, **fields) -> Order:
    order = make_order(shop, number, **fields)
    line = make_line_item(order, "Trail shoe", 1)
    shipment = make_shipment(order, items=[(line, 1)])
    make_event(shipment, "in_transit", stage="in_transit", message="Arrived at hub")
    return order


@pytest.mark.parametrize(
    "tamper",
    [
        "forged_signature",
        "missing_signature",
        "stale_timestamp",
        "future_timestamp",
        "other_secret",
    ],
)
def test_every_request_without_a_valid_fresh_signature_is_refused_with_nothing_revealed(
    client, tamper
):
    # given a shop with an order, and a valid link to it
    shop = make_shop()
    order = _order_with_shipment(shop)
    token = tracking_link_token(order)
    query = signed_query(shop)
    if tamper == "forged_signature":
        query = re.sub(r"signature=[0-9a-f]+", "signature=" + "0" * 64, query)
    elif tamper == "missing_signature":
        query = re.sub(r"&signature=[0-9a-f]+", "", query)
    elif tamper == "stale_timestamp":
        # a captured URL replayed ten minutes later
        query = signed_query(shop, now=int(time.time()) - 600)
    elif tamper == "future_timestamp":
        query = signed_query(shop, now=int(time.time()) + 600)
    else:
        pairs = [("shop", shop.myshopify_domain), ("timestamp", str(int(time.time())))]
        pairs.append(("signature", app_proxy_signature(pairs, secret="not-the-app-secret")))
        query = urlencode(pairs)

    # when the link, the lookup page and a lookup are requested with it
    responses = [
        client.get(f"/proxy/track/{token}?{query}"),
        client.get(f"/proxy/track?{query}"),
        client.post(
            f"/proxy/track?{query}",
            data={"form_token": form_token(shop), "order": "1001", "contact": "ada@example.com"},
        ),
    ]

    # then each is a bare 403 naming nothing, and no view was counted
    for response in responses:
        assert response.status_code == 403
        assert response.content == b"Forbidden"
    assert not TrackingPageView.objects.filter(order=order).exists()


def test_a_shop_that_uninstalled_the_app_gets_403(client):
    shop = make_shop(is_active=False)
    assert proxy_get(client, shop).status_code == 403


# ---------------------------------------------------------------------------------------------
# Lookup by order number and email or phone


@pytest.mark.parametrize(
    ("typed_order", "typed_contact"),
    [
        ("1001", "ada@example.com"),
        ("#1001", "ADA@Example.com "),
        (" # 1001 ", "ada@example.com"),
        ("1001", "+33 6 12 34 56 78"),
        ("1001", "06 12 34 56 78"),
        ("1001", "(612) 345-678"),
    ],
)
def test_lookup_finds_the_order_by_number_and_email_or_phone(client, typed_order, typed_contact):
    # given an order #1001 with an email and a phone
    shop = make_shop()
    order = _order_with_shipment(shop)

    # when the shopper types its number and contact in any usual spelling
    posted = proxy_post(client, shop, {"order": typed_order, "contact": typed_contact})

    # then the answer sends the browser to the order's signed link, which shows its page
    assert posted.status_code == 303
    assert posted["Location"] == "track/" + tracking_link_token(order)
    assert posted["Cache-Control"] == "private, no-store"
    assert posted.content == b""
    response = follow(client, shop, posted)
    assert response.status_code == 200
    html = body(response)
    assert 'data-view="order"' in html
    assert "Order #1001" in html
    assert "Arrived at hub" in html
    assert TrackingPageView.objects.get(order=order).views == 1


def test_lookup_accepts_a_custom_order_name(client):
    shop = make_shop()
    make_order(shop, 1002, name="EU-1002-B")

    response = proxy_post(client, shop, {"order": "eu-1002-b", "contact": "ada@example.com"})

    assert "Order EU-1002-B" in body(follow(client, shop, response))


def test_wrong_number_and_wrong_email_give_the_same_answer_keeping_what_was_typed(client):
    # given an order #1501 of ada@example.com
    shop = make_shop()
    _order_with_shipment(shop, 1501)

    # when one attempt has the wrong number, one the wrong email, one the wrong phone
    tries = [
        {"order": "1502", "contact": "ada@example.com"},
        {"order": "1501", "contact": "eve@example.com"},
        {"order": "#1501", "contact": "+33 6 99 99 99 99"},
    ]
    answers = [proxy_post(client, shop, typed) for typed in tries]

    # then each is the form again, with a clear error and what the shopper typed, both fields
    # marked; apart from the typed values the answers are byte-identical (nothing tells a
    # wrong number from a wrong contact)
    stripped = set()
    for typed, response in zip(tries, answers, strict=True):
        assert response.status_code == 200
        html = body(response)
        assert 'data-view="lookup"' in html
        assert "We couldn&#x27;t find an order with these details" in html
        order_input = re.search(r'<input[^>]*name="order"[^>]*>', html).group(0)
        assert f'value="{typed["order"]}"' in order_input
        assert f'value="{typed["contact"]}"' in html
        assert html.count('aria-invalid="true"') == 2
        assert html.count('aria-describedby="pp-lookup-error"') == 1  # the contact field
        assert "pp-order-hint pp-lookup-error" in html
        stripped.add(
            FORM_TOKEN_RE.sub("", html)
            .replace(f'value="{typed["order"]}"', "")
            .replace(f'value="{typed["contact"]}"', "")
        )
    assert len(stripped) == 1
    # and nothing stored about the order comes back
    [html] = stripped
    for secret in ("Trail shoe", "Arrived at hub", "Ada", "ada@", "UPS"):
        assert secret not in html
    assert not TrackingPageView.objects.exists()


def test_the_found_page_is_a_link_whose_reloads_spend_no_lookup_budget(client, settings):
    # given a shop allowing 2 lookups per order number, and an order
    settings.TRACKING_LOOKUP_RATE_PER_ORDER = 2
    shop = make_shop()
    order = _order_with_shipment(shop, 1601)

    # when the shopper looks it up once, then reloads (or bookmarks and reopens) the page
    # ten times
    found = proxy_post(client, shop, {"order": "1601", "contact": "ada@example.com"})
    reloads = [follow(client, shop, found) for _ in range(10)]

    # then every reload is the order's page, each counted as a view
    assert {r.status_code for r in reloads} == {200}
    assert all("Order #1601" in body(r) for r in reloads)
    assert TrackingPageView.objects.get(order=order).views == 10
    # and the lookup budget was spent once: one more lookup passes, the next is limited
    again = proxy_post(client, shop, {"order": "1601", "contact": "ada@example.com"})
    assert again.status_code == 303
    limited = proxy_post(client, shop, {"order": "1601", "contact": "ada@example.com"})
    assert limited.status_code == 429


def test_the_redirect_keeps_an_explicit_language(client):
    shop = make_shop()
    order = _order_with_shipment(shop, 1602)

    posted = proxy_post(
        client, shop, {"order": "1602", "contact": "ada@example.com"}, extra=[("locale", "de")]
    )

    assert posted["Location"] == f"track/{tracking_link_token(order)}?locale=de"
    assert "Bestellung #1602" in body(follow(client, shop, posted))


def test_field_errors_and_an_expired_form_keep_what_was_typed(client):
    shop = make_shop()

    invalid = proxy_post(client, shop, {"order": "1001", "contact": "12"})
    expired = proxy_post(
        client, shop, {"order": "#1001", "contact": "ada@example.com", "form_token": "old"}
    )

    html = body(invalid)
    assert 'value="1001"' in html
    assert 'value="12"' in html
    assert "Enter the email address or phone number used for the order." in html
    html = body(expired)
    assert "This form has expired" in html
    assert 'value="#1001"' in html
    assert 'value="ada@example.com"' in html


def test_an_order_without_email_or_phone_never_matches_an_empty_contact(client):
    shop = make_shop()
    make_order(shop, 1003, email="", phone="")

    responses = [
        proxy_post(client, shop, {"order": "1003", "contact": ""}),
        proxy_post(client, shop, {"order": "1003", "contact": "@"}),
        proxy_post(client, shop, {"order": "1003", "contact": "0000000"}),
    ]

    for response in responses:
        assert 'data-view="lookup"' in body(response)
        assert "Order #1003" not in body(response)


def test_another_shops_order_is_never_found(client):
    # given shop B has order #1001 of ada@example.com, shop A has none
    shop_a = make_shop()
    shop_b = make_shop()
    other = _order_with_shipment(shop_b)

    # when a shopper on shop A's storefront looks it up, and opens B's genuine link under A
    lookup = proxy_post(client, shop_a, {"order": "1001", "contact": "ada@example.com"})
    link = proxy_get(client, shop_a, "/" + tracking_link_token(other))

    # then neither shows it
    assert 'data-view="lookup"' in body(lookup)
    assert "Arrived at hub" not in body(lookup)
    assert link.status_code == 404
    assert "Order #1001" not in body(link)
    assert not TrackingPageView.objects.exists()


def test_deleted_and_redacted_orders_are_not_shown(client):
    shop = make_shop()
    deleted = _order_with_shipment(shop, 1004, deleted_at=timezone.now())
    redacted = _order_with_shipment(shop, 1005, redacted_at=timezone.now())

    for order in (deleted, redacted):
        lookup = proxy_post(client, shop, {"order": order.name, "contact": "ada@example.com"})
        link = proxy_get(client, shop, "/" + tracking_link_token(order))
        assert 'data-view="lookup"' in body(lookup)
        assert link.status_code == 404


def test_a_link_to_an_order_deleted_since_it_was_viewed_counts_no_more_views(client):
    # given an order whose page was viewed once, then deleted in Shopify
    shop = make_shop()
    order = _order_with_shipment(shop)
    path = "/" + tracking_link_token(order)
    assert proxy_get(client, shop, path).status_code == 200
    Order.objects.filter(pk=order.pk).update(deleted_at=timezone.now())

    # when its link is opened again
    response = proxy_get(client, shop, path)

    # then the page is gone and the view was not counted
    assert response.status_code == 404
    assert TrackingPageView.objects.get(order=order).views == 1


@pytest.mark.parametrize("token", ["", "forged", None])
def test_a_lookup_without_a_valid_form_token_is_not_run(client, token):
    # given an order, and a form token that is missing, forged, or another shop's
    shop = make_shop()
    _order_with_shipment(shop)
    if token is None:
        token = form_token(make_shop())

    # when the lookup is posted with it
    response = proxy_post(
        client, shop, {"order": "1001", "contact": "ada@example.com", "form_token": token}
    )

    # then the form comes back, fresh, and the order is not shown
    html = body(response)
    assert 'data-view="lookup"' in html
    assert "This form has expired" in html
    assert "Order #1001" not in html
    assert not TrackingPageView.objects.exists()


def test_an_old_form_token_has_expired(client):
    import time_machine

    shop = make_shop()
    _order_with_shipment(shop)
    old = form_token(shop)

    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        response = proxy_post(
            client, shop, {"order": "1001", "contact": "ada@example.com", "form_token": old}
        )

    assert "This form has expired" in body(response)


def test_invalid_input_is_answered_with_field_errors(client):
    shop = make_shop()

    response = proxy_post(client, shop, {"order": "   ", "contact": "12"})

    html = body(response)
    assert response.status_code == 200
    assert 'aria-invalid="true"' in html
    assert "Enter your order number." in html
    assert "Enter the email address or phone number used for the order." in html


# ---------------------------------------------------------------------------------------------
# A logged-in customer


def test_a_logged_in_customer_sees_only_their_own_recent_orders(client):
    # given customer 42's two orders, customer 43's order, and customer 42 of another shop
    shop = make_shop()
    other_shop = make_shop()
    mine_old = make_order(shop, 2001, customer_id=42, name="#2001")
    mine_new = make_order(
        shop, 2002, customer_id=42, shopify_created_at=datetime(2026, 3, 9, tzinfo=UTC)
    )
    make_shipment(mine_new, stage=Stage.OUT_FOR_DELIVERY)
    make_order(shop, 2003, customer_id=43)
    make_order(other_shop, 2004, customer_id=42)
    make_order(shop, 2005, customer_id=42, deleted_at=timezone.now())

    # when customer 42 opens the page through the storefront
    response = proxy_get(client, shop, customer_id="42")

    # then their orders are listed, newest first, each with its status and a signed link
    html = body(response)
    names = re.findall(r'class="pp-orders__link" href="[^"]+">Order (#\d+)</a>', html)
    assert names == ["#2002", "#2001"]
    assert "Out for delivery" in html
    assert f'href="track/{tracking_link_token(mine_new)}"' in html
    assert f'href="track/{tracking_link_token(mine_old)}"' in html
    assert "#2003" not in html
    assert "#2004" not in html
    assert "#2005" not in html
    # and the lookup form stays for orders placed as a guest
    assert 'name="order"' in html


def test_an_anonymous_shopper_sees_no_orders_list(client):
    shop = make_shop()
    make_order(shop, 2101, customer_id=42)

    html = body(proxy_get(client, shop, customer_id=""))

    assert "Your recent orders" not in html
    assert "#2101" not in html


# ---------------------------------------------------------------------------------------------
# The signed link


def test_the_signed_link_opens_the_order_page_and_counts_views(client):
    shop = make_shop()
    order = _order_with_shipment(shop)
    path = "/" + tracking_link_token(order)

    first = proxy_get(client, shop, path)
    proxy_get(client, shop, path)

    assert first.status_code == 200
    assert "Order #1001" in body(first)
    view = TrackingPageView.objects.get(order=order)
    assert view.views == 2
    assert view.shop == shop
    assert view.last_viewed_at is not None


@pytest.mark.parametrize("how", ["tampered", "truncated", "garbage", "expired", "other_shop"])
def test_a_bad_link_gets_one_clear_page_revealing_nothing(client, how):
    import time_machine

    # given an order and a link that has been damaged one way or another
    shop = make_shop()
    order = _order_with_shipment(shop)
    token = tracking_link_token(order)
    if how == "tampered":
        payload, rest = token.split(":", 1)
        token = ("X" if payload[0] != "X" else "Y") + payload[1:] + ":" + rest
    elif how == "truncated":
        token = token[:-3]
    elif how == "garbage":
        token = "{{ shop.name }}"
    elif how == "other_shop":
        token = tracking_link_token(_order_with_shipment(make_shop()))

    # when it is opened (the expired one 181 days later)
    if how == "expired":
        with time_machine.travel(timezone.now() + timedelta(days=181)):
            response = proxy_get(client, shop, "/" + token)
    else:
        response = proxy_get(client, shop, "/" + token)

    # then one page, same status, naming no order, offering the lookup form
    html = body(response)
    assert response.status_code == 404
    assert "This tracking link isn't valid" in html
    assert 'name="order"' in html
    for revealed in ("#1001", "Trail shoe", "Arrived at hub", "UPS", "expired in", "shop_id"):
        assert revealed not in html
    assert not TrackingPageView.objects.exists()


def test_a_link_stays_valid_for_its_configured_age(client, settings):
    import time_machine

    settings.TRACKING_LINK_MAX_AGE_DAYS = 30
    shop = make_shop()
    order = _order_with_shipment(shop)
    token = tracking_link_token(order)

    with time_machine.travel(timezone.now() + timedelta(days=29)):
        fresh = proxy_get(client, shop, "/" + token)
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        stale = proxy_get(client, shop, "/" + token)

    assert fresh.status_code == 200
    assert stale.status_code == 404


# ---------------------------------------------------------------------------------------------
# What the page shows


def _link_page(client, order: Order, **kwargs) -> str:
    response = proxy_get(client, order.shop, "/" + tracking_link_token(order), **kwargs)
    assert response.status_code == 200
    return body(response)


def _steps(html: str) -> list[tuple[str, str]]:
    return re.findall(
        r'<li class="pp-step pp-step--(\w+)"[^>]*>\s*<span[^>]*></span>\s*'
        r'<span class="pp-step__label">([^<]+)</span>',
        html,
    )


@pytest.mark.parametrize("stage", list(Stage))
def test_every_stage_and_branch_is_drawn_on_the_progress_bar(client, stage):
    # given a shipment at each stage
    shop = make_shop()
    order = make_order(shop, 3001)
    make_shipment(order, stage=stage)

    # when its page is shown
    html = _link_page(client, order)

    # then the main line shows done/current/upcoming steps, the current one marked for AT
    main = [str(STAGE_LABELS[s]) for s in STAGE_PROGRESS]
    anchor = {
        Stage.ATTEMPTED_DELIVERY: Stage.OUT_FOR_DELIVERY,
        Stage.READY_FOR_PICKUP: Stage.OUT_FOR_DELIVERY,
        Stage.DELAYED: Stage.IN_TRANSIT,
        Stage.PROBLEM: Stage.IN_TRANSIT,
    }.get(stage, stage)
    position = STAGE_PROGRESS.index(anchor)
    expected = [
        ("done" if i < position else "current" if i == position else "upcoming", label)
        for i, label in enumerate(main)
    ]
    assert _steps(html) == expected
    assert html.count('aria-current="step"') == 1
    label = str(STAGE_LABELS[stage])
    assert f'aria-valuenow="{position + 1}" aria-valuetext="{label}"' in html.replace("&#x27;", "'")
    assert f'data-stage="{stage.value}"' in html
    # and a branch appears as a status on its step
    if stage in anchor.__class__.__members__.values() and stage != anchor:
        assert f'<span class="pp-step__branch">{label}</span>' in html
    else:
        assert "pp-step__branch" not in html


def test_split_shipments_each_get_their_progress_items_and_carrier(client):
    # given an order of three lines sent in two parcels, one line not shipped yet
    shop = make_shop()
    order = make_order(shop, 3002)
    shoes = make_line_item(order, "Trail shoe", 1)
    socks = make_line_item(order, "Wool socks", 3)
    tent = make_line_item(order, "Tent", 1)
    first = make_shipment(
        order,
        stage=Stage.DELIVERED,
        items=[(shoes, 1)],
        tracking_company="UPS",
        delivered_at=datetime(2026, 3, 6, 15, 0, tzinfo=UTC),
    )
    second = make_shipment(
        order,
        stage=Stage.IN_TRANSIT,
        items=[(socks, 3)],
        tracking_company="DHL Express",
        tracking_numbers=["JD014600006281230704"],
        tracking_urls=[],
        estimated_delivery_at=datetime(2026, 3, 10, 12, 0, tzinfo=UTC),
    )
    assert tent.shopify_id

    # when the page is shown
    html = _link_page(client, order)

    # then two shipments, in order, each with its own items, carrier and dates
    sections = re.split(r'<section class="pp-shipment"', html)[1:]
    assert len(sections) == 2
    assert "Shipment 1 of 2" in sections[0]
    assert "Shipment 2 of 2" in sections[1]
    assert 'data-stage="delivered"' in sections[0]
    assert "Trail shoe" in sections[0]
    assert "Wool socks" not in sections[0]
    assert "Delivered on" in sections[0]
    assert "March 6, 2026" in sections[0]
    assert "Wool socks" in sections[1]
    assert "Quantity: 3" in sections[1]
    assert "Estimated delivery" in sections[1]
    assert "March 10, 2026" in sections[1]
    assert first.tracking_urls[0] in sections[0]
    # a number without a carrier URL is shown as text with its copy button, not linked
    assert re.search(
        r'<span class="pp-tracking-number" id="pp-tn-2-1">JD014600006281230704</span>\s*'
        r'<button class="pp-copy" type="button" hidden data-copy-target="pp-tn-2-1"',
        sections[1],
    )
    assert "pp-tracking-link" not in sections[1]
    assert "Track on UPS's website" in sections[0]
    assert "DHL Express" in sections[1]
    assert second.pk
    # and the unshipped tent is announced
    assert "Some items in your order haven't shipped yet." in html


def test_an_order_not_shipped_yet_says_so(client):
    shop = make_shop()
    order = make_order(shop, 3003)
    make_line_item(order)

    html = _link_page(client, order)

    assert "Not shipped yet" in html
    assert "pp-steps" not in html


def test_the_timeline_is_newest_first_in_the_shops_timezone_without_deleted_events(client):
    # given events arriving out of order, one deleted by the merchant, one recorded late
    shop = make_shop(timezone="America/New_York")
    order = make_order(shop, 3004)
    shipment = make_shipment(order, stage=Stage.OUT_FOR_DELIVERY)
    make_event(
        shipment,
        "out_for_delivery",
        stage="out_for_delivery",
        message="On the van",
        happened_at=datetime(2026, 3, 5, 13, 5, tzinfo=UTC),
        city="Boston",
        province="MA",
        country="United States",
    )
    make_event(
        shipment,
        "label_printed",
        stage="shipped",
        message="Label created",
        happened_at=datetime(2026, 3, 3, 9, 0, tzinfo=UTC),
        city="",
        country="",
    )
    make_event(
        shipment,
        "in_transit",
        stage="in_transit",
        message="Withdrawn scan",
        happened_at=datetime(2026, 3, 4, 9, 0, tzinfo=UTC),
        deleted_at=timezone.now(),
    )
    make_event(
        shipment,
        "in_transit",
        stage="in_transit",
        message="Arrived at hub (late data)",
        happened_at=datetime(2026, 3, 4, 20, 0, tzinfo=UTC),
        is_stale=True,
    )

    # when the page is shown
    html = _link_page(client, order)

    # then the visible events are newest first, in New York time, with their places
    messages = re.findall(r'class="pp-timeline__message">([^<]+)<', html)
    assert messages == ["On the van", "Arrived at hub (late data)", "Label created"]
    assert "Withdrawn scan" not in html
    assert 'datetime="2026-03-05T08:05:00-05:00"' in html
    assert "March 5, 2026, 8:05 a.m." in html
    assert "Boston, MA, United States" in html
    assert "pp-timeline__event--late" in html


def test_an_open_delay_shows_a_notice_and_a_resolved_one_does_not(client):
    shop = make_shop()
    order = make_order(shop, 3005)
    late = make_shipment(order, stage=Stage.IN_TRANSIT)
    fine = make_shipment(order, stage=Stage.IN_TRANSIT)
    Delay.objects.create(
        shop=shop,
        order=order,
        shipment=late,
        kind=Delay.Kind.NO_MOVEMENT,
        dedupe_key=f"shipment:{late.pk}:no_movement",
        detected_at=timezone.now(),
    )
    Delay.objects.create(
        shop=shop,
        order=order,
        shipment=fine,
        kind=Delay.Kind.PAST_ESTIMATE,
        dedupe_key=f"shipment:{fine.pk}:past_estimate",
        detected_at=timezone.now(),
        resolved_at=timezone.now(),
    )

    html = _link_page(client, order)

    sections = re.split(r'<section class="pp-shipment"', html)[1:]
    assert "This shipment is taking longer than expected." in sections[0]
    assert "pp-notice--warning" not in sections[1]


def test_an_order_level_delay_shows_at_the_top(client):
    shop = make_shop()
    order = make_order(shop, 3006)
    Delay.objects.create(
        shop=shop,
        order=order,
        kind=Delay.Kind.UNFULFILLED,
        dedupe_key=f"order:{order.pk}:unfulfilled",
        detected_at=timezone.now(),
    )

    html = _link_page(client, order)

    assert "Your order is taking longer than expected to ship." in html


@pytest.mark.parametrize(
    ("stage", "fulfillment_status", "show", "expected"),
    [
        (Stage.DELIVERED, "", True, True),
        (Stage.IN_TRANSIT, "fulfilled", True, True),
        (Stage.IN_TRANSIT, "", True, False),
        (Stage.PROBLEM, "fulfilled", True, False),
        (Stage.DELIVERED, "fulfilled", False, False),
    ],
)
def test_the_return_link_shows_once_the_order_arrived_and_the_merchant_allows_it(
    client, stage, fulfillment_status, show, expected
):
    shop = make_shop()
    TrackingSettings.objects.create(shop=shop, show_return_link=show)
    order = make_order(shop, 3007, fulfillment_status=fulfillment_status)
    make_shipment(order, stage=stage)

    html = _link_page(client, order)

    link = re.search(r'href="\.\./returns\?order=3007&amp;token=([^"]+)"', html)
    assert (link is not None) is expected
    if link:
        from shopapp.storefront.links import order_id_from_link_token

        assert order_id_from_link_token(unquote(link.group(1)), shop=shop) == order.pk
    assert ("Start a return" in html) is expected


def test_a_cancelled_order_says_so_and_offers_no_return(client):
    shop = make_shop()
    order = make_order(shop, 3008, cancelled_at=timezone.now(), fulfillment_status="fulfilled")

    html = _link_page(client, order)

    assert "This order was cancelled." in html
    assert "Start a return" not in html


def test_branding_logo_colour_message_and_sections(client):
    # given a merchant who set a logo, a light accent, a message and hid items and timeline
    shop = make_shop()
    TrackingSettings.objects.create(
        shop=shop,
        logo_url="https://cdn.example.com/logo.png",
        accent_color="#FFD700",
        custom_message="Thanks for shopping local!\nWe ship from Lyon.",
        show_line_items=False,
        show_event_timeline=False,
    )
    order = _order_with_shipment(shop)

    response = proxy_get(client, shop, "/" + tracking_link_token(order))
    html = full(response)

    assert (
        '<img class="pp-track__logo" src="https://cdn.example.com/logo.png" alt="Acme Outdoor">'
        in html
    )
    assert "--pp-accent: #ffd700; --pp-accent-ink: #000000;" in html
    assert "Thanks for shopping local!<br>We ship from Lyon." in html
    assert "Items in your order" not in html
    assert "Trail shoe" not in html
    assert "Tracking history" not in html
    assert "Arrived at hub" not in html


# The column holds 7 characters (PostgreSQL enforces it), so the hostile values fit in 7.
@pytest.mark.parametrize("colour", ["red", "#12345", "#12345g", "#0f0;}a", "}a{b:c", "", "#GGGGGG"])
def test_an_invalid_accent_colour_never_reaches_the_css(client, colour):
    shop = make_shop()
    TrackingSettings.objects.create(shop=shop)
    TrackingSettings.objects.filter(shop=shop).update(accent_color=colour)

    html = full(proxy_get(client, shop))

    assert "--pp-accent: #008060; --pp-accent-ink: #ffffff;" in html
    if colour:
        assert f"--pp-accent: {colour}" not in html


def test_unsafe_logo_and_carrier_urls_are_dropped(client):
    shop = make_shop()
    TrackingSettings.objects.create(shop=shop, logo_url="javascript:alert(1)")
    order = make_order(shop, 3009)
    make_shipment(order, tracking_urls=["javascript:alert(1)"], tracking_numbers=["1ZBAD0000001"])

    html = _link_page(client, order)

    assert "javascript:" not in html
    assert "pp-track__logo" not in html
    assert '<span class="pp-tracking-number" id="pp-tn-1-1">1ZBAD0000001</span>' in html
    assert "pp-tracking-link" not in html


def test_a_standalone_page_is_a_whole_html_document(client):
    shop = make_shop()
    TrackingSettings.objects.create(shop=shop, is_standalone_page=True)
    order = _order_with_shipment(shop)

    response = proxy_get(client, shop, "/" + tracking_link_token(order))

    html = full(response)
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Cache-Control"] == "private, no-store"
    assert html.startswith("<!doctype html>")
    assert '<html lang="en">' in html
    assert "<title>Order #1001</title>" in html
    assert html.count("<main>") == 1
    assert 'name="viewport"' in html


def test_the_liquid_page_has_no_main_landmark_of_its_own(client):
    # The theme wraps the page in its own <main>: a second one would confuse screen readers.
    html = full(proxy_get(client, make_shop()))

    assert "<main" not in html
    assert '<section class="pp-track" lang="en" aria-labelledby="pp-title"' in html


# ---------------------------------------------------------------------------------------------
# Liquid injection: order data and shopper input never reach Shopify's Liquid as code

PAYLOAD = "{{ shop.name }}{% layout none %}{%- raw -%}"


def _assert_no_liquid(html: str) -> None:
    # Shopify's Liquid starts a tag at "{{" or "{%": neither may be in the answer. The only
    # braces left are the static CSS's, single and never followed by "{" or "%".
    assert "{{" not in html
    assert "{%" not in html
    css, _, rest = html.partition("</style>")
    rest, _, script = rest.rpartition("<script>")
    assert script == render_to_string("tracking/page.js") + "</script>"
    assert "{" not in rest
    assert "}" not in rest


def test_liquid_in_order_data_is_escaped(client):
    # given an order whose every free-text field carries Liquid
    shop = make_shop(name=PAYLOAD)
    TrackingSettings.objects.create(
        shop=shop, custom_message=PAYLOAD, logo_url="https://x.example/" + PAYLOAD
    )
    order = make_order(shop, 4001, name="#4001" + PAYLOAD[:40])
    line = make_line_item(order, PAYLOAD, 1, variant_title=PAYLOAD)
    shipment = make_shipment(
        order,
        stage=Stage.DELIVERED,
        items=[(line, 1)],
        tracking_company=PAYLOAD,
        tracking_numbers=[PAYLOAD],
        tracking_urls=["https://t.example/?q=" + PAYLOAD],
    )
    make_event(shipment, "delivered", stage="", message=PAYLOAD, city=PAYLOAD, province=PAYLOAD)

    # when its page is shown
    html = full(proxy_get(client, shop, "/" + tracking_link_token(order)))

    # then every dynamic value is there, with its braces as entities
    _assert_no_liquid(html)
    assert "&#123;&#123; shop.name &#125;&#125;&#123;% layout none %&#125;" in html


def test_liquid_typed_by_a_shopper_is_escaped(client):
    shop = make_shop()

    responses = [
        proxy_post(client, shop, {"order": PAYLOAD[:40], "contact": "x"}),
        proxy_post(client, shop, {"lookup": "tracking_number", "tracking_number": PAYLOAD}),
        proxy_get(client, shop, "/" + PAYLOAD.replace("/", "")),
        proxy_get(client, shop, extra=[("locale", PAYLOAD), ("q", PAYLOAD)]),
    ]

    for response in responses:
        _assert_no_liquid(full(response))
    assert "&#123;&#123; shop.name &#125;&#125;" in body(responses[0])


# ---------------------------------------------------------------------------------------------
# Lookup by tracking number alone


def test_a_tracking_number_alone_shows_the_parcels_progress_and_nothing_of_the_order(client):
    # given an order with a private name, items, contact and a shipment scanned in the
    # shopper's town
    shop = make_shop()
    order = make_order(shop, 5001, email="ada@example.com", customer_first_name="Ada")
    line = make_line_item(order, "Secret gift", 1)
    make_shipment(
        order,
        stage=Stage.OUT_FOR_DELIVERY,
        items=[(line, 1)],
        tracking_numbers=["1Z999AA10123456784"],
        tracking_company="UPS",
    )
    shipment = Shipment.objects.get(order=order)
    make_event(
        shipment,
        "out_for_delivery",
        stage="out_for_delivery",
        message="On the van",
        city="Villeurbanne",
        province="ARA",
        country="France",
        zip="69100",
    )

    # when someone types the tracking number in their own spelling
    posted = proxy_post(
        client, shop, {"lookup": "tracking_number", "tracking_number": "1z 999 aa1-0123456784"}
    )

    # then they are sent to the parcel's own link, which shows the progress, the carrier
    # and the events, and no order detail
    assert posted.status_code == 303
    assert posted["Location"].startswith("track/parcel/")
    response = follow(client, shop, posted)
    assert response.status_code == 200
    html = body(response)
    assert 'data-view="shipment"' in html
    assert 'aria-current="step"' in html
    assert "Out for delivery" in html
    assert "UPS" in html
    assert "On the van" in html
    for private in (
        "#5001",
        "5001",
        "Secret gift",
        "ada@",
        "Ada",
        "Villeurbanne",
        "69100",
        "Start a return",
        "Items in your order",
    ):
        assert private not in html
    assert TrackingPageView.objects.get(order=order).views == 1


def test_a_parcel_link_reloads_for_free_and_a_bad_one_reveals_nothing(client, settings):
    from tracking.views import parcel_link_token

    settings.TRACKING_LOOKUP_RATE_PER_ORDER = 1
    shop = make_shop()
    order = make_order(shop, 5010)
    shipment = make_shipment(order, tracking_numbers=["1Z999AA10123456700"])
    other = make_shipment(make_order(make_shop(), 5011))

    posted = proxy_post(
        client, shop, {"lookup": "tracking_number", "tracking_number": "1Z999AA10123456700"}
    )
    reloads = [follow(client, shop, posted) for _ in range(3)]
    assert {r.status_code for r in reloads} == {200}
    assert TrackingPageView.objects.get(order=order).views == 3
    # the lookup budget was spent once: the next lookup of that number is limited
    again = proxy_post(
        client, shop, {"lookup": "tracking_number", "tracking_number": "1Z999AA10123456700"}
    )
    assert again.status_code == 429

    # an order link, another shop's parcel, and a forged token open nothing
    for token in (
        tracking_link_token(order),
        parcel_link_token(other),
        parcel_link_token(shipment)[:-2],
    ):
        response = proxy_get(client, shop, "/parcel/" + token)
        assert response.status_code == 404
        assert "This tracking link isn" in body(response)
        assert "1Z999AA10123456700" not in body(response)


def test_a_partial_or_other_shops_tracking_number_finds_nothing(client):
    shop = make_shop()
    other = make_shop()
    make_shipment(make_order(shop, 5002), tracking_numbers=["1Z999AA10123456784"])
    make_shipment(make_order(other, 5003), tracking_numbers=["JD014600006281230704"])

    partial = proxy_post(
        client, shop, {"lookup": "tracking_number", "tracking_number": "1Z999AA101"}
    )
    foreign = proxy_post(
        client, shop, {"lookup": "tracking_number", "tracking_number": "JD014600006281230704"}
    )

    for response in (partial, foreign):
        assert "We couldn&#x27;t find a shipment with this tracking number." in body(response)
        assert 'data-view="lookup"' in body(response)


# ---------------------------------------------------------------------------------------------
# Languages


@pytest.mark.parametrize(
    ("how", "language", "expected"),
    [
        ("order", "es", ["Pedido #1001", "Historial de seguimiento", "En tránsito"]),
        ("order", "fr", ["Commande #1001", "Historique de suivi", "En transit"]),
        ("order", "de", ["Bestellung #1001", "Sendungsverlauf", "Unterwegs"]),
        ("param", "de", ["Bestellung #1001"]),
        ("accept", "fr", ["Commande #1001"]),
        ("shop", "es", ["Pedido #1001"]),
    ],
)
def test_the_page_speaks_the_shoppers_language(client, how, language, expected):
    # given an order placed in a language, or a storefront/browser/shop language
    shop = make_shop(primary_locale=language if how == "shop" else "en")
    order = _order_with_shipment(shop, locale=language if how == "order" else "")
    kwargs = {}
    if how == "param":
        kwargs["extra"] = [("locale", language)]
    if how == "accept":
        kwargs["headers"] = {"Accept-Language": f"{language}-CA,{language};q=0.9,en;q=0.5"}

    # when its page is shown
    response = proxy_get(client, shop, "/" + tracking_link_token(order), **kwargs)

    # then it is in that language, and says so
    html = body(response)
    for text in expected:
        assert text in html
    assert f'<section class="pp-track" lang="{language}"' in html
    assert response["Content-Language"] == language


@pytest.mark.parametrize(
    ("language", "title"),
    [("es", "Rastrea tu pedido"), ("fr", "Suivre votre commande"), ("de", "Bestellung verfolgen")],
)
def test_the_lookup_form_and_its_errors_are_translated(client, language, title):
    shop = make_shop(primary_locale=language)

    page = body(proxy_get(client, shop))
    miss = body(proxy_post(client, shop, {"order": "1", "contact": "a@b.c"}))

    assert title in page
    assert "Track your order" not in page
    assert "We couldn" not in miss


def test_an_unsupported_language_falls_back_to_english(client):
    shop = make_shop(primary_locale="ja")

    html = body(proxy_get(client, shop, headers={"Accept-Language": "pt-BR"}))

    assert "Track your order" in html


# ---------------------------------------------------------------------------------------------
# Queries: a constant number per page, whatever the number of events


@pytest.mark.parametrize("events", [1, 50])
def test_the_order_page_runs_a_constant_number_of_queries(
    client, django_assert_num_queries, events
):
    # given an order with two shipments and 1 or 50 events on each, items and a delay
    shop = make_shop()
    TrackingSettings.objects.create(shop=shop)
    order = make_order(shop, 6001)
    lines = [make_line_item(order, f"Item {i}") for i in range(3)]
    for _ in range(2):
        shipment = make_shipment(order, items=[(line, 1) for line in lines])
        for i in range(events):
            make_event(shipment, happened_at=datetime(2026, 3, 4, tzinfo=UTC) + timedelta(hours=i))
    Delay.objects.create(
        shop=shop,
        order=order,
        shipment=shipment,
        kind=Delay.Kind.NO_MOVEMENT,
        dedupe_key="k",
        detected_at=timezone.now(),
    )
    TrackingPageView.objects.create(shop=shop, order=order, views=1)
    path = "/" + tracking_link_token(order)

    # then: shop; settings, the shop's branding, order and the view counter's UPDATE (one
    # round trip); line items, shipments, shipment items, events, delays, open problem cases
    # (one round trip)
    with django_assert_num_queries(3):
        response = proxy_get(client, shop, path)
    assert response.status_code == 200
    assert body(response).count("pp-timeline__event") >= 2 * events


# ---------------------------------------------------------------------------------------------
# The headline, items once each, copy and carrier link, contact, language switch


def _headline(html: str) -> str:
    found = re.search(r'<p class="pp-headline[^"]*">(.*?)</p>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip() if found else ""


def test_the_estimate_is_the_headline_while_the_order_travels(client):
    # given one parcel on its way with Shopify's estimate (noon UTC is 1 pm in Paris)
    shop = make_shop()
    order = make_order(shop, 7001)
    make_shipment(order, estimated_delivery_at=datetime(2026, 3, 10, 12, 0, tzinfo=UTC))

    html = _link_page(client, order)

    assert _headline(html) == "Estimated delivery Tuesday, March 10, 2026"
    assert '<time class="pp-estimate" datetime="2026-03-10">' in html
    # the headline comes first, right under the title
    assert html.index("pp-headline") < html.index("Placed on") < html.index("pp-shipment")


def test_the_latest_estimate_is_the_headline_of_a_split_order(client):
    shop = make_shop()
    order = make_order(shop, 7002)
    make_shipment(order, estimated_delivery_at=datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    make_shipment(order, estimated_delivery_at=datetime(2026, 3, 12, 12, 0, tzinfo=UTC))
    make_shipment(order, stage=Stage.DELIVERED, delivered_at=datetime(2026, 3, 8, tzinfo=UTC))

    assert _headline(_link_page(client, order)) == "Estimated delivery Thursday, March 12, 2026"


def test_no_date_is_promised_when_a_parcel_on_its_way_has_no_estimate(client):
    shop = make_shop()
    order = make_order(shop, 7003)
    make_shipment(order, estimated_delivery_at=datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    make_shipment(order, stage=Stage.SHIPPED)

    html = _link_page(client, order)

    assert _headline(html) == "Shipped"
    assert "March 10, 2026" in html  # still under its own shipment


def test_a_delivered_order_says_when(client):
    shop = make_shop()
    order = make_order(shop, 7004)
    make_shipment(order, stage=Stage.DELIVERED, delivered_at=datetime(2026, 3, 5, 9, tzinfo=UTC))
    make_shipment(order, stage=Stage.DELIVERED, delivered_at=datetime(2026, 3, 6, 9, tzinfo=UTC))

    html = _link_page(client, order, extra=[("locale", "fr")])

    assert _headline(html) == "Livré le vendredi, 6 mars 2026"


def test_a_delivered_parcel_with_items_still_to_ship_is_partly_delivered(client):
    shop = make_shop()
    order = make_order(shop, 7005)
    shoe = make_line_item(order, "Trail shoe")
    make_line_item(order, "Tent")
    make_shipment(order, stage=Stage.DELIVERED, items=[(shoe, 1)])

    html = _link_page(client, order)

    assert _headline(html) == "Partly delivered: more items are on their way"


def test_each_item_is_listed_once_under_its_shipment_or_as_not_shipped_yet(client):
    # given 3 socks, 2 sent in one parcel and 1 in another, shoes sent, a tent not sent yet
    shop = make_shop()
    order = make_order(shop, 7006)
    socks = make_line_item(order, "Wool socks", 3)
    shoes = make_line_item(order, "Trail shoe", 1)
    make_line_item(order, "Tent", 2)
    make_shipment(order, items=[(socks, 2), (shoes, 1)])
    make_shipment(order, items=[(socks, 1)])

    html = _link_page(client, order)

    sections = re.split(r'<section class="pp-(?:shipment|items)"', html)[1:]
    assert [s.count("Wool socks") for s in sections] == [1, 1, 0]
    assert html.count("Trail shoe") == 1
    assert html.count("Tent") == 1
    assert "Not shipped yet" in sections[2]
    assert "Quantity: 2" in sections[2]
    assert "Items in your order" not in html


def test_before_anything_ships_the_items_are_listed_once(client):
    shop = make_shop()
    order = make_order(shop, 7007)
    make_line_item(order, "Tent", 2)

    html = _link_page(client, order)

    assert html.count("Tent") == 1
    assert "Items in your order" in html
    assert _headline(html) == ""


_IMG = re.compile(r"<img [^>]*>")


def test_each_item_shows_its_picture_sized_and_a_box_when_it_has_none(client):
    # given a parcel with a shoe (Shopify's picture) and socks (no picture), a tent not sent
    shop = make_shop()
    order = make_order(shop, 7010)
    cdn = "https://cdn.shopify.com/s/files/1/0001/products/shoe.png?width=128&height=128"
    shoe = make_line_item(order, "Trail shoe", image_url=cdn)
    socks = make_line_item(order, "Wool socks")
    make_line_item(order, "Tent", image_url="https://cdn.shopify.com/s/files/1/tent.png")
    make_shipment(order, items=[(shoe, 1), (socks, 1)])

    html = _link_page(client, order)

    # then the shoe's picture is there with its box fixed (no layout shift) and loaded at once
    # (the first parcel), the tent's lazily (below the fold on a phone)
    images = _IMG.findall(html)
    assert images == [
        '<img class="pp-items__image" src="https://cdn.shopify.com/s/files/1/0001/products/'
        'shoe.png?width=128&amp;height=128" width="56" height="56" alt="" loading="eager" '
        'decoding="async">',
        '<img class="pp-items__image" src="https://cdn.shopify.com/s/files/1/tent.png" '
        'width="56" height="56" alt="" loading="lazy" decoding="async">',
    ]
    # the socks get a neutral box of the same size, hidden from screen readers
    socks_row = re.search(r'<li class="pp-items__item">((?:(?!</li>).)*Wool socks)', html)
    assert socks_row is not None
    assert '<span class="pp-items__image pp-items__image--none" aria-hidden="true">' in (
        socks_row.group(1)
    )
    # the picture is decorative (alt=""): the title beside it names the item
    shoe_row = re.search(r'<li class="pp-items__item">((?:(?!</li>).)*)</li>', html)
    assert shoe_row is not None
    assert "Trail shoe" in shoe_row.group(1)


def test_a_picture_url_that_is_not_http_is_never_rendered(client):
    # given a line whose stored URL was forged (the model would refuse it on full_clean)
    shop = make_shop()
    order = make_order(shop, 7011)
    make_line_item(order, "Tent", image_url="javascript:alert(1)")

    html = _link_page(client, order)

    assert "javascript:" not in html
    assert _IMG.findall(html) == []
    assert "pp-items__image--none" in html


def test_the_carriers_link_and_a_copy_button_go_with_each_number(client):
    shop = make_shop()
    order = make_order(shop, 7008)
    make_shipment(
        order,
        tracking_company="Canada Post",
        tracking_numbers=["7023 4567 8901", "7023 4567 8902"],
        tracking_urls=["https://www.canadapost-postescanada.ca/track?pin=702345678901"],
    )

    html = _link_page(client, order)

    numbers = re.findall(r'<span class="pp-tracking-number" id="([^"]+)">([^<]+)</span>', html)
    assert numbers == [("pp-tn-1-1", "7023 4567 8901"), ("pp-tn-1-2", "7023 4567 8902")]
    # a copy button per number, hidden until the script finds a clipboard
    assert html.count('<button class="pp-copy" type="button" hidden') == 2
    assert 'data-copy-target="pp-tn-1-2"' in html
    links = re.findall(r'<a class="pp-tracking-link" href="([^"]+)"[^>]*>([^<]+)</a>', html)
    assert links == [
        (
            "https://www.canadapost-postescanada.ca/track?pin=702345678901",
            "Track on Canada Post's website",
        )
    ]
    assert 'id="pp-copy-status" role="status"' in html


def test_the_shops_support_contact_is_offered_with_the_order_named(client):
    from shopapp.branding.services import BrandingChange, branding_save

    shop = make_shop()
    branding_save(
        shop=shop,
        change=BrandingChange(
            accent_color="#1f5130",
            text_color="#111111",
            background_color="#ffffff",
            font="georgia",
            support_email="help@outdoor.example",
            support_phone="+33 4 72 00 00 00",
        ),
    )
    order = make_order(shop, 7009)

    html = _link_page(client, order, extra=[("locale", "es")])

    assert (
        'href="mailto:help@outdoor.example?subject=Pregunta%20sobre%20el%20pedido%20%237009"'
        in html
    )
    assert 'href="tel:+33472000000"' in html
    assert "¿Necesitas ayuda con este pedido?" in html


def test_no_contact_section_without_a_support_contact(client):
    order = make_order(make_shop(), 7010)

    assert "pp-help" not in _link_page(client, order)


def test_the_language_switch_offers_the_four_languages_and_keeps_the_page(client):
    shop = make_shop()
    order = _order_with_shipment(shop, 7011)
    token = tracking_link_token(order)

    html = _link_page(client, order)

    links = re.findall(
        r'<a class="pp-languages__link" href="([^"]+)" hreflang="(\w+)" lang="\w+"'
        r'( aria-current="true")?>([^<]+)</a>',
        html,
    )
    assert links == [
        ("?locale=en", "en", ' aria-current="true"', "English"),
        ("?locale=es", "es", "", "Español"),
        ("?locale=fr", "fr", "", "Français"),
        ("?locale=de", "de", "", "Deutsch"),
    ]
    # following one: the same order's page (a query alone keeps the path), in that language,
    # whose own links keep the choice
    german = body(proxy_get(client, shop, "/" + token, extra=[("locale", "de")]))
    assert "Bestellung #7011" in german
    assert 'href="?locale=de" hreflang="de" lang="de" aria-current="true"' in german
    assert 'href="../track?locale=de"' in german


def test_the_lookup_page_has_the_language_switch_too(client):
    html = body(proxy_get(client, make_shop(), extra=[("locale", "fr")]))

    assert 'href="?locale=fr" hreflang="fr" lang="fr" aria-current="true">Français</a>' in html
    assert "Suivre votre commande" in html


# ---------------------------------------------------------------------------------------------
# Carrier events in the shopper's language, with the carrier's own words


@pytest.mark.parametrize(
    ("language", "label_printed", "picked_up", "unknown", "says"),
    [
        (
            "en",
            "Shipping label created",
            "Picked up by the carrier",
            "Tracking update",
            "UPS says:",
        ),
        (
            "es",
            "Etiqueta de envío creada",
            "Recogido por el transportista",
            "Actualización de seguimiento",
            "UPS indica:",
        ),
        (
            "fr",
            "Étiquette d'expédition créée",
            "Pris en charge par le transporteur",
            "Mise à jour du suivi",
            "UPS indique :",
        ),
        (
            "de",
            "Versandetikett erstellt",
            "Vom Versanddienstleister abgeholt",
            "Sendungsupdate",
            "UPS meldet:",
        ),
    ],
)
def test_events_read_in_the_shoppers_language_with_the_carriers_words_kept(
    client, language, label_printed, picked_up, unknown, says
):
    # given three events: two known statuses and one Shopify may add tomorrow
    shop = make_shop()
    order = make_order(shop, 7100, locale=language)
    shipment = make_shipment(order)
    base = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    make_event(shipment, "label_printed", message="Shipment information sent", happened_at=base)
    make_event(
        shipment,
        "CARRIER_PICKED_UP",
        message="Picked up at Lyon depot",
        happened_at=base + timedelta(hours=5),
    )
    make_event(
        shipment,
        "customs_cleared_somewhere",
        message="Cleared customs",
        happened_at=base + timedelta(hours=9),
    )
    # and one whose carrier words only repeat the status
    make_event(shipment, "delivered", message="Delivered", happened_at=base + timedelta(days=1))

    html = _link_page(client, order).replace("&#x27;", "'")

    labels = re.findall(r'class="pp-timeline__label">([^<]+)<', html)
    delivered = {"en": "Delivered", "es": "Entregado", "fr": "Livré", "de": "Zugestellt"}
    assert labels == [delivered[language], unknown, picked_up, label_printed]
    # the carrier's own words stay, as they came, marked as the carrier's
    messages = re.findall(r'class="pp-timeline__message">([^<]+)<', html)
    assert messages == ["Cleared customs", "Picked up at Lyon depot", "Shipment information sent"]
    assert html.count(f'<span class="pp-timeline__source">{says}</span>') == 3


def test_an_estimate_with_a_basis_shows_how_it_was_made():
    from django.template.loader import render_to_string as render

    from tracking.views import Estimate

    html = render(
        "tracking/_estimate.html",
        {
            "estimate": Estimate(
                date=datetime(2026, 3, 10, 12, tzinfo=UTC),
                basis="based on 240 deliveries to Ontario by Canada Post",
                is_predicted=True,
            )
        },
    )

    assert (
        '<span class="pp-estimate__basis">based on 240 deliveries to Ontario by Canada Post</span>'
        in html
    )
