"""Designed emails: the shop's branding, product images, the progress of the stages and the
estimate in HTML and in the plain-text part, every trigger in four languages; and emails
edited as blocks (subject, heading, text, button, colour) with Liquid, refused when broken."""

import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone
from PIL import Image

from devshop.session_tokens import session_token_mint
from notifications.admin_services import TemplateInvalid, template_blocks_save
from notifications.blocks import EmailBlocks, blocks_default
from notifications.context import message_context_build, progress_build
from notifications.defaults import ALL_TEMPLATE_KEYS, LANGUAGES, TRACKING_LINK_KEYS, sample_context
from notifications.models import MessageTemplate
from notifications.rendering import template_render
from shopapp.auth.tokens import token_encrypt
from shopapp.branding.services import BrandingChange, branding_save
from shopapp.models import Order, Shop

pytestmark = pytest.mark.django_db

HOST = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWxwaGE"
STAGE_NAMES = {
    "en": ["Ordered", "Shipped", "In transit", "Out for delivery", "Delivered"],
    "es": ["Pedido", "Enviado", "En tránsito", "En reparto", "Entregado"],
    "fr": ["Commandé", "Expédié", "En transit", "En livraison", "Livré"],
    "de": ["Bestellt", "Versandt", "Unterwegs", "In Zustellung", "Zugestellt"],
}
ESTIMATE = {"en": "March 5", "es": "05/03/2026", "fr": "05/03/2026", "de": "05.03.2026"}


@pytest.fixture
def shop() -> Shop:
    return Shop.objects.create(
        myshopify_domain="alpha.myshopify.com",
        name="Alpha Goods",
        email="owner@alpha.test",
        is_active=True,
        access_token_encrypted=token_encrypt(plain="shpat_test"),
        access_token_expires_at=timezone.now() + timedelta(hours=1),
    )


def logo_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (480, 120), (10, 60, 120, 255)).save(out, format="PNG")
    return out.getvalue()


def brand(shop: Shop, **overrides) -> None:
    values = {
        "accent_color": "#6d28d9",
        "text_color": "#1f2933",
        "background_color": "#ffffff",
        "font": "georgia",
        "support_email": "care@alpha.test",
        "support_phone": "+1 555 010 0199",
        "footer_text": "Alpha Goods, 12 Quay Road, Bristol",
        "logo": logo_png(),
    }
    values.update(overrides)
    branding_save(shop=shop, change=BrandingChange(**values))


