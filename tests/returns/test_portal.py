"""The storefront returns portal, called as Shopify's app proxy calls it: every request here is
signed with the app's secret exactly as Shopify signs it, and eligibility reads Shopify (the
devshop) for what is still returnable. The storefront-rendered tests (Liquid, the devshop's
own signatures) are in test_portal_storefront.py; uploads in test_portal_uploads.py.

Shared factories live here (portal_shop, delivered_order, …) and the other portal tests import
them.
"""

import io
import itertools
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape
from urllib.parse import urlencode

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone
from PIL import Image

from returns import portal, services
from returns.models import ProductInfo, ReturnLineItem, ReturnPolicy, ReturnRequest
from shopapp.models import LineItem, Order, Shop
from shopapp.orders.reconcile import orders_reconcile
from shopapp.proxy import app_proxy_signature
from shopapp.storefront.links import form_token, tracking_link_token
from tracking.models import Shipment, ShipmentLineItem, Stage

pytestmark = pytest.mark.django_db(transaction=True)

STATE_RE = re.compile(r'name="state" value="([^"]+)"')
STATUS_LINK_RE = re.compile(r'href="(?:\.\./)?returns/([^"/]+)"')
# Each request from its own address, so the per-address limits never pause a test: a count, not
# a range of 249 that the portal's tests (now more of them) ran out of.
_ips = itertools.count()


# The smallest valid images: the portal reads the first bytes, so a header is enough.
def image_bytes(fmt: str, size: tuple[int, int] = (16, 12), mode: str = "RGB", **save) -> bytes:
    """A real (tiny) image, as a phone or a carrier's site would send one."""
    out = io.BytesIO()
    colour = (200, 40, 40, 128) if mode == "RGBA" else (200, 40, 40)
    Image.new(mode, size, colour[: len(mode)]).save(out, format=fmt, **save)
    return out.getvalue()


JPEG = image_bytes("JPEG")
PNG = image_bytes("PNG")
WEBP = image_bytes("WEBP")


# ---------------------------------------------------------------------------------------------
# Factories: a shop installed in the devshop, orders made there and mirrored here


def portal_shop(devshop, **fields) -> Shop:
    """A devshop store with the app installed; the app's Shop holds its token."""
    from shopapp.auth.tokens import shop_tokens_assign

    domain = f"ret-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain, name="Acme Outdoor")
    grant = devshop.client.app_install_with_token(domain)
    now = timezone.now()
    shop = Shop(
        myshopify_domain=domain,
        name="Acme Outdoor",
        is_active=True,
        installed_at=now,
        timezone="Europe/Paris",
        currency="USD",
        **fields,
    )
    shop_tokens_assign(
        shop=shop,
        access_token=grant["access_token"],
        access_token_expires_at=now + timedelta(seconds=grant["expires_in"]),
        refresh_token=grant["refresh_token"],
        refresh_token_expires_at=now + timedelta(seconds=grant["refresh_token_expires_in"]),
    )
    shop.save()
    return shop


def delivered_order(
    devshop,
    shop: Shop,
    *,
    line_items: int = 2,
    delivered_days_ago: int | None = 3,
    fulfil: bool = True,
    **overrides,
) -> Order:
    """An order made in the devshop, shipped there, mirrored here by reconciliation, with a
    delivered shipment in the app (the window counts from ``delivered_at``)."""
    # English unless a test says otherwise: the portal speaks the order's language.
    overrides.setdefault("customer_locale", "en")
    [order_id] = devshop.client.orders_create(
        shop.myshopify_domain, count=1, line_items=line_items, **overrides
    )
    if fulfil:
        devshop.client.order_fulfil(shop.myshopify_domain, order_id)
    orders_reconcile(shop=shop)
    order = Order.objects.get(shop=shop, shopify_id=order_id)
    if fulfil:
        delivered_at = (
            timezone.now() - timedelta(days=delivered_days_ago)
            if delivered_days_ago is not None
            else None
        )
        shipment = Shipment.objects.create(
            shop=shop,
            order=order,
            fulfillment_id=int(time.time() * 1000) % 10**12,
            status="success",
            shipment_status="delivered" if delivered_at else "in_transit",
            stage=Stage.DELIVERED if delivered_at else Stage.IN_TRANSIT,
            delivered_at=delivered_at,
            shopify_created_at=timezone.now() - timedelta(days=(delivered_days_ago or 0) + 2),
        )
        for line in order.line_items.all():
            ShipmentLineItem.objects.create(
                shop=shop,
                shipment=shipment,
                line_item_shopify_id=line.shopify_id,
                quantity=line.quantity,
            )
    return order


