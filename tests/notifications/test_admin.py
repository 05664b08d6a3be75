"""The notifications admin under /app/notifications/: real session tokens, pages scoped by the
token's shop, POSTs only with the token in the Authorization header."""

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from devshop.session_tokens import session_token_mint
from notifications.defaults import notification_defaults_install
from notifications.models import Message, MessageTemplate, Sequence, SequenceStep, Suppression
from shopapp.auth.tokens import token_encrypt
from shopapp.models import Order, Shop

pytestmark = pytest.mark.django_db

HOST = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWxwaGE"
BASE = "/app/notifications/"


def make_shop(domain: str) -> Shop:
    shop = Shop.objects.create(
        myshopify_domain=domain,
        is_active=True,
        name=domain.split(".")[0].title(),
        email=f"owner@{domain.split('.')[0]}.test",
        access_token_encrypted=token_encrypt(plain="shpat_test"),
        access_token_expires_at=timezone.now() + timedelta(hours=1),
    )
    notification_defaults_install(shop=shop)
    return shop


def token_for(shop: Shop) -> str:
    return session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )


def get_page(client, shop: Shop, path: str, **params):
    query = {"shop": shop.myshopify_domain, "host": HOST, "id_token": token_for(shop), **params}
    return client.get(path, query)


def post(client, shop: Shop, path: str, data: dict | None = None):
    return client.post(
        f"{path}?shop={shop.myshopify_domain}&host={HOST}",
        data or {},
        HTTP_AUTHORIZATION=f"Bearer {token_for(shop)}",
    )


def make_message(shop: Shop, *, status: str, number: int = 1001, channel: str = "email"):
    order, _ = Order.objects.get_or_create(
        shop=shop,
        shopify_id=5_000_000 + number,
        defaults={"name": f"#{number}", "order_number": number, "total_price": Decimal("1")},
    )
    step = SequenceStep.objects.filter(shop=shop, channel=channel).first()
    return Message.objects.create(
        shop=shop,
        order=order,
        step=step,
        subject_key=f"shipment:{Message.objects.count() + 1}",
        trigger="shipped",
        channel=channel,
        recipient=f"buyer{number}@example.com",
        due_at=timezone.now(),
        status=status,
    )


@pytest.fixture
def shop_a() -> Shop:
    return make_shop("alpha.myshopify.com")


@pytest.fixture
def shop_b() -> Shop:
    return make_shop("bravo.myshopify.com")


def test_sequences_page_lists_the_shops_sequences(client, shop_a):
    # when
    response = get_page(client, shop_a, BASE)
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-sequence="shipped"' in html
    assert 'data-sequence="delivered_review"' in html
    assert "Email · 7 days" in html
    # and the shell's navigation has the Notifications tab, selected
    assert re.search(r'class="tab tab--selected"[^>]*>Notifications</a>', html)


def test_orders_page_links_to_notifications(client, shop_a):
    # when
    html = get_page(client, shop_a, "/app/orders").content.decode()
    # then
    assert "/app/notifications/?shop=alpha.myshopify.com" in unescape(html)


def test_pages_need_a_session_token(client, shop_a):
    # when
    response = client.get(BASE, {"shop": shop_a.myshopify_domain})
    # then: the document load goes to the bounce page for a fresh token
    assert response.status_code == 302
    assert "/auth/session-token" in response["Location"]


def test_post_without_bearer_changes_nothing(client, shop_a):
    # given
    sequence = Sequence.objects.get(shop=shop_a, key="shipped")
    token = token_for(shop_a)
    # when: the token in the URL is not enough for an unsafe method
    response = client.post(
        f"{BASE}sequences/{sequence.pk}/toggle?shop={shop_a.myshopify_domain}&id_token={token}",
        {"is_enabled": "0"},
    )
    # then
    assert response.status_code == 401
    sequence.refresh_from_db()
    assert sequence.is_enabled is True


