"""A support agent's flow, clicked through in headless Chromium: the merchant opens the app
from the store's admin (managed install: the app's first load exchanges the session token),
the store's orders reach the app (the reconciliation the install queues, run by a real RQ
worker), and the agent
searches an order by name and reads its timeline inside the admin frame."""

import uuid

import jwt
import pytest
from playwright.sync_api import expect

from shopapp.auth.selectors import shop_token_is_usable
from shopapp.models import Order, OrderEvent, Shop
from shopapp.support.timeline import entry_for
from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def test_managed_install_then_search_an_order_and_read_its_timeline(
    browser_app, browser_page, rq_worker
):
    page = browser_page
    devshop = browser_app.devshop
    domain = f"browser-{uuid.uuid4().hex[:8]}.myshopify.com"
    devshop.client.shop_create(domain, name="Maple and Thread")
    order_ids = devshop.client.orders_create(domain, count=3)

    # Given the store's admin, with the app not installed yet,
    page.goto(f"{devshop.base_url}/store/{domain}/admin")
    expect(page.locator(".topbar__shop-name")).to_have_text("Maple and Thread")
    expect(page.locator("[data-app]").get_by_text("Not installed", exact=True)).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-home.png"))

    # when the merchant opens the app, its first load installs it by token exchange.
    page.get_by_role("link", name="Install and open").click()
    app = page.frame_locator("#app-frame")
    expect(app.get_by_role("heading", name="Insights", level=1)).to_be_visible()
    app.locator("nav.tabs").get_by_role("link", name="Orders").click()
    expect(app.get_by_role("heading", name="Orders", level=1)).to_be_visible()
    expect(app.get_by_text("No orders yet.")).to_be_visible()
    shop = Shop.objects.get(myshopify_domain=domain)
    assert shop_token_is_usable(shop=shop)
    assert devshop.client.shop_get(domain)["app_installed"] is True

    # The install queued the first reconciliation (and the shop's details sync): a worker
    # brings the store's orders into the app.
    rq_worker()
    assert Order.objects.filter(shop=shop).count() == 3
    wanted = Order.objects.get(shop=shop, shopify_id=order_ids[1])
    events = list(OrderEvent.objects.filter(shop=shop, order=wanted))
    assert events

    # When the agent searches for the order by name and opens it,
    app.get_by_label("Search orders").fill(wanted.name)
    app.get_by_role("button", name="Search").click()
    found = app.locator("a.order-link")
    expect(found).to_have_count(1)
    expect(found).to_have_text(wanted.name)
    found.click()

    # then its page shows the order and every event of its timeline.
    expect(app.get_by_role("heading", name=wanted.name, level=1)).to_be_visible()
    timeline = app.locator("ol.timeline > li.timeline__item")
    expect(timeline).to_have_count(len(events))
    for event in events:
        item = timeline.and_(app.locator(f'[data-kind="{event.kind}"]'))
        expect(item.locator(".timeline__summary")).to_have_text(entry_for(event).sentence)

    page.screenshot(path=str(ARTIFACTS / "admin-order-timeline.png"))


def _id_token_of(frame) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(frame.url).query)["id_token"][0]


def test_the_frame_gives_the_app_a_fresh_token_on_request_and_after_the_old_one_dies(
    browser_app, browser_page
):
    page = browser_page
    devshop = browser_app.devshop
    domain = f"browser-{uuid.uuid4().hex[:8]}.myshopify.com"
    devshop.client.shop_create(domain)
    # Playwright's clock drives Date.now() in the frame page, so a minute passes at once.
    page.clock.install()
    page.goto(f"{devshop.base_url}/store/{domain}/admin/apps/app")
    app = page.frame_locator("#app-frame")
    expect(app.get_by_role("heading", name="Insights", level=1)).to_be_visible()
    frame = page.frame(name="app-iframe")
    first_token = _id_token_of(frame)

    # An app page asks the frame to reload one of its paths: it comes with a new token.
    frame.evaluate("parent.postMessage({type: 'devshop:reload', path: '/app/settings'}, '*')")
    expect(app.get_by_role("heading", name="Settings", level=1)).to_be_visible()
    second_token = _id_token_of(frame)
    assert second_token != first_token

    # An app page asks for a token, as it would call shopify.idToken().
    reply = frame.evaluate(
        """() => new Promise((resolve) => {
            window.addEventListener("message", (event) => {
                if (event.data && event.data.type === "devshop:id-token") resolve(event.data);
            });
            parent.postMessage({type: "devshop:id-token:request", requestId: 7}, "*");
        })"""
    )
    assert reply["requestId"] == 7
    claims = jwt.decode(reply["idToken"], options={"verify_signature": False})
    assert claims["dest"] == f"https://{domain}"

    # A reload of anything but the app's own paths is ignored.
    frame.evaluate("parent.postMessage({type: 'devshop:reload', path: '//evil.test/'}, '*')")
    page.wait_for_timeout(300)
    assert _id_token_of(frame) == second_token

    # The token's minute (and the app's leeway) passes; the next document the app loads would
    # be its bounce page, so the frame reloads the app with a fresh token.
    page.clock.fast_forward(71_000)
    app.get_by_role("link", name="Privacy").first.click()
    expect(page.locator("#frame-notice")).to_have_text(
        "Session token expired: the app was reloaded with a fresh one."
    )
    expect(app.get_by_role("heading", name="Insights", level=1)).to_be_visible()
    assert _id_token_of(frame) not in {first_token, second_token}
    assert frame.url.startswith(f"{browser_app.app_url}/app/?")