def lines(order: Order) -> list[LineItem]:
    return list(order.line_items.order_by("id"))


def signed_query(shop: Shop, *, customer_id: str = "", extra=(), now: int | None = None) -> str:
    pairs = list(extra) + [
        ("shop", shop.myshopify_domain),
        ("logged_in_customer_id", customer_id),
        ("path_prefix", "/apps/postpurchase"),
        ("timestamp", str(now if now is not None else int(time.time()))),
    ]
    pairs.append(("signature", app_proxy_signature(pairs, secret=settings.SHOPIFY_API_SECRET)))
    return urlencode(pairs)


def fresh_ip() -> str:
    # 198.18.0.0/15, the range set aside for testing (RFC 2544)
    n = next(_ips)
    return f"198.{18 + n // 62500}.{n // 250 % 250}.{n % 250 + 1}"


def proxy_get(client, shop: Shop, path: str = "", *, ip: str | None = None, **kwargs):
    headers = kwargs.pop("headers", {})
    return client.get(
        f"/proxy/returns{path}?{signed_query(shop, **kwargs)}",
        headers={"X-Forwarded-For": ip or fresh_ip(), **headers},
    )


def proxy_post(client, shop: Shop, data: dict, *, ip: str | None = None, **kwargs):
    headers = kwargs.pop("headers", {})
    return client.post(
        f"/proxy/returns?{signed_query(shop, **kwargs)}",
        data=data,
        headers={"X-Forwarded-For": ip or fresh_ip(), **headers},
    )


def body(response) -> str:
    html = response.content.decode()
    return html.split("</style>", 1)[1] if "</style>" in html else html


def state_of(response) -> str:
    match = STATE_RE.search(body(response))
    assert match, body(response)[:2000]
    return unescape(match.group(1))


def lookup(client, shop: Shop, order: Order, contact: str | None = None, **kwargs):
    return proxy_post(
        client,
        shop,
        {
            "step": "lookup",
            "form_token": form_token(shop),
            "order": order.name,
            "contact": contact if contact is not None else order.email,
        },
        **kwargs,
    )


def choose(client, shop: Shop, state: str, picks: dict, resolution: str = "refund", **kw):
    """The items step: ``picks`` maps a LineItem to (quantity, reason[, note[, photos]])."""
    data: dict = {"step": "items", "state": state, "resolution": resolution}
    for line, pick in picks.items():
        data[f"quantity-{line.pk}"] = str(pick[0])
        data[f"reason-{line.pk}"] = pick[1]
        if len(pick) > 2:
            data[f"note-{line.pk}"] = pick[2]
        if len(pick) > 3:
            data[f"photos-{line.pk}"] = pick[3]
        if len(pick) > 4:
            data[f"variant-{line.pk}"] = str(pick[4])
    return proxy_post(client, shop, data, **kw)


def submit(client, shop: Shop, state: str, **kw):
    return proxy_post(client, shop, {"step": "submit", "state": state}, **kw)


def photo(name: str = "shoe.jpg", content: bytes = JPEG, content_type: str = "image/jpeg"):
    handle = io.BytesIO(content)
    handle.name = name
    handle.content_type = content_type
    return handle


@pytest.fixture(autouse=True)
def _fresh_redis(settings):
    """Each test starts with fresh rate-limit counters and submission claims."""
    import redis

    connection = redis.Redis.from_url(settings.REDIS_URL)
    try:
        for pattern in ("tracking:rl:*", "returns:submit:*"):
            for key in connection.scan_iter(pattern):
                connection.delete(key)
    except redis.RedisError:
        pass


@pytest.fixture
def shop(devshop, settings, tmp_path):
    # Photos land under MEDIA_ROOT: each test gets its own, so "nothing stashed" means it.
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return portal_shop(devshop)


# ---------------------------------------------------------------------------------------------
# The lookup


