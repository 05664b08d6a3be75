"""The support workspace on the order page: the timeline in plain words, grouped by parcel
and return and filtered; staff notes; the shopper's problems; "resend the last message"; the
signed tracking link and the Shopify admin link; the orders search across name, email, phone,
tracking number and return name. Real session tokens (with a staff user id), real services to
reach every state, POSTs with the token in the Authorization header, PRG answers."""

import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devshop.session_tokens import session_token_mint
from notifications.models import Message
from returns.models import ReturnRequest
from returns.services.common import _step as return_step
from shopapp.models import Order, OrderEvent, Shop
from shopapp.storefront.links import order_id_from_link_token
from tests.notifications.engine_support import (  # noqa: F401 (fixtures)
    dispatch_and_work,
    shipped_email_sequence,
    smtp_sink,
)
from tests.shopapp.test_embedded import HOST, get_page, make_order, make_shop, order_names
from tests.tracking.tracking_support import fulfil, order_create, scan
from tracking.models import ProblemCase, Shipment
from tracking.problems import ProblemRefused, problem_case_open
from tracking.services import delay_open

pytestmark = pytest.mark.django_db

STAFF_USER = 7042


@pytest.fixture
def shop_a() -> Shop:
    return make_shop("alpha.myshopify.com", timezone="Europe/Paris")


@pytest.fixture
def shop_b() -> Shop:
    return make_shop("bravo.myshopify.com")


def staff_token(shop: Shop, user_id: int = STAFF_USER) -> str:
    return session_token_mint(
        shop_domain=shop.myshopify_domain,
        user_id=user_id,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )


def post(client, shop: Shop, path: str, data: dict, user_id: int = STAFF_USER):
    return client.post(
        f"{path}?shop={shop.myshopify_domain}&host={HOST}",
        data,
        HTTP_AUTHORIZATION=f"Bearer {staff_token(shop, user_id)}",
    )


def page(client, shop: Shop, order: Order, **params) -> str:
    response = get_page(client, shop, f"/app/orders/{order.shopify_id}", **params)
    assert response.status_code == 200
    return unescape(response.content.decode())


def visible_text(html: str) -> str:
    body = html[html.index("<main") :] if "<main" in html else html
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def timeline(html: str) -> str:
    return html[html.index('id="timeline"') : html.index('class="note-form"')]


def shipped_order(shop: Shop) -> tuple[Order, Shipment, Shipment]:
    """The Shopify sample order shipped in two parcels, one on its way and delayed."""
    order = order_create(shop)
    fulfil(shop, order, fulfillment_id=301, line_item_ids=[487817672276298554], name="#9999.1")
    fulfil(shop, order, fulfillment_id=302, line_item_ids=[315789986012684393], name="#9999.2")
    first = Shipment.objects.get(shop=shop, fulfillment_id=301)
    second = Shipment.objects.get(shop=shop, fulfillment_id=302)
    scan(shop, first, "in_transit", timezone.now() - timedelta(hours=3))
    delay_open(
        shop=shop,
        order=order,
        shipment=second,
        kind="no_movement",
        dedupe_key=f"shipment:{second.pk}:no_movement",
        detected_at=timezone.now(),
    )
    return order, first, second


def a_return(shop: Shop, order: Order, name: str = "#9999-R1") -> ReturnRequest:
    ret = ReturnRequest.objects.create(
        shop=shop, order=order, name=name, status="REQUESTED", resolution="refund"
    )
    return_step(request=ret, step="submitted", source=OrderEvent.Source.SHOPPER)
    return_step(request=ret, step="approved", source=OrderEvent.Source.WEBHOOK)
    return ret


# -- the timeline in plain words -------------------------------------------------------------


