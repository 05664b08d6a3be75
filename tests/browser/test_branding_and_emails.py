"""The branding screen and the email editor's preview in headless Chromium, at phone and
desktop widths: the live preview follows what is typed, a low-contrast pair is flagged and
refused, a logo is uploaded and saved; the designed email in light and dark mode; screenshots
kept in tests/browser/artifacts and axe-core's rules (no serious or critical violation)."""

import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from devshop.session_tokens import session_token_mint
from notifications.copy import sample_context
from notifications.rendering import template_render
from shopapp.auth.tokens import token_encrypt
from shopapp.branding.services import BrandingChange, branding_save
from shopapp.models import Shop, ShopBranding
from shopapp.storefront.links import tracking_link_token
from tests.browser.conftest import ARTIFACTS, DEFAULT_TIMEOUT_MS, OFF_MACHINE
from tests.browser.test_tracking_page import (  # noqa: F401 - store is a fixture
    _axe_violations,
    a_shipped_order,
    store,
    track_url,
)

pytestmark = pytest.mark.browser

HOST = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWxwaGE"
VIEWPORTS = {"phone": {"width": 375, "height": 740}, "desktop": {"width": 1280, "height": 900}}


@pytest.fixture
def app(live_server, settings, transactional_db):
    settings.APP_URL = live_server.url
    shop = Shop.objects.create(
        myshopify_domain="maple.myshopify.com",
        name="Maple and Thread",
        email="hello@maple.example",
        is_active=True,
        access_token_encrypted=token_encrypt(plain="shpat_test"),
        access_token_expires_at=timezone.now() + timedelta(hours=1),
    )
    return live_server.url, shop


def admin_url(base: str, shop: Shop, path: str) -> str:
    token = session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )
    return f"{base}{path}?shop={shop.myshopify_domain}&host={HOST}&id_token={token}"