def test_lookup_page_is_liquid_private_and_prefilled_from_the_tracking_hint(client, shop):
    # when a shopper follows the tracking page's link with ?order=
    response = proxy_get(client, shop, extra=[("order", "1042")])

    # then the lookup form is Liquid for the theme, never cached, with the number filled in
    assert response.status_code == 200
    assert response["Content-Type"] == "application/liquid; charset=utf-8"
    assert response["Cache-Control"] == "private, no-store"
    assert not response.cookies
    html = body(response)
    assert 'name="order"' in html
    assert 'value="1042"' in html
    assert 'name="contact"' in html
    assert 'name="form_token"' in html


def test_lookup_by_number_and_email_lists_the_items(client, devshop, shop):
    # given a delivered order of two clothes (size reasons are offered for clothes)
    order = delivered_order(devshop, shop, line_item_product_type="Apparel")

    # when the shopper types its number and email (upper case, spaces)
    response = lookup(client, shop, order, contact=f"  {order.email.upper()} ")

    # then every item can be chosen, with the policy's reasons and resolutions
    assert response.status_code == 200
    html = body(response)
    for line in lines(order):
        assert f'name="quantity-{line.pk}"' in html
        assert f'name="reason-{line.pk}"' in html
    assert 'value="SIZE_TOO_SMALL"' in html
    assert "Size too small" in html
    assert 'value="UNKNOWN"' not in html
    assert 'value="refund"' in html
    assert 'value="store_credit"' in html
    assert 'enctype="multipart/form-data"' in html
    assert state_of(response)


def test_lookup_by_number_and_shipping_postal_code(client, devshop, shop):
    order = delivered_order(devshop, shop)
    assert order.shipping_zip

    response = lookup(client, shop, order, contact=order.shipping_zip.lower().replace(" ", ""))

    assert response.status_code == 200
    assert f'name="quantity-{lines(order)[0].pk}"' in body(response)


def test_postal_code_guesses_spend_a_slower_budget_per_order(client, devshop, shop, settings):
    # given an order whose number is known, and a day's budget of 3 postal-code proofs for it
    settings.TRACKING_LOOKUP_WEAK_PROOF_PER_ORDER = 3
    settings.TRACKING_LOOKUP_RATE_PER_ORDER = 100
    order = delivered_order(devshop, shop)

    # when guesses of its ZIP come from ever new addresses, at midday (the budget is a fixed
    # window of a UTC day: in the day's last hour its end is as near as the hourly window's)
    midday = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    with time_machine.travel(midday, tick=True):
        guesses = [lookup(client, shop, order, contact=f"{90210 + i:05d}") for i in range(3)]
        right_code_too_late = lookup(client, shop, order, contact=order.shipping_zip)

    # then the fourth is refused, even with the right code, and for the day
    assert [g.status_code for g in guesses] == [200, 200, 200]
    assert right_code_too_late.status_code == 429
    assert int(right_code_too_late["Retry-After"]) > 3600
    assert "quantity-" not in body(right_code_too_late)
    # while the order's email still works for its owner
    assert lookup(client, shop, order).status_code == 200


def test_wrong_email_and_wrong_number_get_the_same_answer(client, devshop, shop):
    # given an order
    order = delivered_order(devshop, shop)

    # when one lookup has the wrong email and another a number that does not exist
    wrong_email = lookup(client, shop, order, contact="someone@else.example")
    ghost = Order(name="#999999", email=order.email)
    wrong_number = lookup(client, shop, ghost)

    # then both say the same thing, and neither shows an item
    assert wrong_email.status_code == wrong_number.status_code == 200
    message = "We couldn&#x27;t find an order with these details."
    assert message in body(wrong_email)
    assert message in body(wrong_number)
    for response in (wrong_email, wrong_number):
        assert 'name="quantity-' not in body(response)
        assert 'name="state"' not in body(response)


def test_another_shops_order_is_not_found(client, devshop, shop):
    # given an order of another shop, looked up with its real number and email
    other = portal_shop(devshop)
    order = delivered_order(devshop, other)

    response = lookup(client, shop, order)

    assert "We couldn&#x27;t find an order" in body(response)
    assert 'name="state"' not in body(response)


def test_lookup_without_a_valid_form_token_is_refused(client, devshop, shop):
    order = delivered_order(devshop, shop)

    response = proxy_post(
        client,
        shop,
        {"step": "lookup", "form_token": "forged", "order": order.name, "contact": order.email},
    )

    assert "This page has expired" in body(response)
    assert 'name="state"' not in body(response)