def test_timeline_reads_in_plain_words_without_raw_codes(client, shop_a):
    # given: an order with parcels, a scan, a delay, a late update, and a return
    order, first, _second = shipped_order(shop_a)
    scan(shop_a, first, "out_for_delivery", timezone.now() - timedelta(days=5))
    a_return(shop_a, order)
    # when
    text = visible_text(timeline(page(client, shop_a, order)))
    # then: sentences a support agent reads, and no dotted code or raw status anywhere
    assert "Order placed" in text
    assert "Payment received" in text
    assert "Parcel on its way" in text
    assert "The parcel has not moved for days" in text
    assert "The customer asked to return items" in text
    assert "Return approved" in text
    assert "The update reached the app late, so the shopper was not messaged." in text
    kinds = set(OrderEvent.objects.filter(order=order).values_list("kind", flat=True))
    assert {"shipment.in_transit", "shipment.delayed", "return.approved"} <= kinds
    for kind in kinds:
        assert kind not in text
    assert "no message sent" not in text
    assert not re.search(r"\b[a-z]+\.[a-z_]+\b", text.replace("app.", ""))


def test_timeline_is_grouped_by_parcel_and_by_return(client, shop_a):
    # given
    order, first, second = shipped_order(shop_a)
    ret = a_return(shop_a, order)
    # when
    html = timeline(page(client, shop_a, order))
    # then: the order's own lines, each parcel (named by Shopify's name), then the return
    groups = re.findall(r'data-group="([^"]+)"[^>]*>\s*<h3[^>]*>([^<]+)</h3>', html)
    assert [key for key, _title in groups] == [
        "order",
        f"shipment:{second.fulfillment_id}",
        f"shipment:{first.fulfillment_id}",
        f"return:{ret.pk}",
    ] or [key for key, _title in groups] == [
        "order",
        f"shipment:{first.fulfillment_id}",
        f"shipment:{second.fulfillment_id}",
        f"return:{ret.pk}",
    ]
    titles = dict(groups)
    assert titles[f"shipment:{first.fulfillment_id}"].startswith("Parcel #9999.1")
    assert titles[f"return:{ret.pk}"] == "Return #9999-R1"
    parcel = html[html.index(f'data-group="shipment:{second.fulfillment_id}"') :]
    parcel = parcel[: parcel.index("</section>")]
    assert "The parcel has not moved for days" in parcel
    assert "Parcel on its way" not in parcel


@pytest.mark.parametrize(
    ("show", "present", "absent"),
    [
        ("tracking", ["Parcel on its way"], ["Order placed", "Return approved"]),
        ("returns", ["Return approved"], ["Parcel on its way", "Order placed"]),
        ("problems", ["The parcel has not moved for days"], ["Parcel on its way"]),
        ("notes", [], ["Parcel on its way", "Return approved"]),
    ],
)
def test_timeline_filter_keeps_one_kind_of_line(client, shop_a, show, present, absent):
    # given
    order, _first, _second = shipped_order(shop_a)
    a_return(shop_a, order)
    # when
    html = timeline(page(client, shop_a, order, show=show))
    # then
    text = visible_text(html + "</x>")
    for sentence in present:
        assert sentence in text
    for sentence in absent:
        assert sentence not in text
    assert f'data-filter="{show}" href' in html
    assert re.search(rf'chip--selected" data-filter="{show}"', html)


def test_one_list_view_keeps_every_line_newest_first(client, shop_a):
    # given
    order, _first, _second = shipped_order(shop_a)
    # when
    html = timeline(page(client, shop_a, order, view="list"))
    # then
    times = re.findall(r'<time class="subdued" datetime="([^"]+)"', html)
    assert len(times) == OrderEvent.objects.filter(order=order).count()
    assert times == sorted(times, reverse=True)
    assert "data-group=" not in html


# -- staff notes -----------------------------------------------------------------------------


