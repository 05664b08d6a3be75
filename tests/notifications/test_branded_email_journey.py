"""A branded email with product images and its text part, from tracking's news to a real SMTP
server (aiosmtpd): the trigger, the schedule row, a burst RQ worker, Django's SMTP backend."""

import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from notifications.news import Item
from notifications.triggers import notification_trigger
from shopapp.branding.services import BrandingChange, branding_save
from tests.notifications.engine_support import (
    dispatch_and_work,
    make_order,
    make_sequence,
    make_shop,
    parcel,
    smtp_sink,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.django_db


def _logo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 100), (20, 40, 90)).save(out, format="JPEG")
    return out.getvalue()


def test_a_branded_shipped_email_with_images_and_a_text_part_arrives(
    smtp_sink,  # noqa: F811 - fixture
    rq_worker,
    django_capture_on_commit_callbacks,
):
    # given a shop with its branding, the built-in "shipped" email, and an order in Spanish
    shop = make_shop()
    branding_save(
        shop=shop,
        change=BrandingChange(
            accent_color="#0f766e",
            text_color="#111111",
            background_color="#ffffff",
            font="verdana",
            support_email="ayuda@alpha.example",
            support_phone="+34 910 000 000",
            footer_text="Alpha Goods · Calle Mayor 1, Madrid",
            logo=_logo(),
        ),
    )
    make_sequence(shop, "shipped", "shipped", [{"channel": "email", "template_key": "shipped"}])
    order = make_order(shop, locale="es")
    estimate = timezone.now() + timedelta(days=3)
    news = parcel(
        71,
        "shipped",
        estimated_delivery_at=estimate,
        items=(
            Item(
                title="Camisa de lino",
                variant_title="Arena / M",
                quantity=1,
                image_url="https://cdn.shopify.example/files/camisa.png",
            ),
        ),
    )
    # when tracking's news arrives and the cron and a worker run
    with django_capture_on_commit_callbacks(execute=True):
        notification_trigger(shop=shop, order=order, trigger="shipped", news=news)
    handed_out = dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    # then one multipart email arrived at the SMTP server
    assert handed_out == 1
    [mail] = smtp_sink.messages
    assert mail.get_content_type() == "multipart/alternative"
    assert mail["Subject"] == "Tu pedido #1001 ya está en camino"
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    # branded: logo from the app, the accent on the button, the font, the footer
    assert re.search(
        r'<img src="https://app\.postpurchase\.example/brand/logo/\d+/[0-9a-f]{64}\.png"', html
    )
    assert "background-color:#0f766e" in html
    assert "font-family:Verdana,Geneva,Tahoma,sans-serif" in html
    assert '<meta name="color-scheme" content="light dark">' in html
    # the product image, the progress and the estimate; the text part says the same
    assert '<img src="https://cdn.shopify.example/files/camisa.png" width="64"' in html
    date = timezone.localtime(estimate, timezone=order_zone(shop)).strftime("%d/%m/%Y")
    for part in (html, text):
        assert "Camisa de lino" in part
        assert "Enviado" in part
        assert date in part
        assert "ayuda@alpha.example" in part
        assert "Alpha Goods · Calle Mayor 1, Madrid" in part
    assert "[x] Enviado [ ] En tránsito" in text
    assert "/apps/postpurchase/track/" in text


def order_zone(shop):
    from zoneinfo import ZoneInfo

    return ZoneInfo(shop.timezone)