def test_lookups_are_rate_limited_per_order_number(client, devshop, shop):
    # given an order someone tries with many emails from many addresses
    order = delivered_order(devshop, shop)
    for n in range(5):
        lookup(client, shop, order, contact=f"guess{n}@example.com")

    # when the right email comes next
    response = lookup(client, shop, order)

    # then the limit holds: a clear message, no order
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many lookups" in body(response)
    assert 'name="state"' not in body(response)


def test_forged_and_stale_signatures_are_refused(client, devshop, shop):
    order = delivered_order(devshop, shop)
    data = {"step": "lookup", "form_token": form_token(shop), "order": order.name}
    data["contact"] = order.email

    forged = client.post(
        f"/proxy/returns?{signed_query(shop)}".replace("signature=", "signature=0"), data=data
    )
    stale = client.post(
        f"/proxy/returns?{signed_query(shop, now=int(time.time()) - 3600)}", data=data
    )

    assert forged.status_code == 403
    assert stale.status_code == 403
    assert order.name.encode() not in forged.content + stale.content


# ---------------------------------------------------------------------------------------------
# Logged-in customers and the tracking page's link


def test_logged_in_customer_sees_their_orders_only(client, devshop, shop):
    # given two orders of this customer and one of another
    mine = delivered_order(devshop, shop)
    Order.objects.filter(pk=mine.pk).update(customer_id=4242)
    theirs = delivered_order(devshop, shop)
    Order.objects.filter(pk=theirs.pk).update(customer_id=777)

    response = proxy_get(client, shop, customer_id="4242")

    html = body(response)
    assert f"<strong>{mine.name}</strong>" in html
    assert f"<strong>{theirs.name}</strong>" not in html
    assert f"order_id={mine.pk}" in html
    assert f"order_id={theirs.pk}" not in html


def test_logged_in_customer_cannot_open_another_customers_order(client, devshop, shop):
    # given an order of customer 777
    theirs = delivered_order(devshop, shop)
    Order.objects.filter(pk=theirs.pk).update(customer_id=777)

    # when customer 4242 asks for it by id
    response = proxy_get(client, shop, customer_id="4242", extra=[("order_id", str(theirs.pk))])

    # then it is not found, and nothing of it shows
    assert response.status_code == 404
    assert "We couldn&#x27;t find an order" in body(response)
    assert 'name="state"' not in body(response)
    assert f"order {theirs.name}" not in body(response)


def test_tracking_link_token_opens_the_items(client, devshop, shop):
    order = delivered_order(devshop, shop)

    response = proxy_get(
        client, shop, extra=[("order", order.name), ("token", tracking_link_token(order))]
    )

    assert response.status_code == 200
    assert f'name="quantity-{lines(order)[0].pk}"' in body(response)


def test_a_state_from_another_customer_is_refused(client, devshop, shop):
    # given customer 4242 started a return of their order
    order = delivered_order(devshop, shop)
    Order.objects.filter(pk=order.pk).update(customer_id=4242)
    started = proxy_get(client, shop, customer_id="4242", extra=[("order_id", str(order.pk))])
    state = state_of(started)

    # when the state is posted by another logged-in customer
    line = lines(order)[0]
    response = choose(client, shop, state, {line: (1, "UNWANTED")}, customer_id="777")

    # then the page starts over
    assert "This page has expired" in body(response)
    assert ReturnRequest.objects.count() == 0


# ---------------------------------------------------------------------------------------------
# Eligibility shown


def test_every_ineligible_item_shows_its_reason(client, devshop, shop):
    # given an order of four items: a final-sale product, a gift card, a discounted item (the
    # policy excludes them), and one fine item
    ReturnPolicy.objects.create(
        shop=shop, excluded_product_tags="final-sale", exclude_discounted_items=True
    )
    order = delivered_order(devshop, shop, line_items=4)
    final_sale, gift_card, discounted, fine = lines(order)
    now = timezone.now()
    # One product per line (two variants of one product would share its tags), with its tags
    # already read, as eligibility caches them.
    for n, line in enumerate(lines(order)):
        LineItem.objects.filter(pk=line.pk).update(product_id=9_100_000 + n)
        ProductInfo.objects.create(
            shop=shop,
            product_id=9_100_000 + n,
            tags=["final-sale"] if line == final_sale else ["new"],
            product_type="Apparel",
            fetched_at=now,
            variants_fetched_at=now,
        )
    LineItem.objects.filter(pk=gift_card.pk).update(is_gift_card=True)
    LineItem.objects.filter(pk=discounted.pk).update(total_discount=Decimal("1.00"))
    LineItem.objects.filter(pk=fine.pk).update(total_discount=Decimal("0"))

    response = lookup(client, shop, order)

    html = body(response)
    assert "Final sale" in html
    assert "Gift cards can&#x27;t be returned" in html
    assert "Discounted items can&#x27;t be returned" in html
    assert f'name="quantity-{fine.pk}"' in html
    for blocked in (final_sale, gift_card, discounted):
        assert f'name="quantity-{blocked.pk}"' not in html