def visible_text(html: str) -> str:
    body = re.sub(r"<style.*?</style>", "", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


# -- every trigger, four languages ------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", ALL_TEMPLATE_KEYS)
def test_every_email_is_designed_and_its_text_part_says_the_same(shop, language, key):
    # given a branded shop and the sample order (two parcels in transit, with images)
    brand(shop)
    context = sample_context(shop=shop)
    # when
    rendered = template_render(
        shop=shop, key=key, channel="email", locale=language, context=context
    )
    html, text = rendered.html, rendered.text
    # then: dark-mode aware, responsive, branded, no web font or image of text
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert 'role="presentation"' in html
    assert "fonts.googleapis" not in html
    assert "font-family:Georgia,Times New Roman,Times,serif" in html
    assert re.search(r'<img src="http[^"]+/brand/logo/\d+/[0-9a-f]{64}\.png" width="200"', html)
    assert 'alt="Alpha Goods"' in html
    # the footer carries the support contact and the merchant's footer, in both parts
    for part in (visible_text(html), text):
        assert "care@alpha.test" in part
        assert "+1 555 010 0199" in part
        assert "Alpha Goods, 12 Quay Road, Bristol" in part
    if key in TRACKING_LINK_KEYS:
        # product images, the progress with the stage names, the estimate as the headline
        assert "/static/notifications/sample/linen-shirt.png" in html
        assert "background-color:#6d28d9" in html
        words = visible_text(html)
        for name in STAGE_NAMES[language]:
            assert name in words
            assert name in text
        assert ESTIMATE[language] in words
        assert ESTIMATE[language] in text
        assert "[x] " + STAGE_NAMES[language][2] in text
        assert "[ ] " + STAGE_NAMES[language][3] in text


def test_shopper_data_is_escaped_in_html_and_kept_as_typed_in_text(shop):
    # given a name and a product title that try to break out of the markup
    evil = '"><img src=x onerror=alert(1)>'
    context = sample_context(shop=shop)
    context["customer"] = {"first_name": "<script>alert(1)</script>"}
    context["shipments"][0]["items"] = [
        {"title": evil, "variant_title": "", "quantity": 1, "image_url": "", "replaces": ""}
    ]
    # when
    rendered = template_render(
        shop=shop, key="shipped", channel="email", locale="en", context=context
    )
    # then
    assert "<script>alert(1)" not in rendered.html
    assert "<img src=x" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in rendered.html
    assert "<script>alert(1)</script>" in rendered.text
    assert evil in rendered.text


def test_a_shop_without_branding_gets_the_default_look_and_its_own_email(shop):
    rendered = template_render(
        shop=shop, key="shipped", channel="email", locale="en", context=sample_context(shop=shop)
    )
    assert "background-color:#008060" in rendered.html
    assert '<span class="em-text"' in rendered.html  # the shop's name, as text
    assert "owner@alpha.test" in rendered.text


# -- the facts the emails need, from the message's snapshot ------------------------------------


def _parcel(stage: str, delivered: bool = False) -> dict:
    return {"stage": stage, "delivered_at": datetime(2026, 3, 5, tzinfo=UTC) if delivered else None}


@pytest.mark.parametrize(
    ("parcels", "rank", "is_issue"),
    [
        ([_parcel("shipped")], 1, False),
        ([_parcel("out_for_delivery")], 3, False),
        ([_parcel("attempted_delivery")], 3, False),
        ([_parcel("delayed")], 2, True),
        ([_parcel("in_transit", delivered=True)], 4, False),
        # as far as the slowest parcel
        ([_parcel("delivered", delivered=True), _parcel("shipped")], 1, False),
        # an unknown stage (Shopify's statuses are an open set) sits on "shipped"
        ([_parcel("label_printed_somewhere_new")], 1, False),
    ],
)
def test_progress_follows_the_slowest_parcel(parcels, rank, is_issue):
    progress = progress_build(parcels)
    assert progress is not None
    assert progress["rank"] == rank
    assert progress["is_issue"] is is_issue
    assert progress_build([]) is None


def test_the_message_context_carries_brand_images_progress_and_estimate(shop):
    # given a branded shop and a message snapshot of one parcel out for delivery
    brand(shop)
    order = Order.objects.create(
        shop=shop, shopify_id=7001, name="#7001", order_number=7001, total_price=Decimal("20")
    )
    snapshot = {
        "news": {"type": "shipment"},
        "shipments": [
            {
                "carrier": "UPS",
                "tracking_numbers": ["1Z999"],
                "tracking_urls": ["https://ups.example/1Z999"],
                "stage": "out_for_delivery",
                "estimated_delivery_at": "2026-03-05T18:00:00+00:00",
                "items": [
                    {"title": "Mug", "quantity": 2, "image_url": "https://cdn.example/mug.png"}
                ],
            }
        ],
    }
    # when
    context = message_context_build(
        shop=shop,
        order=order,
        snapshot=snapshot,
        channel="email",
        recipient="ada@example.com",
        zone=ZoneInfo("Europe/Paris"),
    )
    rendered = template_render(
        shop=shop, key="out_for_delivery", channel="email", locale="en", context=context
    )
    # then
    assert context["brand"]["accent"] == "#6d28d9"
    assert context["progress"] == {"rank": 3, "stage": "out_for_delivery", "is_issue": False}
    assert '<img src="https://cdn.example/mug.png" width="64" height="64" alt=""' in rendered.html
    assert "March 5" in rendered.text
    assert "[x] Out for delivery [ ] Delivered" in rendered.text


# -- blocks -------------------------------------------------------------------------------------


def test_blocks_with_liquid_are_saved_and_sent_in_the_designed_layout(shop):
    # given
    blocks = EmailBlocks(
        subject="{{ order.name }} left our workshop",
        heading="On its way, {{ customer.first_name | default: 'friend' }}!",
        text="We packed it by hand.\n\n{% if shipment.carrier %}It travels with "
        "{{ shipment.carrier }}.{% endif %}",
        button_label="Follow it",
        accent_color="#B91C1C",
    )
    # when
    template, warnings = template_blocks_save(shop=shop, key="shipped", locale="fr", blocks=blocks)
    rendered = template_render(
        shop=shop, key="shipped", channel="email", locale="fr", context=sample_context(shop=shop)
    )
    # then
    assert warnings == []
    assert template.blocks["heading"].startswith("On its way")
    assert rendered.subject == "#1001 left our workshop"
    words = visible_text(rendered.html)
    assert "On its way, Ada!" in words
    assert "It travels with DHL Express." in words
    assert "Follow it" in words
    assert "background-color:#b91c1c" in rendered.html  # the email's own colour
    assert "Expédié" in words  # the progress stays in the email's language
    assert "On its way, Ada!" in rendered.text
    assert "Follow it: https://alpha.myshopify.com/" in rendered.text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("text", "Hello {% if customer.first_name %}there", "Text"),
        ("heading", "{{ order.name | no_such_filter }}", "Heading"),
        ("subject", "{{ order.name ", "Subject"),
        ("accent_color", "purple", "enter a colour as #rrggbb"),
        ("button_label", "{% include 'secrets' %}", "Button label"),
    ],
)
def test_a_broken_block_is_refused_with_its_name_and_nothing_is_saved(shop, field, value, message):
    blocks = blocks_default("shipped", "en")
    broken = EmailBlocks(**{**blocks.as_dict(), field: value})
    with pytest.raises(TemplateInvalid) as refused:
        template_blocks_save(shop=shop, key="shipped", locale="en", blocks=broken)
    assert any(message in p.message and p.field == field for p in refused.value.problems)
    assert not MessageTemplate.objects.filter(shop=shop).exists()


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_block_editor_previews_each_language_with_sample_data(client, shop, language):
    token = session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )
    # the template list's link opens the block editor
    page = client.get(
        f"/app/notifications/templates/shipped/email/{language}",
        {"shop": shop.myshopify_domain, "host": HOST, "id_token": token},
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="heading"' in html
    assert "data-preview-html" in html
    # the live preview renders what is typed, in that language
    preview = client.post(
        f"/app/notifications/templates/shipped/email/{language}/blocks/preview"
        f"?shop={shop.myshopify_domain}&host={HOST}",
        {"subject": "S {{ order.name }}", "heading": "H", "text": "T", "button_label": "B"},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert preview.status_code == 200
    data = preview.json()
    assert data["error"] == ""
    assert data["subject"] == "S #1001"
    assert f'<html lang="{language}">' in data["html"]
    assert STAGE_NAMES[language][2] in data["text"]
    # a broken block: the reason, no email
    broken = client.post(
        f"/app/notifications/templates/shipped/email/{language}/blocks/preview"
        f"?shop={shop.myshopify_domain}&host={HOST}",
        {"subject": "S", "heading": "H", "text": "{% for x in %}", "button_label": "B"},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert broken.json()["html"] == ""
    assert broken.json()["error"].startswith("Text")


def test_saving_a_broken_block_through_the_admin_answers_422_and_keeps_nothing(client, shop):
    token = session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )
    response = client.post(
        f"/app/notifications/templates/shipped/email/en/blocks"
        f"?shop={shop.myshopify_domain}&host={HOST}",
        {"subject": "S", "heading": "{{ unclosed", "text": "T", "button_label": "B"},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 422
    assert "The email was not saved" in response.content.decode()
    assert not MessageTemplate.objects.filter(shop=shop).exists()


def test_send_test_mails_the_blocks_as_typed_to_the_shop(client, shop, mailoutbox):
    token = session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )
    response = client.post(
        f"/app/notifications/templates/delivered/email/de/blocks/test"
        f"?shop={shop.myshopify_domain}&host={HOST}",
        {"subject": "Da ist {{ order.name }}", "heading": "Angekommen", "text": "Viel Freude."},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 303
    [mail] = mailoutbox
    assert mail.to == ["owner@alpha.test"]
    assert "Da ist #1001" in mail.subject
    assert "Angekommen" in mail.body
    assert "Viel Freude." in mail.body
    assert not MessageTemplate.objects.filter(shop=shop).exists()
