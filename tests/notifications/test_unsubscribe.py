# ruff: noqa: F811 - pytest fixtures imported from engine_support are used as arguments
"""One-click unsubscribe (RFC 8058): GET confirms, POST unsubscribes, bad tokens change nothing."""

from urllib.parse import urlsplit

import pytest
from django.core import signing

from notifications.models import Message, Suppression
from notifications.unsubscribe import UNSUBSCRIBE_SALT, unsubscribe_url
from tests.notifications.engine_support import (
    dispatch_and_work,
    make_order,
    make_shop,
    parcel,
    shipped_email_sequence,
    smtp_sink,  # noqa: F401 - fixture
    trigger_committed,
)

pytestmark = pytest.mark.django_db


def _path(shop, address="shopper@example.com", channel="email"):
    return urlsplit(unsubscribe_url(shop_id=shop.pk, channel=channel, address=address)).path


def test_get_shows_a_confirm_page_and_changes_nothing(client):
    shop = make_shop()
    response = client.get(_path(shop))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Unsubscribe from order updates?" in body
    assert '<form method="post">' in body
    assert "Alpha Goods" in body
    assert response["Cache-Control"] == "private, no-store"
    assert not Suppression.objects.exists()


def test_one_click_post_unsubscribes_without_confirmation_or_csrf(client):
    # given: a mail provider's RFC 8058 POST, no cookie, no CSRF token
    shop = make_shop()
    csrf_client = type(client)(enforce_csrf_checks=True)
    # when
    response = csrf_client.post(
        _path(shop, "Shopper@Example.com"),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    # then
    assert response.status_code == 200
    assert "You're unsubscribed" in response.content.decode()
    suppression = Suppression.objects.get()
    assert (suppression.shop, suppression.channel, suppression.address, suppression.reason) == (
        shop,
        "email",
        "shopper@example.com",
        "unsubscribed",
    )


def test_repeated_post_is_idempotent(client):
    shop = make_shop()
    client.post(_path(shop))
    response = client.post(_path(shop))
    assert response.status_code == 200
    assert Suppression.objects.count() == 1


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # signature
        lambda token: "X" + token[1:],  # payload
        lambda token: token.split(":")[0],  # no signature at all
        lambda token: signing.dumps([1, "email", "a@b.c"], salt="tracking.link.v1"),  # other salt
        lambda token: signing.dumps(["1", "email"], salt=UNSUBSCRIBE_SALT),  # malformed payload
        lambda token: signing.dumps([1, "fax", "a@b.c"], salt=UNSUBSCRIBE_SALT),  # bad channel
    ],
)
def test_tampered_or_foreign_tokens_are_refused_and_change_nothing(client, mangle):
    shop = make_shop()
    token = _path(shop).rsplit("/", 1)[1]
    response = client.post(f"/notifications/unsubscribe/{mangle(token)}")
    assert response.status_code == 400
    assert "This unsubscribe link is not valid" in response.content.decode()
    assert not Suppression.objects.exists()


def test_token_for_a_deleted_shop_is_refused(client):
    shop = make_shop()
    path = _path(shop)
    shop.delete()
    assert client.post(path).status_code == 400
    assert not Suppression.objects.exists()


def test_unsubscribe_link_from_a_sent_email_stops_later_messages_of_that_shop_only(
    client, smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    # given: alpha sent an email; beta has a message to the same address
    alpha = make_shop("alpha.myshopify.com")
    beta = make_shop("beta.myshopify.com", name="Beta Store")
    for shop in (alpha, beta):
        shipped_email_sequence(shop)
    first = make_order(alpha, 1001)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=alpha,
        order=first,
        trigger="shipped",
        news=parcel(1, "shipped"),
    )
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    header = str(smtp_sink.messages[0]["List-Unsubscribe"]).strip()
    # when: the shopper's mail provider POSTs the header's URL
    response = client.post(
        urlsplit(header.strip("<>")).path, data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    second = make_order(alpha, 1002)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=alpha,
        order=second,
        trigger="shipped",
        news=parcel(2, "shipped"),
    )
    beta_order = make_order(beta, 1003)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=beta,
        order=beta_order,
        trigger="shipped",
        news=parcel(3, "shipped"),
    )
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    # then: alpha's second message is skipped, beta's goes out
    assert Message.objects.get(order=second).reason == "recipient suppressed"
    assert Message.objects.get(order=beta_order).status == Message.Status.SENT
    assert len(smtp_sink.messages) == 2
    assert smtp_sink.messages[1]["From"].startswith("Beta Store")


def test_other_methods_are_refused(client):
    shop = make_shop()
    assert client.put(_path(shop)).status_code == 405
    assert not Suppression.objects.exists()