def test_window_ended_shows_the_date(client, devshop, shop):
    ReturnPolicy.objects.create(shop=shop, window_days=30)
    order = delivered_order(devshop, shop, line_items=1, delivered_days_ago=45)

    response = lookup(client, shop, order)

    html = body(response)
    assert "The return window ended on" in html
    assert "Nothing in this order can be returned right now." in html
    assert 'name="quantity-' not in html


def test_unshipped_items_are_not_returnable(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1, fulfil=False)

    response = lookup(client, shop, order)

    assert "Not shipped yet" in body(response)
    assert 'name="quantity-' not in body(response)


def test_cancelled_order_says_so(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1)
    Order.objects.filter(pk=order.pk).update(cancelled_at=timezone.now())

    response = lookup(client, shop, order)

    assert "The order was cancelled" in body(response)


# ---------------------------------------------------------------------------------------------
# Choose, review, submit


def test_full_flow_refund_lands_on_the_status_page(client, devshop, shop, rq_worker):
    # given a policy with fees
    ReturnPolicy.objects.create(
        shop=shop, restocking_fee_percent=Decimal("10"), return_shipping_fee=Decimal("5.00")
    )
    order = delivered_order(devshop, shop, line_items=2)
    first, second = lines(order)
    state = state_of(lookup(client, shop, order))

    # when the shopper returns one unit of the first item
    review = choose(client, shop, state, {first: (1, "NOT_AS_DESCRIBED", "Runs small")})

    # then the review shows the estimate with the fees deducted
    assert review.status_code == 200, body(review)[:3000]
    html = body(review)
    unit = (first.price - first.total_discount / first.quantity).quantize(Decimal("0.01"))
    restocking = (unit * Decimal("0.10")).quantize(Decimal("0.01"))
    expected = (unit - restocking - Decimal("5.00")).quantize(Decimal("0.01"))
    assert "Restocking fee" in html
    assert "Return shipping" in html
    assert f"{max(expected, Decimal('0.00'))} USD" in html
    assert "Runs small" in html
    assert ReturnRequest.objects.count() == 0

    # when they submit
    done = submit(client, shop, state_of(review))

    # then one request is stored at once, pending, and the status page says so
    assert done.status_code == 201, body(done)[:3000]
    [rr] = ReturnRequest.objects.filter(shop=shop)
    assert rr.sync_state == ReturnRequest.SyncState.PENDING
    assert rr.resolution == "refund"
    [item] = rr.line_items.all()
    assert (item.line_item_id, item.quantity, item.reason) == (first.pk, 1, "NOT_AS_DESCRIBED")
    assert item.customer_note == "Runs small"
    html = body(done)
    assert "we've received your return request" in html
    assert "We&#x27;re sending your return to the store." in html
    token = STATUS_LINK_RE.search(html).group(1)

    # when the job sends it to Shopify (the devshop)
    rq_worker()

    # then the status page shows it requested
    rr.refresh_from_db()
    assert rr.sync_state == ReturnRequest.SyncState.SYNCED
    assert rr.shopify_return_id
    page = proxy_get(client, shop, path=f"/{unescape(token)}")
    assert page.status_code == 200
    assert 'data-status="requested"' in body(page) or 'data-status="approved"' in body(page)


def test_the_same_form_submitted_twice_stores_one_request(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1)
    [line] = lines(order)
    review = choose(client, shop, state_of(lookup(client, shop, order)), {line: (1, "UNWANTED")})
    state = state_of(review)

    first = submit(client, shop, state)
    second = submit(client, shop, state)

    assert first.status_code == 201
    assert second.status_code == 409
    assert "This return was already submitted." in body(second)
    assert 'href="returns/' in body(second)
    assert ReturnRequest.objects.filter(shop=shop).count() == 1
    assert ReturnLineItem.objects.filter(shop=shop).count() == 1


