"""Branding set once (/app/branding): colours checked for WCAG AA contrast, logos decoded and
encoded afresh with Pillow, the look applied to the tracking page and the returns portal."""

import hashlib
import io
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from PIL import Image

from devshop.session_tokens import session_token_mint
from shopapp.auth.tokens import token_encrypt
from shopapp.branding.logo import LOGO_MAX_EDGE, LogoRefused, logo_clean
from shopapp.branding.look import contrast_ratio, look_build, readable_on
from shopapp.branding.selectors import brand_look
from shopapp.branding.services import BrandingChange, BrandingInvalid, branding_save
from shopapp.models import Shop, ShopBranding

pytestmark = pytest.mark.django_db

HOST = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWxwaGE"


def make_shop(domain: str = "brandy.myshopify.com") -> Shop:
    return Shop.objects.create(
        myshopify_domain=domain,
        is_active=True,
        name="Brandy",
        email="owner@brandy.test",
        access_token_encrypted=token_encrypt(plain="shpat_test"),
        access_token_expires_at=timezone.now() + timedelta(hours=1),
    )


def token_for(shop: Shop) -> str:
    return session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )


def png(width: int = 40, height: int = 20, *, mode: str = "RGBA", trailer: bytes = b"") -> bytes:
    out = io.BytesIO()
    colour = {"RGBA": (200, 30, 60, 128), "RGB": (200, 30, 60), "L": 90}[mode]
    Image.new(mode, (width, height), colour).save(out, format="PNG")
    return out.getvalue() + trailer


def change(**overrides) -> BrandingChange:
    values = {
        "accent_color": "#c2185b",
        "text_color": "#222222",
        "background_color": "#fffaf0",
        "font": "georgia",
        "support_email": "help@brandy.test",
        "support_phone": "+1 555 010 0199",
        "footer_text": "Brandy & Co · 1 Harbour St, Halifax",
    }
    values.update(overrides)
    return BrandingChange(**values)


# -- the look ---------------------------------------------------------------------------------


def test_contrast_ratio_follows_wcag():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)


def test_a_light_accent_gets_a_readable_shade_for_text_and_dark_ink_on_buttons():
    look = look_build(accent="#ffd700", background="#ffffff")
    assert look.accent == "#ffd700"
    assert look.accent_ink == "#000000"
    assert look.accent_text != "#ffd700"
    assert contrast_ratio(look.accent_text, "#ffffff") >= 4.5
    assert contrast_ratio(look.muted, look.background) >= 4.5
    assert readable_on("#1c1c1c", "#ffffff") == "#1c1c1c"


def test_stored_values_that_are_no_longer_valid_fall_back_to_defaults():
    look = look_build(accent="red; }</style><script>", text="#123", font="comic-sans-from-cdn")
    assert look.accent == "#008060"
    assert look.text == "#112233"
    assert look.font == "system"
    assert "http" not in look.font_stack
    assert "'" not in look.font_stack


# -- saving -----------------------------------------------------------------------------------


def test_branding_is_saved_with_a_clean_logo():
    shop = make_shop()
    branding_save(shop=shop, change=change(logo=png(1200, 300, trailer=b"<script>x</script>")))
    row = ShopBranding.objects.get(shop=shop)
    assert (row.accent_color, row.text_color, row.font) == ("#c2185b", "#222222", "georgia")
    # Encoded afresh: no bytes appended after the image survive, at most LOGO_MAX_EDGE wide.
    assert b"<script>" not in bytes(row.logo)
    assert (row.logo_width, row.logo_height) == (LOGO_MAX_EDGE, 150)
    assert row.logo_digest == hashlib.sha256(bytes(row.logo)).hexdigest()
    with Image.open(io.BytesIO(bytes(row.logo))) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"


def test_text_below_aa_on_its_background_is_refused_and_nothing_is_written():
    shop = make_shop()
    with pytest.raises(BrandingInvalid) as refused:
        branding_save(shop=shop, change=change(text_color="#aaaaaa", background_color="#ffffff"))
    assert "WCAG AA" in refused.value.problems["text_color"]
    assert "2.32:1" in refused.value.problems["text_color"]
    assert not ShopBranding.objects.filter(shop=shop).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a not really", "PNG, JPEG or WebP"),
        (b"<svg onload='alert(1)'/>", "PNG, JPEG or WebP"),
        (png()[:60], "damaged"),
    ],
)
def test_a_logo_that_is_not_a_clean_image_is_refused(data, message):
    with pytest.raises(LogoRefused, match=message):
        logo_clean(data)


