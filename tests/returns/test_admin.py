"""The merchant's returns pages: real session tokens, scoped by the token's shop, POSTs with
the token in the Authorization header, Shopify's userErrors shown as messages. Shopify is the
devshop.

Two stores for the module: ``store`` with one order (its customer's only one) and a return
requested in Shopify by the app's send job, which the tests only read; and ``busy``, a pool of
orders for the tests whose actions change the return in Shopify.
"""

import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import django_rq
import pytest
import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.db.models import F
from django.utils import timezone
from rq import SimpleWorker

from devshop.session_tokens import session_token_mint
from returns import services
from returns.eligibility import line_item_unit_value
from returns.models import (
    ReturnBlocklistEntry,
    ReturnLineItem,
    ReturnPhoto,
    ReturnPolicy,
    ReturnRequest,
)
from returns.policy import DEFAULT_REASONS
from shopapp.models import Order
from tests.conftest import need
from tests.returns.domain_support import make_shop
from tests.returns.store_support import DevshopStore

pytestmark = pytest.mark.django_db


def token_for(shop) -> str:
    return session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )


def get_page(client, shop, path, **params):
    return client.get(path, {"shop": shop.myshopify_domain, "id_token": token_for(shop), **params})


def post(client, shop, path, data=None):
    return client.post(
        f"{path}?shop={shop.myshopify_domain}",
        data or {},
        HTTP_AUTHORIZATION=f"Bearer {token_for(shop)}",
    )


def request_defective(shop, order) -> ReturnRequest:
    """The shopper's request for one unit of the first item, with a note."""
    first = order.line_items.order_by("shopify_id").first()
    return services.return_request_submit(
        shop=shop,
        order=order,
        items=[(first.pk, 1, "DEFECTIVE", "Seam came apart", None)],
        resolution="refund",
        customer_email=order.email,
        customer_id=order.customer_id,
    )


@pytest.fixture(scope="module")
def store(devshop_server, django_db_setup, django_db_blocker):
    """One order, and its return requested in Shopify through the send job (module setup runs
    outside any test transaction: the job is enqueued at once, and a burst worker runs it)."""
    connection = django_rq.get_connection("default")
    try:
        connection.ping()
    except redis.RedisError as exc:
        need(f"Redis unreachable: {exc}")
    with django_db_blocker.unblock():
        store = DevshopStore.open(devshop_server)
        (order_id,) = store.orders_create(1)
        store.mirror()
        with store.pointed():
            submitted = request_defective(store.shop(), store.order(order_id))
            worker = SimpleWorker([django_rq.get_queue("syncs")], connection=connection)
            worker.work(burst=True)
        store.requested_id = submitted.pk
    yield store
    with django_db_blocker.unblock():
        store.close()