def test_the_same_items_cannot_be_requested_while_a_request_is_open(client, devshop, shop):
    # given a submitted request for every unit of the item
    order = delivered_order(devshop, shop, line_items=1)
    [line] = lines(order)
    everything = line.quantity
    state_one = state_of(
        choose(
            client, shop, state_of(lookup(client, shop, order)), {line: (everything, "UNWANTED")}
        )
    )
    # and a second tab that chose the same item before the first was submitted
    state_two = state_of(
        choose(
            client, shop, state_of(lookup(client, shop, order)), {line: (everything, "UNWANTED")}
        )
    )
    assert submit(client, shop, state_one).status_code == 201

    # when the second tab submits
    response = submit(client, shop, state_two)

    # then it is refused with a clear message and nothing more is stored
    assert response.status_code == 409
    assert "already open" in body(response)
    assert ReturnRequest.objects.filter(shop=shop).count() == 1


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("de", "Für diese Bestellung können wir online keine Rücksendung annehmen."),
        ("es", "No podemos aceptar una devolución en línea para este pedido."),
        ("fr", "Nous ne pouvons pas accepter de retour en ligne pour cette commande."),
    ],
)
def test_a_refused_submission_speaks_the_orders_language(client, devshop, shop, language, words):
    # given a shopper of an order placed in another language, at the review step
    order = delivered_order(devshop, shop, line_items=1, customer_locale=language)
    Order.objects.filter(pk=order.pk).update(locale=language)
    [line] = lines(order)
    review = choose(client, shop, state_of(lookup(client, shop, order)), {line: (1, "UNWANTED")})
    # and the merchant blocklisting their email meanwhile
    services.blocklist_entry_add(shop=shop, email=order.email)

    # when they submit, then the refusal, and the page around it, are in the order's language
    response = submit(client, shop, state_of(review))
    assert response.status_code == 409
    assert response["Content-Language"] == language
    assert words in unescape(body(response))
    assert f'lang="{language}"' in body(response)
    assert ReturnRequest.objects.filter(shop=shop).count() == 0


def test_a_tampered_state_is_refused(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1)
    state = state_of(lookup(client, shop, order))
    tampered = state[:-3] + ("abc" if not state.endswith("abc") else "xyz")

    response = submit(client, shop, tampered)

    assert "This page has expired" in body(response)
    assert ReturnRequest.objects.count() == 0


def test_a_state_for_another_shop_is_refused(client, devshop, shop):
    # given a genuine state issued under another shop's storefront
    other = portal_shop(devshop)
    order = delivered_order(devshop, other, line_items=1)
    state = state_of(lookup(client, other, order))

    # when it is posted under this shop
    response = choose(client, shop, state, {lines(order)[0]: (1, "UNWANTED")})

    assert "This page has expired" in body(response)
    assert 'name="quantity-' not in body(response)


def test_invalid_choices_are_shown_next_to_their_fields(client, devshop, shop):
    ReturnPolicy.objects.create(shop=shop, reasons_requiring_note=["DEFECTIVE"])
    order = delivered_order(devshop, shop, line_items=2)
    first, second = lines(order)
    state = state_of(lookup(client, shop, order))

    response = choose(
        client,
        shop,
        state,
        {first: (1, "DEFECTIVE"), second: (first.quantity + 9, "UNWANTED")},
        resolution="teleport",
    )

    html = body(response)
    assert response.status_code == 200
    assert "Tell us what&#x27;s wrong with this item." in html
    assert "You can return at most" in html
    assert "Choose how you&#x27;d like to be refunded." in html
    assert 'aria-invalid="true"' in html
    assert ReturnRequest.objects.count() == 0


def test_nothing_chosen_is_refused(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1)
    state = state_of(lookup(client, shop, order))

    response = proxy_post(client, shop, {"step": "items", "state": state, "resolution": "refund"})

    assert "Choose at least one item to return." in body(response)


def test_change_items_goes_back_with_the_choices_kept(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1)
    [line] = lines(order)
    # (a reason every product type is offered: STYLE is not offered for a face serum)
    review = choose(
        client, shop, state_of(lookup(client, shop, order)), {line: (1, "NOT_AS_DESCRIBED")}
    )

    back = proxy_post(client, shop, {"step": "back", "state": state_of(review)})

    html = body(back)
    assert f'name="quantity-{line.pk}"' in html
    assert '<option value="NOT_AS_DESCRIBED" selected>' in html
    assert 'value="refund" checked' in html


