""" "Report a problem" on the tracking page: the form per parcel, the POST through Shopify's app
proxy (signed like every proxy request, the form token bound to the order), the case on the
order's timeline, the shopper's confirmation and the merchant's alert through the real SMTP
server (aiosmtpd) sent by a burst RQ worker, and everything a hostile or clumsy shopper can
throw at it."""

import re
import time
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.utils import timezone

from notifications.defaults import notification_defaults_install
from notifications.models import Message, Suppression
from shopapp.auth.tokens import token_encrypt
from shopapp.branding.services import BrandingChange, branding_save
from shopapp.models import Order, OrderEvent
from shopapp.storefront.links import tracking_link_token
from tests.notifications.engine_support import dispatch_and_work
from tests.notifications.engine_support import smtp_sink as smtp_sink  # fixture
from tests.tracking.test_page import (
    _redis_db,  # noqa: F401 (fixture: fresh rate-limit counters)
    body,
    make_line_item,
    make_order,
    make_shipment,
    make_shop,
    proxy_get,
    proxy_post,
)
from tests.tracking.test_support import page as admin_page
from tests.tracking.test_support import timeline, visible_text
from tracking.models import Delay, ProblemCase, Stage, TrackingPageView
from tracking.views import problem_form_token

pytestmark = pytest.mark.django_db

DELIVERED_AT = datetime(2026, 3, 6, 14, 0, tzinfo=UTC)
PROBLEM_TOKEN_RE = re.compile(
    r'<form class="pp-problem__form"[^>]*>\s*<input type="hidden" name="form_token" '
    r'value="([^"]+)">'
)


def _shop(**fields):
    # A usable offline token too, so the embedded admin opens the order for the timeline check.
    shop = make_shop(
        access_token_encrypted=token_encrypt(plain="shpat_test"),
        access_token_expires_at=timezone.now() + timedelta(hours=1),
        email="owner@acme.example",
        **fields,
    )
    notification_defaults_install(shop=shop)
    return shop


def _delivered_order(shop, number=None, **fields):
    order = make_order(shop, number, **fields)
    line = make_line_item(order, "Trail shoe", 1)
    shipment = make_shipment(
        order, stage=Stage.DELIVERED, items=[(line, 1)], delivered_at=DELIVERED_AT
    )
    return order, shipment


def _page(client, shop, order, **kwargs):
    return proxy_get(client, shop, "/" + tracking_link_token(order), **kwargs)


def _report(client, shop, order, shipment_id, kind="damaged", description="", **kwargs):
    data = {
        "form_token": kwargs.pop("form_token", problem_form_token(order)),
        "shipment": str(shipment_id),
        "kind": kind,
        "description": description,
    }
    token = kwargs.pop("link_token", tracking_link_token(order))
    response = proxy_post(client, shop, data, path="/" + token, **kwargs)
    response.link_token = token
    return response


def _page_form_token(html: str) -> str:
    match = PROBLEM_TOKEN_RE.search(html)
    assert match, "no problem form on the page"
    return unescape(match.group(1))


def _choices(html: str, shipment_id: int) -> list[str]:
    start = html.find(f'id="pp-problem-{shipment_id}"')
    if start < 0:
        return []
    section = html[start : html.find("</section>", start)]
    return re.findall(r'name="kind" value="([a-z_]+)"', section)


def _nothing_stored(order: Order) -> None:
    assert not ProblemCase.objects.filter(order=order).exists()
    assert not OrderEvent.objects.filter(order=order, kind="problem.reported").exists()
    assert not Message.objects.filter(order=order).exists()


# ---------------------------------------------------------------------------------------------
# The whole way: page, report, timeline, both emails