def test_toggle_sequence(client, shop_a):
    # given
    sequence = Sequence.objects.get(shop=shop_a, key="order_confirmed")
    # when
    response = post(client, shop_a, f"{BASE}sequences/{sequence.pk}/toggle", {"is_enabled": "1"})
    # then
    assert response.status_code == 303
    assert response["Location"].startswith(f"{BASE}?shop=alpha.myshopify.com&host={HOST}")
    assert "notice=sequence_enabled" in response["Location"]
    sequence.refresh_from_db()
    assert sequence.is_enabled is True


def test_edit_step(client, shop_a):
    # given
    step = SequenceStep.objects.get(shop=shop_a, template_key="review_request")
    prefix = f"step-{step.pk}-"
    # when
    response = post(
        client,
        shop_a,
        f"{BASE}sequences/{step.sequence_id}/steps/{step.pk}",
        {
            prefix + "delay_amount": "3",
            prefix + "delay_unit": "days",
            prefix + "delay_from": "previous",
            prefix + "channel": "sms",
            prefix + "template_key": "delivered",
            prefix + "conditions": ["not_returned"],
        },
    )
    # then
    assert response.status_code == 303
    step.refresh_from_db()
    assert (step.delay_minutes, step.delay_from, step.channel, step.template_key) == (
        3 * 24 * 60,
        "previous",
        "sms",
        "delivered",
    )
    assert step.conditions == ["not_returned"]
    assert step.is_enabled is False


def test_edit_step_refuses_bad_input_and_changes_nothing(client, shop_a):
    # given
    step = SequenceStep.objects.get(shop=shop_a, template_key="review_request")
    prefix = f"step-{step.pk}-"
    # when
    response = post(
        client,
        shop_a,
        f"{BASE}sequences/{step.sequence_id}/steps/{step.pk}",
        {
            prefix + "delay_amount": "-1",
            prefix + "delay_unit": "days",
            prefix + "delay_from": "trigger",
            prefix + "channel": "pigeon",
            prefix + "template_key": "../../etc",
        },
    )
    # then
    assert response.status_code == 422
    step.refresh_from_db()
    assert (step.delay_minutes, step.channel, step.template_key) == (
        7 * 24 * 60,
        "email",
        "review_request",
    )


def test_sequence_page_shows_steps(client, shop_a):
    # given
    sequence = Sequence.objects.get(shop=shop_a, key="out_for_delivery")
    # when
    response = get_page(client, shop_a, f"{BASE}sequences/{sequence.pk}")
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="card" id="step-') == 2


def test_template_editor_shows_the_default_and_its_preview(client, shop_a):
    # when
    response = get_page(client, shop_a, f"{BASE}templates/shipped/email/fr")
    # then
    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert "Votre commande {{ order.name }} est en route" in html  # the source in the editor
    assert "Votre commande #1001 est en route" in html  # the preview
    assert 'sandbox=""' in html


def test_template_list_marks_edited_templates(client, shop_a):
    # given
    MessageTemplate.objects.create(
        shop=shop_a, key="shipped", channel="email", locale="de", subject="x"
    )
    # when
    html = get_page(client, shop_a, f"{BASE}templates").content.decode()
    # then
    assert "DE · Edited" in html
    assert html.count("· Edited") == 1


def test_save_template(client, shop_a):
    # when
    response = post(
        client,
        shop_a,
        f"{BASE}templates/shipped/email/en",
        {
            "subject": "On its way: {{ order.name }}",
            "html_body": "<p>Hi {{ customer.first_name }}</p>",
            "text_body": "Hi {{ customer.first_name }}",
        },
    )
    # then
    assert response.status_code == 303
    assert "notice=template_saved" in response["Location"]
    template = MessageTemplate.objects.get(shop=shop_a, key="shipped", channel="email")
    assert (template.locale, template.subject) == ("en", "On its way: {{ order.name }}")


def test_template_with_syntax_error_is_refused_with_line_and_message(client, shop_a):
    # when
    response = post(
        client,
        shop_a,
        f"{BASE}templates/shipped/email/en",
        {
            "subject": "Shipped",
            "html_body": "<p>a</p>\n<p>b</p>\n{% for item in order.line_items %}\n<p>c</p>",
            "text_body": "ok",
        },
    )
    # then: the page again, the error with its line, the merchant's text kept, nothing saved
    assert response.status_code == 422
    html = unescape(response.content.decode())
    assert "The template was not saved" in html
    assert "HTML body, line 4: Expected tag endfor, found end of expression" in html
    assert "{% for item in order.line_items %}" in html
    assert not MessageTemplate.objects.filter(shop=shop_a).exists()