@pytest.fixture(scope="module")
def busy(devshop_server, django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        busy = DevshopStore.open(devshop_server)
        busy.pool_fill(5)
        busy.mirror()
    yield busy
    with django_db_blocker.unblock():
        busy.close()


@pytest.fixture(autouse=True)
def _app_calls_the_devshop(devshop):
    """Every test's Admin API calls go to the devshop (settings are per test)."""


@pytest.fixture
def shop(store):
    return store.shop()


@pytest.fixture
def other():
    return make_shop("bravo.myshopify.com")


@pytest.fixture
def requested(store):
    found = ReturnRequest.objects.get(pk=store.requested_id)
    assert (found.status, found.sync_state) == ("REQUESTED", "synced")
    return found


@pytest.fixture
def own_requested(busy):
    """A return of a pool order, requested in Shopify: the test may act on it."""
    order = busy.take()
    shop = busy.shop()
    request = services.return_request_send(request_id=request_defective(shop, order).pk)
    assert busy.order_returns(order.shopify_id) == [
        {"id": request.shopify_return_id, "status": "REQUESTED"}
    ]
    return request


def shopify_status(store, request) -> str:
    return store.return_facts(request.shopify_return_id)["status"]


def test_queue_lists_requested_first(client, store, shop, requested):
    closed = ReturnRequest.objects.create(
        shop=shop, order=requested.order, resolution="refund", status="CLOSED"
    )

    html = get_page(client, shop, "/app/returns/").content.decode()

    assert html.index(f'data-return="{requested.pk}"') < html.index(f'data-return="{closed.pk}"')
    assert "Seam" not in html  # notes are on the return's page only


def test_return_page_shows_items_reason_note_and_history(client, shop, requested):
    response = get_page(client, shop, f"/app/returns/{requested.pk}")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Damaged or defective" in html
    assert "Seam came apart" in html
    assert "0 earlier returns · 1 order" in html
    assert 'id="approve"' in html
    assert 'id="decline"' in html


def test_another_shops_return_is_not_found(client, store, other, requested):
    assert get_page(client, other, f"/app/returns/{requested.pk}").status_code == 404
    assert post(client, other, f"/app/returns/{requested.pk}/approve").status_code == 404
    assert ReturnRequest.objects.get(pk=requested.pk).status == "REQUESTED"
    assert shopify_status(store, requested) == "REQUESTED"


def test_post_without_the_authorization_header_is_refused(client, store, shop, requested):
    response = client.post(
        f"/app/returns/{requested.pk}/approve?shop={shop.myshopify_domain}&id_token={token_for(shop)}"
    )

    assert response.status_code == 401
    assert ReturnRequest.objects.get(pk=requested.pk).status == "REQUESTED"
    assert shopify_status(store, requested) == "REQUESTED"


def test_approve_with_instructions(client, busy, own_requested):
    shop = busy.shop()

    response = post(
        client,
        shop,
        f"/app/returns/{own_requested.pk}/approve",
        {"instructions": "Use the blue box"},
    )

    # then: Post/Redirect/Get to the return's page, which says what happened
    assert response.status_code == 303
    assert response["Location"].startswith(f"/app/returns/{own_requested.pk}?")
    assert "notice=approved" in response["Location"]
    shown = get_page(client, shop, f"/app/returns/{own_requested.pk}", notice="approved")
    assert "Return approved." in shown.content.decode()
    stored = ReturnRequest.objects.get(pk=own_requested.pk)
    assert (stored.status, stored.approval_instructions) == ("OPEN", "Use the blue box")
    assert shopify_status(busy, own_requested) == "OPEN"


def test_shopify_user_errors_are_shown_as_a_message(client, busy, own_requested):
    # given the merchant approved the return meanwhile in Shopify's admin (the webhook has
    # not reached the app), so Shopify refuses to decline it
    shop = busy.shop()
    busy.merchant(own_requested.shopify_return_id, "approve")

    response = post(
        client, shop, f"/app/returns/{own_requested.pk}/decline", {"reason": "FINAL_SALE"}
    )

    assert response.status_code == 409
    assert "Return is open; it can&#x27;t be declined." in response.content.decode()
    assert ReturnRequest.objects.get(pk=own_requested.pk).status == "REQUESTED"
    assert shopify_status(busy, own_requested) == "OPEN"


def test_photo_is_served_only_to_its_shop(client, shop, other, requested):
    line = requested.line_items.get()
    photo = ReturnPhoto(shop=shop, return_line_item=line, content_type="image/png", size_bytes=3)
    photo.image.save("p.png", ContentFile(b"png"), save=True)

    mine = get_page(client, shop, f"/app/returns/photos/{photo.pk}")
    theirs = get_page(client, other, f"/app/returns/photos/{photo.pk}")

    assert mine.status_code == 200
    assert b"".join(mine.streaming_content) == b"png"
    assert mine["Cache-Control"] == "private, no-store"
    assert theirs.status_code == 404


def test_blocklist_add_and_remove(client, shop, other):
    post(client, shop, "/app/returns/blocklist", {"email": "Eve@Example.com"})
    entry = ReturnBlocklistEntry.objects.get(shop=shop)
    assert entry.email == "eve@example.com"

    assert post(client, other, f"/app/returns/blocklist/{entry.pk}/remove").status_code == 404
    assert post(client, shop, f"/app/returns/blocklist/{entry.pk}/remove").status_code == 303
    assert not ReturnBlocklistEntry.objects.exists()


def test_policy_form_saves_and_refuses_bad_input(client, shop):
    data = {
        "window_days": "45",
        "transit_allowance_days": "5",
        "excluded_product_tags": "final-sale, clearance",
        "excluded_product_types": "",
        "allow_refund": "on",
        "restocking_fee_percent": "10",
        "return_shipping_fee": "4.50",
        "reasons": ["SIZE_TOO_SMALL", "DEFECTIVE"],
        "reasons_requiring_photo": ["DEFECTIVE"],
        "auto_approve_max_value": "80",
        "high_return_ratio": "0.5",
    }
    assert post(client, shop, "/app/returns/policy", data).status_code == 303
    policy = ReturnPolicy.objects.get(shop=shop)
    assert (policy.window_days, policy.allow_exchange) == (45, False)
    assert policy.reasons == ["SIZE_TOO_SMALL", "DEFECTIVE"]

    bad = post(client, shop, "/app/returns/policy", {**data, "restocking_fee_percent": "150"})

    assert bad.status_code == 400
    policy.refresh_from_db()
    assert policy.restocking_fee_percent == 10


def _own_requested(busy) -> ReturnRequest:
    order = busy.take()
    return services.return_request_send(request_id=request_defective(busy.shop(), order).pk)


def test_queue_shows_customer_items_reason_age_value_and_estimate(client, shop, requested):
    # given: the store's refund request, and two returns whose stored estimate is 0 (an
    # exchange, and a return made in Shopify's admin, which the app never estimated)
    line = requested.line_items.get()
    unit = line_item_unit_value(line.line_item)
    exchange = ReturnRequest.objects.create(
        shop=shop, order=requested.order, resolution="exchange", status="REQUESTED"
    )
    from_shopify = ReturnRequest.objects.create(
        shop=shop, order=requested.order, resolution="refund", status="OPEN"
    )
    for ret in (exchange, from_shopify):
        ReturnLineItem.objects.create(
            shop=shop, return_request=ret, line_item=line.line_item, quantity=1, reason="COLOR"
        )
    # when
    html = get_page(client, shop, "/app/returns/").content.decode()

    # then
    def row(ret):
        start = html.index(f'data-return="{ret.pk}"')
        return html[start : html.index("</tr>", start)]

    mine = row(requested)
    order = requested.order
    name = " ".join(p for p in (order.customer_first_name, order.customer_last_name) if p)
    assert name in mine
    assert requested.customer_email in mine
    assert line.line_item.title in mine
    assert "Damaged or defective" in mine
    assert re.search(r"data-age><time[^>]*>\d+\W+minutes?|data-age><time[^>]*>0\W+minutes", mine)
    assert f"data-value>{unit * line.quantity}" in mine
    assert f"Refund</span> {requested.refund_estimate}" in mine
    assert f"Exchange worth</span> {unit}" in row(exchange)
    policy = ReturnPolicy.objects.get(shop=shop)
    fees = unit * policy.restocking_fee_percent / 100 + policy.return_shipping_fee
    expected = max(Decimal("0.00"), unit - fees).quantize(Decimal("0.01"))
    assert f"Refund</span> {expected}" in row(from_shopify)
    assert "0.00 " not in row(exchange).split("data-estimate>")[1].split("</td>")[0]


def test_queue_shows_the_shoppers_photo_as_a_thumbnail(client, shop, requested):
    line = requested.line_items.get()
    photo = ReturnPhoto(shop=shop, return_line_item=line, content_type="image/png", size_bytes=3)
    photo.image.save("p.png", ContentFile(b"png"), save=False)
    photo.thumbnail.save("t.png", ContentFile(b"png"), save=True)
    html = get_page(client, shop, "/app/returns/").content.decode()
    assert f'src="/app/returns/photos/{photo.pk}?size=thumb&amp;' in html


def test_bulk_approve_acts_on_the_shops_ticked_returns_then_redirects(client, busy, other):
    shop = busy.shop()
    first, second = _own_requested(busy), _own_requested(busy)
    theirs = ReturnRequest.objects.create(
        shop=other,
        order=Order.objects.create(shop=other, shopify_id=1, name="#1"),
        resolution="refund",
        status="REQUESTED",
    )
    # when
    response = post(
        client,
        shop,
        "/app/returns/bulk",
        {"action": "approve", "ids": [first.pk, second.pk, theirs.pk]},
    )
    # then
    assert response.status_code == 303
    query = parse_qs(urlsplit(response["Location"]).query)
    assert (query["notice"], query["done"], query["failed"]) == (["bulk"], ["2"], ["1"])
    for ret in (first, second):
        assert ReturnRequest.objects.get(pk=ret.pk).status == "OPEN"
        assert shopify_status(busy, ret) == "OPEN"
    assert ReturnRequest.objects.get(pk=theirs.pk).status == "REQUESTED"
    kept = {k: v[0] for k, v in query.items() if k not in ("shop", "id_token")}
    page = get_page(client, shop, "/app/returns/", **kept)
    assert "2 returns approved. 1 could not be" in page.content.decode()


def test_bulk_decline_needs_a_reason_and_declines_in_shopify(client, busy):
    shop = busy.shop()
    ret = _own_requested(busy)
    refused = post(client, shop, "/app/returns/bulk", {"action": "decline", "ids": [ret.pk]})
    assert refused.status_code == 400
    assert ReturnRequest.objects.get(pk=ret.pk).status == "REQUESTED"
    done = post(
        client,
        shop,
        "/app/returns/bulk",
        {"action": "decline", "ids": [ret.pk], "reason": "FINAL_SALE", "note": "Final sale"},
    )
    assert done.status_code == 303
    assert ReturnRequest.objects.get(pk=ret.pk).status == "DECLINED"
    assert shopify_status(busy, ret) == "DECLINED"


@pytest.mark.parametrize(
    "data",
    [
        {"action": "delete", "ids": ["1"]},
        {"action": "approve"},
        {"action": "approve", "ids": ["x"]},
    ],
)
def test_bulk_refuses_bad_input(client, shop, requested, data):
    response = post(client, shop, "/app/returns/bulk", data)
    assert response.status_code == 400
    assert ReturnRequest.objects.get(pk=requested.pk).status == "REQUESTED"


def test_a_return_with_every_item_back_reads_received_without_the_receive_form(
    client, shop, requested
):
    # given: approved, then every unit received (what return_items_receive leaves)
    ReturnRequest.objects.filter(pk=requested.pk).update(status="OPEN", received_at=timezone.now())
    requested.line_items.update(received_quantity=F("quantity"))
    # when
    detail = get_page(client, shop, f"/app/returns/{requested.pk}").content.decode()
    queue = get_page(client, shop, "/app/returns/").content.decode()
    # then
    assert "data-received>Received</span>" in detail
    assert 'id="receive"' not in detail
    assert 'id="process"' in detail
    row = queue[queue.index(f'data-return="{requested.pk}"') :]
    assert "data-status-label>Received</span>" in row[: row.index("</tr>")]


def test_a_partly_received_return_keeps_the_receive_form(client, shop, requested):
    ReturnRequest.objects.filter(pk=requested.pk).update(status="OPEN")
    detail = get_page(client, shop, f"/app/returns/{requested.pk}").content.decode()
    assert 'id="receive"' in detail
    assert ">Approved</span>" in detail


def test_policy_page_explains_its_fields_and_never_offers_unknown(client, shop):
    html = get_page(client, shop, "/app/returns/policy").content.decode()
    assert 'value="UNKNOWN"' not in html
    assert "Unknown" not in html
    assert "Approve requests automatically" in html
    assert "Is auto approve" not in html
    assert "0.5 flags a customer who returned from half their orders" in html
    # a policy never saved offers every reason: the form shows them all ticked
    assert html.count('name="reasons" value=') == len(DEFAULT_REASONS)
    assert len(re.findall(r'name="reasons" value="[A-Z_]+"[^>]*checked', html)) == len(
        DEFAULT_REASONS
    )


def test_policy_with_no_reason_ticked_is_refused(client, shop):
    data = {
        "window_days": "30",
        "transit_allowance_days": "7",
        "allow_refund": "on",
        "restocking_fee_percent": "0",
        "return_shipping_fee": "0",
        "auto_approve_max_value": "100",
        "high_return_ratio": "0.5",
    }
    response = post(client, shop, "/app/returns/policy", data)
    assert response.status_code == 400
    assert "Tick at least one reason" in response.content.decode()
    assert (
        post(client, shop, "/app/returns/policy", {**data, "reasons": ["UNKNOWN"]}).status_code
        == 400
    )


def test_queue_queries_do_not_grow_with_the_page(client, shop, requested):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert get_page(client, shop, "/app/returns/").status_code == 200
        return len(queries)

    line = requested.line_items.get()
    one = count()
    for _ in range(6):
        ret = ReturnRequest.objects.create(
            shop=shop, order=requested.order, resolution="exchange", status="REQUESTED"
        )
        ReturnLineItem.objects.create(
            shop=shop, return_request=ret, line_item=line.line_item, quantity=1, reason="STYLE"
        )
    assert count() == one