def test_a_shopper_reports_a_damaged_parcel_and_both_emails_arrive(
    client, smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    # given a shop whose branding names a support inbox, and a delivered order
    shop = _shop()
    branding_save(
        shop=shop,
        change=BrandingChange(
            accent_color="#0f766e",
            text_color="#111111",
            background_color="#ffffff",
            font="verdana",
            support_email="Help@Acme.example",
        ),
    )
    order, shipment = _delivered_order(shop, 4101)

    # when the shopper opens the page: the parcel offers the three problems, folded away
    html = body(_page(client, shop, order))
    assert _choices(html, shipment.pk) == ["not_received", "damaged", "wrong_item"]
    assert "Report a problem with this shipment" in html
    token = _page_form_token(html)

    # and reports it arrived damaged, with the page's own token
    with django_capture_on_commit_callbacks(execute=True):
        response = _report(
            client,
            shop,
            order,
            shipment.pk,
            "damaged",
            "The box was crushed, the sole is torn.",
            form_token=token,
        )

    # then the answer is a 303 back to the page itself, at the parcel's case
    assert response.status_code == 303
    assert response["Location"] == f"./{response.link_token}#pp-problem-{shipment.pk}"
    assert response["Cache-Control"] == "private, no-store"
    # one case, the shopper's, on the parcel, with its timeline line
    case = ProblemCase.objects.get(order=order)
    assert (case.kind, case.reported_by, case.shipment_id, case.status) == (
        "damaged",
        "shopper",
        shipment.pk,
        "open",
    )
    assert case.description == "The box was crushed, the sole is torn."
    event = OrderEvent.objects.get(order=order, kind="problem.reported")
    assert event.source == OrderEvent.Source.SHOPPER
    assert event.detail["problem_id"] == case.pk

    # the page now confirms it and says what happens next; "damaged" is not offered again
    html = body(_page(client, shop, order))
    assert "Problem reported: Arrived damaged" in html
    assert "Acme Outdoor has your report and will get back to you by email" in html
    assert 'role="status"' in html
    assert _choices(html, shipment.pk) == ["not_received", "wrong_item"]

    # the admin's order timeline shows the shopper's report
    text = visible_text(timeline(admin_page(client, shop, order)))
    assert "The shopper reported a problem: arrived damaged" in text
    assert "The box was crushed, the sole is torn." in text

    # when the cron hands the due messages to a burst worker
    handed_out = dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)

    # then two emails arrived: the shopper's confirmation and the merchant's alert
    assert handed_out == 2
    by_recipient = {mail["To"]: mail for mail in smtp_sink.messages}
    assert set(by_recipient) == {"ada@example.com", "help@acme.example"}
    shopper = by_recipient["ada@example.com"]
    assert shopper["Subject"] == f"We've received your report about order {order.name}"
    text = shopper.get_body(("plain",)).get_content()
    assert "it arrived damaged" in text
    assert "The box was crushed, the sole is torn." in text
    assert "usually within one business day" in text
    assert "/apps/postpurchase/track/" in text
    assert shopper["List-Unsubscribe"]
    merchant = by_recipient["help@acme.example"]
    assert merchant["Subject"] == f"Problem reported on order {order.name}: arrived damaged"
    # the merchant answers the shopper by replying
    assert merchant["Reply-To"] == "ada@example.com"
    merchant_text = merchant.get_body(("plain",)).get_content()
    assert "The box was crushed, the sole is torn." in merchant_text
    assert "UPS" in merchant_text
    assert shipment.tracking_numbers[0] in merchant_text
    html_part = merchant.get_body(("html",)).get_content()
    assert "Trail shoe" in html_part
    # and both sends are on the order's timeline
    sent = OrderEvent.objects.filter(order=order, kind="notification.sent")
    assert sent.count() == 2