def test_reset_template(client, shop_a):
    # given
    MessageTemplate.objects.create(
        shop=shop_a, key="shipped", channel="email", locale="en", subject="x"
    )
    # when
    response = post(client, shop_a, f"{BASE}templates/shipped/email/en/reset")
    # then
    assert response.status_code == 303
    assert not MessageTemplate.objects.filter(shop=shop_a).exists()


def test_preview_without_javascript_is_a_get(client, shop_a):
    # when
    response = get_page(
        client,
        shop_a,
        f"{BASE}templates/shipped/sms/en/preview",
        sms_body="{{ shop.name }} says hi to {{ customer.first_name }}",
    )
    # then
    assert response.status_code == 200
    assert "Alpha says hi to Ada" in response.content.decode()
    assert not MessageTemplate.objects.filter(shop=shop_a).exists()


def test_live_preview_answers_json(client, shop_a):
    # when
    response = post(
        client,
        shop_a,
        f"{BASE}templates/shipped/email/en/preview",
        {"subject": "Hi {{ customer.first_name }}", "html_body": "<b>{{ order.name }}</b>"},
    )
    # then
    assert response.status_code == 200
    data = response.json()
    assert (data["subject"], data["html"], data["error"]) == ("Hi Ada", "<b>#1001</b>", "")


def test_live_preview_of_a_template_over_budget_says_why(client, shop_a):
    growing = '{{ "aaaaaaaaaa"' + ' | replace: "", "aaaaaaaaaa"' * 7 + " }}"

    response = post(
        client,
        shop_a,
        f"{BASE}templates/shipped/email/en/preview",
        {"subject": "Hi", "html_body": growing},
    )

    assert response.status_code == 200
    assert "A value grows too large" in response.json()["error"]


def test_send_test_to_me(client, shop_a):
    # when
    response = post(client, shop_a, f"{BASE}templates/delivered/email/es/test")
    # then
    assert response.status_code == 303
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["owner@alpha.test"]
    assert sent.subject == "[Test] Tu pedido #1001 ha sido entregado"
    assert sent.alternatives[0][1] == "text/html"


def test_send_test_uses_the_editor_content(client, shop_a):
    # when
    response = post(
        client,
        shop_a,
        f"{BASE}templates/delivered/email/en/test",
        {"subject": "Draft {{ order.name }}", "html_body": "<p>x</p>", "text_body": "x"},
    )
    # then
    assert response.status_code == 303
    assert mail.outbox[0].subject == "[Test] Draft #1001"
    assert not MessageTemplate.objects.filter(shop=shop_a).exists()


def test_message_log_filters(client, shop_a):
    # given
    failed = make_message(shop_a, status="failed", number=1001)
    make_message(shop_a, status="sent", number=1002)
    make_message(shop_a, status="skipped", number=1003, channel="email")
    # when
    failed_only = get_page(client, shop_a, f"{BASE}messages", status="failed").content.decode()
    by_order = get_page(client, shop_a, f"{BASE}messages", order="#1002").content.decode()
    everything = get_page(client, shop_a, f"{BASE}messages").content.decode()
    # then
    assert re.findall(r'data-message="(\d+)"', failed_only) == [str(failed.pk)]
    assert "buyer1002@example.com" in by_order
    assert "buyer1001@example.com" not in by_order
    assert len(re.findall(r'data-message="\d+"', everything)) == 3
    # resend is offered for failed and skipped only
    assert everything.count(">Resend</button>") == 2