def test_staff_note_is_added_once_with_its_author_then_redirects(client, shop_a):
    # given
    order = make_order(shop_a, 1001)
    form = {"text": "Customer called: leave at the neighbour's.", "submission_id": "abc123"}
    # when: the same form sent twice (a double click)
    first = post(client, shop_a, f"/app/orders/{order.shopify_id}/notes", form)
    second = post(client, shop_a, f"/app/orders/{order.shopify_id}/notes", form)
    # then: PRG to the order page with the flash; one note, by the token's staff user
    for response in (first, second):
        assert response.status_code == 303
        location = urlsplit(response["Location"])
        assert location.path == f"/app/orders/{order.shopify_id}"
        assert parse_qs(location.query)["notice"] == ["note_added"]
        assert parse_qs(location.query)["shop"] == [shop_a.myshopify_domain]
    notes = OrderEvent.objects.filter(order=order, kind="staff.note")
    assert notes.count() == 1
    assert notes.get().detail == {"user_id": str(STAFF_USER), "text": form["text"]}
    assert notes.get().source == "staff"
    html = page(client, shop_a, order, notice="note_added", show="notes")
    assert "Note added." in html
    text = visible_text(timeline(html))
    assert f"Note by staff member {STAFF_USER}" in text
    assert form["text"] in text


@pytest.mark.parametrize("text", ["", "   ", "x" * 2001])
def test_bad_note_is_refused_and_stores_nothing(client, shop_a, text):
    order = make_order(shop_a, 1001)
    response = post(
        client,
        shop_a,
        f"/app/orders/{order.shopify_id}/notes",
        {"text": text, "submission_id": "s"},
    )
    assert response.status_code == 400
    assert response.content
    assert not OrderEvent.objects.filter(kind="staff.note").exists()


def test_note_on_another_shops_order_is_not_found(client, shop_a, shop_b):
    theirs = make_order(shop_b, 2001)
    response = post(
        client,
        shop_a,
        f"/app/orders/{theirs.shopify_id}/notes",
        {"text": "hi", "submission_id": "s"},
    )
    assert response.status_code == 404
    assert not OrderEvent.objects.filter(kind="staff.note").exists()


def test_note_needs_the_token_in_the_header(client, shop_a):
    order = make_order(shop_a, 1001)
    response = client.post(
        f"/app/orders/{order.shopify_id}/notes?shop={shop_a.myshopify_domain}"
        f"&id_token={staff_token(shop_a)}",
        {"text": "hi", "submission_id": "s"},
    )
    assert response.status_code in (302, 401)
    assert not OrderEvent.objects.filter(kind="staff.note").exists()


# -- problems --------------------------------------------------------------------------------


def test_staff_records_a_problem_for_a_parcel_then_resolves_it(client, shop_a):
    # given
    order, _first, second = shipped_order(shop_a)
    # when
    opened = post(
        client,
        shop_a,
        f"/app/orders/{order.shopify_id}/problems",
        {"kind": "damaged", "description": "Box crushed", "shipment_id": str(second.pk)},
    )
    case = ProblemCase.objects.get()
    shown = page(client, shop_a, order)
    resolved = post(
        client,
        shop_a,
        f"/app/orders/{order.shopify_id}/problems/{case.pk}/resolve",
        {"note": "Replacement sent"},
    )
    # then
    assert opened.status_code == 303
    assert parse_qs(urlsplit(opened["Location"]).query)["notice"] == ["problem_opened"]
    assert (case.kind, case.status, case.shipment_id) == ("damaged", "open", second.pk)
    assert case.opened_by_user_id == str(STAFF_USER)
    assert f'data-problem="{case.pk}" data-status="open"' in shown
    assert "Problem recorded for the shopper: arrived damaged" in visible_text(timeline(shown))
    assert resolved.status_code == 303
    case.refresh_from_db()
    assert case.status == "resolved"
    assert case.resolution_note == "Replacement sent"
    after = page(client, shop_a, order, show="problems")
    assert f'data-problem="{case.pk}" data-status="resolved"' in after
    assert "Problem resolved: arrived damaged" in visible_text(timeline(after))
    # resolving again changes nothing
    post(client, shop_a, f"/app/orders/{order.shopify_id}/problems/{case.pk}/resolve", {})
    assert OrderEvent.objects.filter(order=order, kind="problem.resolved").count() == 1