# ---------------------------------------------------------------------------------------------
# The status page


def make_request(shop: Shop, order: Order, **fields) -> ReturnRequest:
    rr = ReturnRequest.objects.create(
        shop=shop, order=order, resolution=fields.pop("resolution", "refund"), **fields
    )
    line = lines(order)[0]
    ReturnLineItem.objects.create(
        shop=shop, return_request=rr, line_item=line, quantity=1, reason="UNWANTED"
    )
    return rr


def status_page(client, shop: Shop, rr: ReturnRequest, **kwargs):
    return proxy_get(client, shop, path=f"/{portal.return_status_token(rr)}", **kwargs)


@pytest.mark.parametrize(
    ("fields", "key", "words"),
    [
        ({"status": "SUBMITTED"}, "pending", "We&#x27;re sending your return to the store."),
        ({"status": "REQUESTED", "sync_state": "synced"}, "requested", "reviewing your request"),
        (
            {
                "status": "OPEN",
                "sync_state": "synced",
                "approval_instructions": "Drop it at any post office.",
            },
            "approved",
            "Drop it at any post office.",
        ),
        (
            {
                "status": "DECLINED",
                "sync_state": "synced",
                "decline_reason": "FINAL_SALE",
                "decline_note": "Sale items are final.",
            },
            "declined",
            "The item is final sale.",
        ),
        (
            {"status": "OPEN", "sync_state": "synced", "received_at": timezone.now()},
            "received",
            "received your items",
        ),
        (
            {
                "status": "CLOSED",
                "sync_state": "synced",
                "processed_at": timezone.now(),
                "resolution": "exchange",
            },
            "closed",
            "Exchanged",
        ),
        (
            {"status": "OPEN", "sync_state": "synced", "processed_at": timezone.now()},
            "settled",
            "Refunded",
        ),
        ({"status": "CLOSED", "sync_state": "synced"}, "closed", "closed this return"),
        ({"status": "CANCELED", "sync_state": "synced"}, "canceled", "was canceled"),
    ],
)
def test_status_page_for_every_state(client, devshop, shop, fields, key, words):
    order = delivered_order(devshop, shop, line_items=1)
    rr = make_request(shop, order, **fields)

    response = status_page(client, shop, rr)

    assert response.status_code == 200
    assert f'data-status="{key}"' in body(response)
    assert words in body(response)


def test_status_page_shows_shopifys_refusal_as_a_message(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1)
    rr = make_request(
        shop,
        order,
        sync_state="failed",
        sync_error="Return line items quantity exceeds the returnable quantity.",
    )

    response = status_page(client, shop, rr)

    html = body(response)
    assert 'data-status="failed"' in html
    assert "We couldn&#x27;t send your return to the store" in html
    assert "exceeds the returnable quantity." in html
    assert "Traceback" not in html


def test_status_link_of_another_shop_or_tampered_is_a_clear_404(client, devshop, shop):
    other = portal_shop(devshop)
    order = delivered_order(devshop, other, line_items=1)
    rr = make_request(other, order)
    token = portal.return_status_token(rr)

    foreign = proxy_get(client, shop, path=f"/{token}")
    tampered = proxy_get(client, other, path=f"/{token[:-2]}xx")

    for response in (foreign, tampered):
        assert response.status_code == 404
        assert "This return link isn't valid" in body(response)
        assert f"order {order.name}" not in body(response)


def test_status_page_in_the_orders_language(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1)
    Order.objects.filter(pk=order.pk).update(locale="de")
    rr = make_request(shop, order, status="REQUESTED", sync_state="synced")

    response = status_page(client, shop, rr)

    assert response["Content-Language"] == "de"
    assert "Deine Rücksendung für Bestellung" in body(response)


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("es", "Iniciar una devolución"),
        ("fr", "Demander un retour"),
        ("de", "Rücksendung starten"),
        ("en", "Start a return"),
    ],
)
def test_lookup_page_in_each_language(client, shop, language, words):
    response = proxy_get(client, shop, headers={"Accept-Language": f"{language},en;q=0.5"})

    assert response["Content-Language"] == language
    assert words in body(response)