def test_resend_puts_the_message_back_in_the_engine_due_now(client, shop_a):
    # given a message that failed an hour ago
    message = make_message(shop_a, status="failed")
    Message.objects.filter(pk=message.pk).update(
        due_at=timezone.now() - timedelta(hours=1), reason="SMTP said no"
    )

    # when staff press Resend
    response = post(client, shop_a, f"{BASE}messages/{message.pk}/resend")

    # then the engine has it scheduled, due now, its old failure cleared
    assert response.status_code == 303
    message.refresh_from_db()
    assert message.status == "scheduled"
    assert message.reason == ""
    assert timezone.now() - message.due_at < timedelta(minutes=1)


def test_resend_refuses_a_sent_message(client, shop_a):
    # given
    message = make_message(shop_a, status="sent")
    # when
    response = post(client, shop_a, f"{BASE}messages/{message.pk}/resend")
    # then
    assert response.status_code == 409


def test_suppression_list_and_remove(client, shop_a):
    # given
    kept = Suppression.objects.create(
        shop=shop_a, channel="email", address="a@example.com", reason="bounced"
    )
    removed = Suppression.objects.create(
        shop=shop_a, channel="email", address="b@example.com", reason="unsubscribed"
    )
    # when
    html = get_page(client, shop_a, f"{BASE}suppressions").content.decode()
    response = post(client, shop_a, f"{BASE}suppressions/{removed.pk}/remove")
    # then
    assert "a@example.com" in html
    assert "b@example.com" in html
    assert response.status_code == 303
    assert list(Suppression.objects.filter(shop=shop_a)) == [kept]


def test_another_shops_rows_answer_404(client, shop_a, shop_b):
    # given: shop B's sequence, step, template, message and suppression
    sequence = Sequence.objects.get(shop=shop_b, key="shipped")
    step = SequenceStep.objects.filter(shop=shop_b, sequence=sequence).first()
    MessageTemplate.objects.create(
        shop=shop_b, key="bravo_only", channel="email", locale="en", subject="secret"
    )
    message = make_message(shop_b, status="failed")
    suppression = Suppression.objects.create(
        shop=shop_b, channel="email", address="z@example.com", reason="bounced"
    )
    # when: shop A's token asks for them
    pages = [
        get_page(client, shop_a, f"{BASE}sequences/{sequence.pk}"),
        get_page(client, shop_a, f"{BASE}templates/bravo_only/email/en"),
    ]
    posts = [
        post(client, shop_a, f"{BASE}sequences/{sequence.pk}/toggle", {"is_enabled": "0"}),
        post(
            client,
            shop_a,
            f"{BASE}sequences/{sequence.pk}/steps/{step.pk}",
            {f"step-{step.pk}-delay_amount": "1"},
        ),
        post(client, shop_a, f"{BASE}templates/bravo_only/email/en", {"subject": "x"}),
        post(client, shop_a, f"{BASE}templates/bravo_only/email/en/reset"),
        post(client, shop_a, f"{BASE}messages/{message.pk}/resend"),
        post(client, shop_a, f"{BASE}suppressions/{suppression.pk}/remove"),
    ]
    # then
    assert [r.status_code for r in pages + posts] == [404] * 8
    sequence.refresh_from_db()
    assert sequence.is_enabled is True
    assert Suppression.objects.filter(pk=suppression.pk).exists()
    assert MessageTemplate.objects.get(shop=shop_b, key="bravo_only").subject == "secret"
    assert not MessageTemplate.objects.filter(shop=shop_a).exists()
    # and shop A's log and lists do not show B's rows
    log = get_page(client, shop_a, f"{BASE}messages").content.decode()
    assert f'data-message="{message.pk}"' not in log
    assert "z@example.com" not in get_page(client, shop_a, f"{BASE}suppressions").content.decode()
    assert "bravo_only" not in get_page(client, shop_a, f"{BASE}templates").content.decode()


def test_unknown_template_key_or_channel_is_404(client, shop_a):
    # when
    responses = [
        get_page(client, shop_a, f"{BASE}templates/nope/email/en"),
        get_page(client, shop_a, f"{BASE}templates/shipped/fax/en"),
        get_page(client, shop_a, f"{BASE}templates/shipped/email/english"),
    ]
    # then
    assert [r.status_code for r in responses] == [404, 404, 404]