@pytest.mark.parametrize(
    "form",
    [
        {"kind": "lost_in_space"},
        {"kind": "damaged", "shipment_id": "abc"},
        {"kind": "damaged", "description": "x" * 2001},
    ],
)
def test_bad_problem_is_refused_and_stores_nothing(client, shop_a, form):
    order = make_order(shop_a, 1001)
    response = post(client, shop_a, f"/app/orders/{order.shopify_id}/problems", form)
    assert response.status_code == 400
    assert not ProblemCase.objects.exists()
    assert not OrderEvent.objects.filter(kind__startswith="problem.").exists()


def test_problem_on_another_shops_parcel_is_refused(shop_a, shop_b):
    mine = order_create(shop_a)
    theirs = order_create(shop_b)
    fulfil(shop_b, theirs, fulfillment_id=401)
    parcel = Shipment.objects.get(shop=shop_b)
    with pytest.raises(ProblemRefused):
        problem_case_open(
            shop=shop_a, order=mine, kind="not_received", reported_by="staff", shipment_id=parcel.pk
        )
    with pytest.raises(ProblemRefused):
        problem_case_open(shop=shop_a, order=theirs, kind="not_received", reported_by="staff")
    assert not ProblemCase.objects.exists()


def test_the_shoppers_own_report_reads_as_theirs(client, shop_a):
    # given: what the tracking page's form will call
    order = order_create(shop_a)
    problem_case_open(
        shop=shop_a,
        order=order,
        kind="not_received",
        reported_by="shopper",
        description="Tracking says delivered, nothing here",
    )
    # when
    html = page(client, shop_a, order)
    # then
    text = visible_text(timeline(html))
    assert "The shopper reported a problem: not received" in text
    assert "Tracking says delivered, nothing here" in text
    assert "Reported by the shopper" in visible_text(html)


def test_resolving_another_shops_problem_is_not_found(client, shop_a, shop_b):
    theirs = order_create(shop_b)
    case = problem_case_open(shop=shop_b, order=theirs, kind="damaged", reported_by="shopper")
    mine = make_order(shop_a, 1001)
    response = post(client, shop_a, f"/app/orders/{mine.shopify_id}/problems/{case.pk}/resolve", {})
    assert response.status_code == 404
    case.refresh_from_db()
    assert case.status == "open"


# -- resend, tracking link, Shopify admin ------------------------------------------------------


def test_resend_last_message_sends_it_again_once_per_click(
    client,
    shop_a,
    smtp_sink,  # noqa: F811 - the imported fixture
    rq_worker,
    django_capture_on_commit_callbacks,
):
    # given: the order's "shipped" email went out through the engine to a real SMTP server
    shipped_email_sequence(shop_a)
    order = order_create(shop_a)
    with django_capture_on_commit_callbacks(execute=True):
        # (its commit hands a message due at once to the sends queue)
        fulfil(shop_a, order, fulfillment_id=501)
    Message.objects.filter(order=order, status=Message.Status.SCHEDULED).update(
        due_at=timezone.now() - timedelta(minutes=1)
    )
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    assert len(smtp_sink.messages) == 1
    html = page(client, shop_a, order)
    assert "data-resend" in html
    path = f"/app/notifications/orders/{order.shopify_id}/resend-last"
    # when: the button is clicked, and the same click arrives twice
    first = post(client, shop_a, path, {"submission_id": "click-1"})
    repeat = post(client, shop_a, path, {"submission_id": "click-1"})
    with django_capture_on_commit_callbacks(execute=True):
        pass
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    # then: one more email, and the staff request on the timeline
    assert first.status_code == 303
    assert repeat.status_code == 303
    assert parse_qs(urlsplit(first["Location"]).query)["notice"] == ["resent"]
    assert len(smtp_sink.messages) == 2
    requested = OrderEvent.objects.filter(order=order, kind="notification.resend_requested")
    assert requested.count() == 1
    assert requested.get().detail["user_id"] == str(STAFF_USER)
    text = visible_text(timeline(page(client, shop_a, order, show="messages")))
    assert "Staff asked to send Email “shipped” again" in text