def test_without_a_support_email_the_alert_goes_to_the_shops_email(
    client, smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    shop = _shop()
    order, shipment = _delivered_order(shop)
    with django_capture_on_commit_callbacks(execute=True):
        assert _report(client, shop, order, shipment.pk, "wrong_item").status_code == 303
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    assert sorted(mail["To"] for mail in smtp_sink.messages) == [
        "ada@example.com",
        "owner@acme.example",
    ]


def test_an_unsubscribed_shopper_gets_no_email_but_the_merchant_is_told(
    client, smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    # given a shopper who unsubscribed from this shop's emails
    shop = _shop()
    order, shipment = _delivered_order(shop)
    Suppression.objects.create(
        shop=shop, channel="email", address="ada@example.com", reason="unsubscribed"
    )
    # when they report a problem
    with django_capture_on_commit_callbacks(execute=True):
        assert _report(client, shop, order, shipment.pk, "not_received").status_code == 303
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    # then only the merchant's alert is sent; the shopper's message is skipped, and says why
    assert [mail["To"] for mail in smtp_sink.messages] == ["owner@acme.example"]
    skipped = Message.objects.get(order=order, recipient="ada@example.com")
    assert skipped.status == Message.Status.SKIPPED
    assert skipped.reason == "recipient suppressed"


# ---------------------------------------------------------------------------------------------
# Once per parcel and kind


def test_a_double_submit_opens_one_case_and_sends_one_pair_of_emails(
    client, smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    shop = _shop()
    order, shipment = _delivered_order(shop)
    with django_capture_on_commit_callbacks(execute=True):
        first = _report(client, shop, order, shipment.pk, "not_received", "Nothing here")
        second = _report(client, shop, order, shipment.pk, "not_received", "Nothing here")
    assert first.status_code == second.status_code == 303
    assert first["Location"].endswith(f"#pp-problem-{shipment.pk}")
    assert second["Location"].endswith(f"#pp-problem-{shipment.pk}")
    assert ProblemCase.objects.filter(order=order).count() == 1
    assert OrderEvent.objects.filter(order=order, kind="problem.reported").count() == 1
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    assert len(smtp_sink.messages) == 2


def test_another_kind_or_a_reopened_problem_is_a_new_case(client):
    shop = _shop()
    order, shipment = _delivered_order(shop)
    assert _report(client, shop, order, shipment.pk, "damaged").status_code == 303
    assert _report(client, shop, order, shipment.pk, "wrong_item").status_code == 303
    assert ProblemCase.objects.filter(order=order).count() == 2
    # once support resolved the damage, a new damage report is a new case
    ProblemCase.objects.filter(order=order, kind="damaged").update(status="resolved")
    assert _report(client, shop, order, shipment.pk, "damaged").status_code == 303
    assert ProblemCase.objects.filter(order=order, kind="damaged").count() == 2


def test_a_report_posted_or_refused_is_not_counted_as_a_page_view(client):
    # given a delivered order whose page was viewed once
    shop = _shop()
    order, shipment = _delivered_order(shop)
    assert _page(client, shop, order).status_code == 200

    # when a report is posted, and one is refused (its page shown again with the error)
    assert _report(client, shop, order, shipment.pk, "damaged").status_code == 303
    assert _report(client, shop, order, shipment.pk, "bogus").status_code == 400

    # then only the GET counted
    assert TrackingPageView.objects.get(order=order).views == 1


# ---------------------------------------------------------------------------------------------
# What may be reported when


def test_a_parcel_on_its_way_and_on_time_offers_nothing_and_refuses_a_report(client):
    shop = _shop()
    order = make_order(shop)
    shipment = make_shipment(
        order,
        stage=Stage.IN_TRANSIT,
        estimated_delivery_at=timezone.now() + timedelta(days=3),
    )
    html = body(_page(client, shop, order))
    assert _choices(html, shipment.pk) == []
    assert "Report a problem" not in html
    response = _report(client, shop, order, shipment.pk, "not_received")
    assert response.status_code == 400
    assert "This problem can&#x27;t be reported for this shipment." in body(response)
    _nothing_stored(order)


@pytest.mark.parametrize(
    "late",
    ["past_estimate", "delayed_stage", "carrier_problem", "open_delay"],
)
def test_a_late_parcel_may_be_reported_as_not_received_only(client, late):
    shop = _shop()
    order = make_order(shop)
    fields = {"estimated_delivery_at": timezone.now() + timedelta(days=2)}
    stage = Stage.IN_TRANSIT
    if late == "past_estimate":
        fields["estimated_delivery_at"] = timezone.now() - timedelta(days=2)
    elif late == "delayed_stage":
        stage = Stage.DELAYED
    elif late == "carrier_problem":
        stage = Stage.PROBLEM
    shipment = make_shipment(order, stage=stage, **fields)
    if late == "open_delay":
        Delay.objects.create(
            shop=shop,
            order=order,
            shipment=shipment,
            kind=Delay.Kind.NO_MOVEMENT,
            dedupe_key="late",
            detected_at=timezone.now(),
        )
    assert _choices(body(_page(client, shop, order)), shipment.pk) == ["not_received"]
    assert _report(client, shop, order, shipment.pk, "damaged").status_code == 400
    assert _report(client, shop, order, shipment.pk, "not_received").status_code == 303
    assert ProblemCase.objects.filter(order=order).count() == 1


def test_a_cancelled_order_offers_no_report(client):
    shop = _shop()
    order, shipment = _delivered_order(shop, cancelled_at=timezone.now())
    assert "pp-problem__form" not in body(_page(client, shop, order))
    assert _report(client, shop, order, shipment.pk, "damaged").status_code == 400
    _nothing_stored(order)


def test_the_parcel_page_from_a_tracking_number_offers_no_report(client):
    # A tracking number alone proves nothing of the order: no form, no POST route.
    shop = _shop()
    order, shipment = _delivered_order(shop)
    response = proxy_post(
        client,
        shop,
        {"lookup": "tracking_number", "tracking_number": shipment.tracking_numbers[0]},
    )
    assert response.status_code == 303
    location = response["Location"]
    parcel = proxy_get(client, shop, location[len("track") :])
    assert parcel.status_code == 200
    assert "pp-problem" not in body(parcel)
    posted = proxy_post(client, shop, {"kind": "damaged"}, path=location[len("track") :])
    assert posted.status_code == 405
    _nothing_stored(order)


# ---------------------------------------------------------------------------------------------
# Hostile and clumsy input: a clear answer, nothing stored


def test_a_forged_or_other_shops_link_reports_nothing(client):
    shop, other = _shop(), _shop()
    order, shipment = _delivered_order(shop)
    other_order, _ = _delivered_order(other)
    forged = tracking_link_token(order)[:-2] + "xx"
    for token in (forged, tracking_link_token(other_order)):
        response = _report(client, shop, order, shipment.pk, link_token=token)
        assert response.status_code == 404
        assert "This tracking link isn" in body(response)
    _nothing_stored(order)
    _nothing_stored(other_order)


def test_a_form_token_of_another_order_or_none_is_refused(client):
    # A link to order B and the form token of order A (or no token, or an old one): refused.
    shop = _shop()
    order_a, _ = _delivered_order(shop)
    order_b, shipment_b = _delivered_order(shop)
    for token in (problem_form_token(order_a), "", "not-a-token", "x" * 600):
        response = _report(client, shop, order_b, shipment_b.pk, form_token=token)
        assert response.status_code == 400
        assert "This form has expired. Please try again." in body(response)
        assert response["Cache-Control"] == "private, no-store"
    _nothing_stored(order_b)


def test_an_expired_form_token_is_refused(client, settings):
    settings.TRACKING_PROBLEM_FORM_MAX_AGE_SECONDS = 1
    shop = _shop()
    order, shipment = _delivered_order(shop)
    token = problem_form_token(order)
    time.sleep(2.1)
    response = _report(client, shop, order, shipment.pk, form_token=token)
    assert response.status_code == 400
    assert "This form has expired. Please try again." in body(response)
    _nothing_stored(order)


def test_another_orders_or_shops_shipment_is_refused(client):
    shop, other = _shop(), _shop()
    order, _ = _delivered_order(shop)
    _, sibling_shipment = _delivered_order(shop)
    _, foreign_shipment = _delivered_order(other)
    for shipment_id in (sibling_shipment.pk, foreign_shipment.pk, 2**62, 0, -1, "abc", ""):
        response = _report(client, shop, order, shipment_id)
        assert response.status_code == 400, shipment_id
        assert 'role="alert"' in body(response)
    assert not ProblemCase.objects.exists()
    assert not OrderEvent.objects.filter(kind="problem.reported").exists()


@pytest.mark.parametrize("kind", ["", "lost", "DAMAGED", "damaged'; DROP TABLE", "x" * 500])
def test_an_unknown_kind_is_refused(client, kind):
    shop = _shop()
    order, shipment = _delivered_order(shop)
    response = _report(client, shop, order, shipment.pk, kind)
    assert response.status_code == 400
    assert "Choose what went wrong." in body(response)
    _nothing_stored(order)


def test_an_oversized_description_is_refused_and_kept_for_the_shopper(client):
    shop = _shop()
    order, shipment = _delivered_order(shop)
    words = "Torn " * 401  # 2,005 characters
    response = _report(client, shop, order, shipment.pk, "damaged", words)
    assert response.status_code == 400
    html = body(response)
    assert "Please describe the problem in at most 2000 characters." in html
    # the form stays open on that parcel with what was typed
    assert '<details class="pp-problem__details" open>' in html
    assert 'value="damaged" required checked' in html
    assert words.strip() in html
    _nothing_stored(order)
    # exactly at the limit it is accepted
    assert _report(client, shop, order, shipment.pk, "damaged", "d" * 2000).status_code == 303


def test_liquid_in_a_description_is_never_run_by_the_storefront(client):
    shop = _shop()
    order, shipment = _delivered_order(shop)
    words = "{{ shop.metafields.secret }} {% assign x = 1 %}"
    response = _report(client, shop, order, shipment.pk, "damaged", "x" * 2001 + words)
    html = response.content.decode()
    assert "{{" not in html.split("</style>", 1)[1]
    assert "{%" not in html.split("</style>", 1)[1]


def test_reports_are_rate_limited_like_lookups(client, settings):
    settings.TRACKING_LOOKUP_RATE_PER_ORDER = 2
    shop = _shop()
    order, shipment = _delivered_order(shop)
    assert _report(client, shop, order, shipment.pk, "damaged").status_code == 303
    assert _report(client, shop, order, shipment.pk, "wrong_item").status_code == 303
    limited = _report(client, shop, order, shipment.pk, "not_received")
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert ProblemCase.objects.filter(order=order).count() == 2
    # the page itself is still readable (a GET spends nothing)
    assert _page(client, shop, order).status_code == 200


# ---------------------------------------------------------------------------------------------
# The page cache and the languages


def test_a_cached_page_is_not_served_stale_after_a_report(client, settings):
    settings.TRACKING_PAGE_CACHE_SECONDS = 600
    shop = _shop()
    order, shipment = _delivered_order(shop)
    before = Order.objects.get(pk=order.pk).version
    first = body(_page(client, shop, order))
    assert "Problem reported" not in first
    assert body(_page(client, shop, order)) == first  # cached (or rendered the same)
    assert _report(client, shop, order, shipment.pk, "damaged").status_code == 303
    from django.db import connection

    if connection.vendor == "postgresql":
        # the case's row bumped the order's version (tracking 0009): a new cache key
        assert Order.objects.get(pk=order.pk).version > before
    assert "Problem reported: Arrived damaged" in body(_page(client, shop, order))


@pytest.mark.parametrize(
    ("language", "offer", "confirmation", "subject"),
    [
        (
            "es",
            "Comunicar un problema con este envío",
            "Problema comunicado: Llegó dañado",
            "Hemos recibido tu aviso sobre el pedido",
        ),
        (
            "fr",
            "Signaler un problème avec cet envoi",
            "Problème signalé : Arrivé endommagé",
            "Nous avons bien reçu votre signalement pour la commande",
        ),
        (
            "de",
            "Ein Problem mit dieser Sendung melden",
            "Problem gemeldet: Beschädigt angekommen",
            "Wir haben deine Meldung zur Bestellung",
        ),
        (
            "en",
            "Report a problem with this shipment",
            "Problem reported: Arrived damaged",
            "We&#x27;ve received your report about order",
        ),
    ],
)
def test_the_form_the_confirmation_and_the_email_speak_the_shoppers_language(
    client,
    smtp_sink,
    rq_worker,
    django_capture_on_commit_callbacks,
    language,
    offer,
    confirmation,
    subject,
):
    shop = _shop()
    order, shipment = _delivered_order(shop, locale=language)
    html = body(_page(client, shop, order, extra=[("locale", language)]))
    assert offer in html
    with django_capture_on_commit_callbacks(execute=True):
        response = _report(
            client, shop, order, shipment.pk, "damaged", extra=[("locale", language)]
        )
    # the language rides on the redirect
    expected = f"./{response.link_token}?locale={language}#pp-problem-{shipment.pk}"
    assert response["Location"] == expected
    assert confirmation in unescape(body(_page(client, shop, order, extra=[("locale", language)])))
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    shopper = next(m for m in smtp_sink.messages if m["To"] == "ada@example.com")
    assert str(shopper["Subject"]).strip().startswith(unescape(subject))
    # the merchant reads the alert in the shop's language (English here)
    merchant = next(m for m in smtp_sink.messages if m["To"] == "owner@acme.example")
    assert str(merchant["Subject"]).strip().startswith("Problem reported on order")


def test_a_refused_report_is_explained_in_the_shoppers_language(client):
    shop = _shop()
    order, shipment = _delivered_order(shop)
    response = _report(client, shop, order, shipment.pk, "lost", extra=[("locale", "fr")])
    assert response.status_code == 400
    assert "Choisissez ce qui ne va pas." in unescape(body(response))


def test_a_case_staff_opened_shows_without_promising_a_confirmation_email(client):
    # given support opened a "not received" case on the shopper's behalf
    from tracking.problems import problem_case_open

    shop = _shop()
    order, shipment = _delivered_order(shop)
    problem_case_open(
        shop=shop,
        order=order,
        kind="not_received",
        reported_by="staff",
        shipment_id=shipment.pk,
        user_id="42",
    )
    # then the page shows the open case, promises no email it did not send, and does not
    # offer the same report again; posting it anyway adds nothing
    html = body(_page(client, shop, order))
    assert "Problem reported: Not received" in html
    assert "confirmation email" not in html
    assert _choices(html, shipment.pk) == ["damaged", "wrong_item"]
    assert _report(client, shop, order, shipment.pk, "not_received").status_code == 303
    assert ProblemCase.objects.filter(order=order).count() == 1
    assert not Message.objects.filter(order=order).exists()
    # while the shopper's own report does say a confirmation went out
    assert _report(client, shop, order, shipment.pk, "damaged").status_code == 303
    assert "We've also sent you a confirmation email." in unescape(body(_page(client, shop, order)))


def test_a_customer_redaction_erases_the_shoppers_words_everywhere(client):
    # given a report with free text that names a neighbour and an address
    from shopapp.privacy.services import customer_redact

    shop = _shop()
    order, shipment = _delivered_order(shop)
    words = "Left with my neighbour Bob Smith at 12 Rue Neuve"
    assert _report(client, shop, order, shipment.pk, "not_received", words).status_code == 303
    assert Message.objects.filter(order=order).count() == 2
    # when Shopify asks to erase the customer
    customer_redact(shop=shop, customer_id=None, email="ada@example.com")
    # then the words are gone from the case, its timeline line and both messages
    assert ProblemCase.objects.get(order=order).description == ""
    for message in Message.objects.filter(order=order):
        assert words not in str(message.snapshot)
        assert message.snapshot["news"]["type"] == "problem"
    for event in OrderEvent.objects.filter(order=order, kind="problem.reported"):
        assert words not in str(event.detail)


def test_shops_installed_before_get_the_problem_sequence_from_the_migration():
    # given a shop whose default sequences were installed before "problem_reported" existed
    import importlib

    from django.apps import apps

    from notifications.models import Sequence

    migration = importlib.import_module(
        "notifications.migrations.0005_problem_reported_and_step_audience"
    )
    shop = _shop()
    Sequence.objects.filter(shop=shop, key="problem_reported").delete()
    bare = make_shop()  # no default sequences at all: left alone
    # when the migration's data step runs (twice: a re-run adds nothing)
    migration.install_problem_sequence(apps, None)
    migration.install_problem_sequence(apps, None)
    # then the shop has it, with the shopper's and the merchant's steps
    sequence = Sequence.objects.get(shop=shop, key="problem_reported")
    assert sequence.trigger == "problem_reported"
    assert [(s.template_key, s.audience) for s in sequence.steps.order_by("position")] == [
        ("problem_reported", "customer"),
        ("problem_reported_merchant", "merchant"),
    ]
    assert not Sequence.objects.filter(shop=bare).exists()