def new_page(browser, viewport: str, **options):
    context = browser.new_context(
        viewport=VIEWPORTS[viewport], is_mobile=viewport == "phone", **options
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.route(OFF_MACHINE, lambda route: route.abort())
    return context, context.new_page()


def logo_file(tmp_path) -> str:
    path = tmp_path / "logo.png"
    image = Image.new("RGBA", (360, 90), (0, 0, 0, 0))
    for x in range(20, 340):
        for y in range(30, 60):
            image.putpixel((x, y), (124, 45, 18, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    path.write_bytes(out.getvalue())
    return str(path)


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_merchant_sets_the_branding_with_a_live_preview(app, browser, tmp_path, viewport):
    base, shop = app
    context, page = new_page(browser, viewport)
    try:
        page.goto(admin_url(base, shop, "/app/branding"))
        preview_button = page.locator(".brand-page .brand-page__button")
        # the preview follows the accent as it is typed
        page.fill("#id_accent_color", "#7c2d12")
        expect(preview_button).to_have_css("background-color", "rgb(124, 45, 18)")
        expect(preview_button).to_have_css("color", "rgb(255, 255, 255)")
        # a text colour below WCAG AA is flagged before saving …
        page.fill("#id_text_color", "#b0b0b0")
        expect(page.locator("[data-contrast-note]")).to_contain_text("below WCAG AA")
        # … and refused by the server, with the reason, nothing saved
        page.click("button[type=submit]")
        expect(page.locator("[data-banner=branding-errors]")).to_contain_text("WCAG AA needs")
        assert not ShopBranding.objects.filter(shop=shop).exists()
        # a readable pair, a font, the contact and a logo: saved
        page.fill("#id_accent_color", "#7c2d12")
        page.fill("#id_text_color", "#1f2328")
        page.select_option("#id_font", "georgia")
        page.fill("#id_support_email", "care@maple.example")
        page.fill("#id_support_phone", "+33 4 72 00 00 00")
        page.fill("#id_footer_text", "Maple and Thread, 3 rue de la Soie, Lyon")
        page.set_input_files("#id_logo", logo_file(tmp_path))
        expect(page.locator(".brand-page [data-preview-logo]")).to_be_visible()
        expect(page.locator("[data-contrast-note]")).to_contain_text("passes WCAG AA")
        expect(page.locator(".brand-preview")).to_have_css(
            "font-family", 'Georgia, "Times New Roman", Times, serif'
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"branding-{viewport}.png"), full_page=True)
        page.click("button[type=submit]")
        expect(page.locator("[data-banner=notice]")).to_contain_text("Branding saved.")
        row = ShopBranding.objects.get(shop=shop)
        assert (row.accent_color, row.font, row.support_email) == (
            "#7c2d12",
            "georgia",
            "care@maple.example",
        )
        assert row.logo_digest
        expect(page.locator(".brand-logo-current")).to_be_visible()
        violations = _axe_violations(page)
        assert violations == [], violations
    finally:
        context.close()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
@pytest.mark.parametrize("language", ["en", "es", "fr", "de"])
def test_the_email_preview_per_language_follows_the_blocks(app, browser, viewport, language):
    base, shop = app
    context, page = new_page(browser, viewport)
    try:
        page.goto(admin_url(base, shop, f"/app/notifications/templates/shipped/email/{language}"))
        frame = page.frame_locator("[data-preview-html]")
        expect(frame.locator("h1")).to_contain_text("#1001")
        # the sample's product images load from the app itself
        image = frame.locator("img[src$='linen-shirt.png']").first
        expect(image).to_be_visible()
        assert image.evaluate("img => img.naturalWidth") == 128
        # typing in a block re-renders the preview
        page.fill("#id_heading", "Bonne route, {{ customer.first_name }}!")
        expect(frame.locator("h1")).to_have_text("Bonne route, Ada!")
        # a broken Liquid block is reported, by name
        page.fill("#id_text", "{% if order.name %}unclosed")
        expect(page.locator("[data-preview-error]")).to_contain_text("Text")
        page.fill("#id_text", "We packed it by hand.")
        expect(page.locator("[data-preview-error]")).to_be_hidden()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(
            path=str(ARTIFACTS / f"email-preview-{language}-{viewport}.png"), full_page=True
        )
        violations = _axe_violations(page)
        assert violations == [], violations
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_designed_email_holds_at_both_widths_in_light_and_dark(app, browser, viewport, scheme):
    base, shop = app
    html = template_render(
        shop=shop,
        key="shipped",
        channel="email",
        locale="en",
        context=sample_context(shop=shop),
    ).html
    context, page = new_page(browser, viewport, color_scheme=scheme)
    try:
        page.set_content(html, wait_until="load")
        # nothing wider than the screen: the layout is fluid
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["width"]
        card = page.locator(".em-card").first
        expected = "rgb(28, 28, 30)" if scheme == "dark" else "rgb(255, 255, 255)"
        expect(card).to_have_css("background-color", expected)
        # each item's picture, loaded, in its 64 px box beside the title
        images = page.locator('img[width="64"][height="64"]')
        expect(images).to_have_count(2)
        for i in range(2):
            page.wait_for_function(
                "(img) => img.complete && img.naturalWidth > 0", arg=images.nth(i).element_handle()
            )
            box = images.nth(i).bounding_box()
            assert box is not None
            assert (round(box["width"]), round(box["height"])) == (64, 64)
        # the predicted estimate as the page shows it: the range of days and its basis
        expect(page.get_by_text("March 3 – March 5").first).to_be_visible()
        expect(
            page.get_by_text("Based on 240 deliveries to Ontario by DHL Express").first
        ).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(
            path=str(ARTIFACTS / f"email-shipped-{scheme}-{viewport}.png"), full_page=True
        )
        violations = _axe_violations(page)
        assert violations == [], violations
    finally:
        context.close()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_storefront_pages_wear_the_brand(store, browser, tmp_path, viewport):  # noqa: F811
    # given a brand with a tinted background, a serif font, a logo and a support contact
    devshop, shop = store
    order = a_shipped_order(shop)
    with open(logo_file(tmp_path), "rb") as logo:
        branding_save(
            shop=shop,
            change=BrandingChange(
                accent_color="#7c2d12",
                text_color="#1f2328",
                background_color="#fdf8f0",
                font="georgia",
                support_email="care@maple.example",
                support_phone="+33 4 72 00 00 00",
                footer_text="Maple and Thread, Lyon",
                logo=logo.read(),
            ),
        )
    context, page = new_page(browser, viewport)
    try:
        pages = {
            "tracking": track_url(devshop, shop, "track/" + tracking_link_token(order)),
            "returns": track_url(devshop, shop, "returns"),
        }
        for name, url in pages.items():
            page.goto(url)
            region = page.locator(".pp-track, .pp-returns").first
            expect(region).to_have_css("background-color", "rgb(253, 248, 240)")
            expect(region).to_have_css("font-family", 'Georgia, "Times New Roman", Times, serif')
            logo = region.locator("img[src*='/brand/logo/']").first
            expect(logo).to_be_visible()
            assert logo.evaluate("img => img.naturalWidth") > 0
            expect(
                region.get_by_role("link", name="care@maple.example", exact=True)
            ).to_be_visible()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"branded-{name}-{viewport}.png"), full_page=True)
            violations = _axe_violations(page, ".pp-track, .pp-returns")
            assert violations == [], (name, violations)
    finally:
        context.close()