def test_resend_last_with_no_message_is_refused(client, shop_a):
    order = make_order(shop_a, 1001)
    response = post(
        client,
        shop_a,
        f"/app/notifications/orders/{order.shopify_id}/resend-last",
        {"submission_id": "c"},
    )
    assert response.status_code == 409
    assert b"No message" in response.content
    assert not OrderEvent.objects.filter(kind="notification.resend_requested").exists()


def test_order_page_offers_the_signed_tracking_link_and_the_shopify_admin(client, shop_a):
    order = make_order(shop_a, 1001)
    html = page(client, shop_a, order)
    link = re.search(r'data-copy="([^"]+)"', html).group(1)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert order_id_from_link_token(token, shop=shop_a) == order.pk
    assert re.search(r'data-tracking-link readonly value="' + re.escape(link), html)
    admin = re.search(r'href="([^"]+)" target="_top" rel="noopener" data-shopify-admin', html)
    assert admin.group(1).endswith(f"/admin/orders/{order.shopify_id}")
    assert shop_a.myshopify_domain in admin.group(1)


def test_order_page_queries_stay_the_same_however_much_the_order_holds(client, shop_a):
    # given: a small order, and a big one (more parcels, scans, returns, notes, problems)
    small = order_create(shop_a, order_id=71)
    fulfil(shop_a, small, fulfillment_id=601)
    big, first, second = shipped_order(shop_a)
    for hours in range(2, 8):
        scan(shop_a, first, "in_transit", timezone.now() - timedelta(hours=hours, minutes=5))
    a_return(shop_a, big)
    a_return(shop_a, big, name="#9999-R2")
    problem_case_open(shop=shop_a, order=big, kind="damaged", reported_by="shopper")
    problem_case_open(shop=shop_a, order=big, kind="wrong_item", reported_by="shopper")

    def count(order: Order) -> int:
        with CaptureQueriesContext(connection) as queries:
            page(client, shop_a, order)
        return len(queries)

    count(small)
    # then
    assert count(small) == count(big)


# -- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("#1001", ["#1001"]),
        ("1002", ["#1002"]),
        ("ada.l", ["#1001"]),
        ("ADA.LOVELACE@EXAMPLE.COM", ["#1001"]),
        ("+1 (613) 555-0199", ["#1002"]),
        ("6135550199", ["#1002"]),
        ("1z999aa10000000777", ["#1003"]),
        ("1Z999AA1 0000 000777", ["#1003"]),
        ("#1003-R1", ["#1003"]),
        ("1003-r1", ["#1003"]),
        ("#1003-R", []),
        ("1Z999AA100000007", []),
    ],
)
def test_search_finds_orders_by_name_email_phone_tracking_number_and_return(
    client, shop_a, shop_b, query, expected
):
    # given
    make_order(shop_a, 1001, email="ada.lovelace@example.com")
    make_order(shop_a, 1002, phone="+16135550199")
    third = make_order(shop_a, 1003)
    Shipment.objects.create(
        shop=shop_a, order=third, fulfillment_id=1, tracking_numbers=["1Z999AA10000000777"]
    )
    ReturnRequest.objects.create(shop=shop_a, order=third, name="#1003-R1", resolution="refund")
    # another shop's order matching every query
    theirs = make_order(shop_b, 1001, email="ada.lovelace@example.com", phone="+16135550199")
    Shipment.objects.create(
        shop=shop_b, order=theirs, fulfillment_id=1, tracking_numbers=["1Z999AA10000000777"]
    )
    ReturnRequest.objects.create(shop=shop_b, order=theirs, name="#1003-R1", resolution="refund")
    # when
    response = get_page(client, shop_a, "/app/orders", q=query)
    # then
    assert order_names(response.content.decode()) == expected


def test_search_query_count_is_constant(client, shop_a):
    for number in range(1001, 1031):
        make_order(shop_a, number)

    def count(query: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            get_page(client, shop_a, "/app/orders", q=query)
        return len(queries)

    count("#10")
    # then: 30 matches or one, the same queries; an email skips the features' lookups
    assert count("#10") == count("#1001")
    assert count("buyer1001@example.com") <= count("#1001")