def test_a_logo_bomb_is_refused_before_its_pixels_are_decoded():
    # 5,000 × 5,000 of one colour: a few KB on disk, 100 MB once decoded.
    with pytest.raises(LogoRefused, match="too many pixels"):
        logo_clean(png(5000, 5000, mode="L"))


def test_a_refused_logo_keeps_the_previous_branding_whole():
    shop = make_shop()
    branding_save(shop=shop, change=change(logo=png()))
    before = ShopBranding.objects.get(shop=shop)
    with pytest.raises(BrandingInvalid) as refused:
        branding_save(shop=shop, change=change(accent_color="#000000", logo=b"not an image"))
    assert "logo" in refused.value.problems
    after = ShopBranding.objects.get(shop=shop)
    assert (after.accent_color, after.logo_digest) == (before.accent_color, before.logo_digest)


# -- the admin screen and the logo URL ---------------------------------------------------------


def test_the_branding_screen_shows_the_form_and_a_preview(client):
    shop = make_shop()
    response = client.get(
        "/app/branding",
        {"shop": shop.myshopify_domain, "host": HOST, "id_token": token_for(shop)},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="accent_color"' in html
    assert "data-brand-preview" in html
    assert "Georgia (serif)" in html
    assert "fonts.googleapis" not in html


def test_posting_the_screen_saves_and_serves_the_logo(client):
    shop = make_shop()
    response = client.post(
        f"/app/branding?shop={shop.myshopify_domain}&host={HOST}",
        {
            "accent_color": "#C2185B",
            "text_color": "222",
            "background_color": "#ffffff",
            "font": "verdana",
            "support_email": "help@brandy.test",
            "support_phone": "+44 20 7946 0000",
            "footer_text": "Thanks for shopping local.",
            "logo": io.BytesIO(png()),
        },
        HTTP_AUTHORIZATION=f"Bearer {token_for(shop)}",
    )
    assert response.status_code == 303
    look = brand_look(shop=shop)
    assert look is not None
    assert (look.accent, look.text, look.font) == ("#c2185b", "#222222", "verdana")
    assert look.logo_url.startswith(settings.APP_URL + "/brand/logo/")
    logo = client.get(look.logo_url.removeprefix(settings.APP_URL))
    assert logo.status_code == 200
    assert logo["Content-Type"] == "image/png"
    assert "immutable" in logo["Cache-Control"]
    assert logo.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/brand/logo/{shop.pk}/{'0' * 64}.png").status_code == 404


def test_posting_a_low_contrast_pair_answers_422_with_the_reason(client):
    shop = make_shop()
    response = client.post(
        f"/app/branding?shop={shop.myshopify_domain}&host={HOST}",
        {
            "accent_color": "#008060",
            "text_color": "#ffff00",
            "background_color": "#ffffff",
            "font": "system",
        },
        HTTP_AUTHORIZATION=f"Bearer {token_for(shop)}",
    )
    assert response.status_code == 422
    assert "WCAG AA needs at least 4.5:1" in response.content.decode()
    assert not ShopBranding.objects.filter(shop=shop).exists()


def test_posting_without_the_session_token_header_changes_nothing(client):
    shop = make_shop()
    response = client.post(
        f"/app/branding?shop={shop.myshopify_domain}&host={HOST}&id_token={token_for(shop)}",
        {
            "accent_color": "#000000",
            "text_color": "#222222",
            "background_color": "#ffffff",
            "font": "system",
        },
    )
    assert response.status_code in (401, 403)
    assert not ShopBranding.objects.filter(shop=shop).exists()


def test_the_storefront_pages_carry_the_brand(client):
    from tests.shopapp.branding_support import portal_html, tracking_html

    shop = make_shop()
    branding_save(shop=shop, change=change(logo=png()))
    for html in (tracking_html(client, shop), portal_html(client, shop)):
        assert "--pp-accent: #c2185b;" in html
        assert "--pp-ink: #222222;" in html
        assert "--pp-line: #d7d3cb; --pp-soft: #f4efe6;" in html
        assert "background: #fffaf0; font-family: Georgia,Times New Roman,Times,serif;" in html
        assert 'href="mailto:help@brandy.test"' in html
        assert 'href="tel:+15550100199"' in html
        assert "Brandy &amp; Co · 1 Harbour St, Halifax" in html
        assert re.search(r'src="http[^"]+/brand/logo/\d+/[0-9a-f]{64}\.png"', html)
