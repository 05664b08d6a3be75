"""The review request's rating page in headless Chromium, through the devshop's storefront and
its app proxy to the live app, on a phone and a desktop, in the four languages: the star the
email's link chose, a comment, Send, the thanks and the merchant's review page. Each page is
checked with axe-core (no serious or critical violation), for LCP ≤ 1 s and CLS ≤ 0.05, and on
a phone for sideways scrolling; screenshots go to tests/browser/artifacts."""

import uuid

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from notifications.defaults import notification_defaults_install
from notifications.models import Message, NotificationSettings, ReviewAnswer, SequenceStep
from notifications.reviews import review_link_token
from shopapp.branding.services import BrandingChange, branding_save
from tests.browser.conftest import ARTIFACTS, DEFAULT_TIMEOUT_MS, OFF_MACHINE
from tests.browser.test_insights_page import VITALS
from tests.browser.test_tracking_page import PHONE, _axe_violations
from tests.tracking.test_page import make_line_item, make_order, make_shop

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
WORDS = {
    # title, the chosen star's name, the five stars' name, the comment's label, send, thanks
    "en": ("How was your order #{n}?", "4 stars", "5 stars", "Anything you'd like to tell us?",
           "Send my rating", "Thank you! You rated your order 5 of 5 stars."),
    "es": ("¿Qué tal tu pedido #{n}?", "4 estrellas", "5 estrellas",
           "¿Algo que quieras contarnos?", "Enviar mi valoración",
           "¡Gracias! Has dado a tu pedido 5 de 5 estrellas."),
    "fr": ("Comment s'est passée votre commande #{n} ?", "4 étoiles", "5 étoiles",
           "Quelque chose à nous dire ?", "Envoyer ma note",
           "Merci ! Vous avez donné 5 étoiles sur 5 à votre commande."),
    "de": ("Wie war deine Bestellung #{n}?", "4 Sterne", "5 Sterne",
           "Möchtest du uns noch etwas sagen?", "Bewertung senden",
           "Danke! Du hast deine Bestellung mit 5 von 5 Sternen bewertet."),
}  # fmt: skip
WRITE_A_REVIEW = {
    "en": "Write a review",
    "es": "Escribir una reseña",
    "fr": "Écrire un avis",
    "de": "Bewertung schreiben",
}


@pytest.fixture
def store(browser_app, settings):
    import redis

    connection = redis.Redis.from_url(settings.REDIS_URL)
    for key in connection.scan_iter("tracking:rl:*"):
        connection.delete(key)
    devshop = browser_app.devshop
    domain = f"review-{uuid.uuid4().hex[:8]}.myshopify.com"
    devshop.client.shop_create(domain, name="Maple and Thread")
    devshop.client.app_install(domain)
    shop = make_shop(domain, name="Maple and Thread", timezone="Europe/Paris")
    notification_defaults_install(shop=shop)
    branding_save(
        shop=shop,
        change=BrandingChange(
            accent_color="#1f5f8b",
            text_color="#1a1a1a",
            background_color="#ffffff",
            font="verdana",
        ),
    )
    NotificationSettings.objects.create(
        shop=shop, review_page_url="https://reviews.maple.example/write"
    )
    return devshop, shop


def _sent_review_request(shop, number: int, language: str) -> Message:
    """A review request as the sender leaves it once SMTP accepted it."""
    order = make_order(shop, number, locale=language)
    make_line_item(order, "Linen shirt", 1)
    step = SequenceStep.objects.get(shop=shop, template_key="review_request")
    now = timezone.now()
    return Message.objects.create(
        shop=shop,
        order=order,
        step=step,
        trigger="delivered",
        channel="email",
        recipient=order.email,
        locale=language,
        due_at=now,
        status=Message.Status.SENT,
        sent_at=now,
    )


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_a_shopper_rates_an_order_from_the_emails_star(store, browser, viewport):
    devshop, shop = store
    phone = viewport == "phone"
    context = browser.new_context(
        viewport=PHONE if phone else DESKTOP, is_mobile=phone, has_touch=phone
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.route(OFF_MACHINE, lambda route: route.abort())
    page = context.new_page()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        for index, (language, words) in enumerate(WORDS.items()):
            title, four, five, comment, send, thanks = words
            number = 1001 + index
            message = _sent_review_request(shop, number, language)
            token = review_link_token(
                shop_id=shop.pk, order_id=message.order_id, message_id=message.pk
            )

            # Given the fourth star's link from the email, in the order's language,
            page.goto(
                devshop.client.app_proxy_url(shop.myshopify_domain, f"review/{token}?rating=4")
            )
            expect(
                page.get_by_role("heading", name=title.format(n=number), level=1)
            ).to_be_visible()
            expect(page.get_by_role("radio", name=four, exact=True)).to_be_checked()
            # (measured on a second load: the first hit of a test server pays its cold start,
            # compiling templates and catalogs, which a shop's live server paid long ago)
            page.reload()
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            vitals = page.evaluate(VITALS)
            assert 0 < vitals["lcp"] <= 1000, (language, vitals)
            assert vitals["cls"] <= 0.05, (language, vitals)
            assert _axe_violations(page) + _axe_violations(page, ".pp-review") == [], language
            if phone:
                assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            suffix = "" if language == "en" else f"-{language}"
            page.screenshot(
                path=str(ARTIFACTS / f"review-rating-{viewport}{suffix}.png"), full_page=True
            )
            # nothing is recorded by opening it
            assert not ReviewAnswer.objects.filter(message=message).exists()

            # when the shopper changes to five stars, writes a line and sends it,
            page.locator("label.pp-review__label", has_text=five).click()
            expect(page.get_by_role("radio", name=five, exact=True)).to_be_checked()
            page.get_by_label(comment).fill("Soft and well made.")
            page.get_by_role("button", name=send).click()

            # then the page thanks them and offers the store's review page,
            expect(page.get_by_role("status")).to_contain_text(thanks)
            expect(page.get_by_role("link", name=WRITE_A_REVIEW[language])).to_have_attribute(
                "href", "https://reviews.maple.example/write"
            )
            assert _axe_violations(page, ".pp-review") == [], language
            if phone:
                assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            page.screenshot(
                path=str(ARTIFACTS / f"review-rating-thanks-{viewport}{suffix}.png"),
                full_page=True,
            )
            # and the answer is the shopper's: five stars and their words
            answer = ReviewAnswer.objects.get(message=message)
            assert (answer.rating, answer.comment) == (5, "Soft and well made.")
    finally:
        context.close()
