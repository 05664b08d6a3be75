"""``manage.py tracking_sample``: the order and links the demo prints at start, opened the
way a person would open them, through the devshop's storefront and its signed app proxy.

    call_command(tracking_sample) ─ JSON ─ requests.get(its links) ─▶ devshop storefront
        ─ signed proxy ─▶ live_server (the app, test DB) ─ the page for that order
"""

import io
import json
from datetime import UTC, datetime

import pytest
import requests
from django.core.management import CommandError, call_command

from devshop.management.commands.demo import demo_banner
from tests.tracking.test_page import make_line_item, make_order, make_shipment
from tests.tracking.test_page_storefront import region, shop, storefront  # noqa: F401
from tracking.models import Stage

TIMEOUT = 15


def _sample(**options) -> dict:
    out = io.StringIO()
    call_command("tracking_sample", stdout=out, **options)
    return json.loads(out.getvalue())


def test_the_printed_links_open_the_pages_of_the_printed_order(storefront, shop, settings):  # noqa: F811
    # given the app's links pointing at the devshop's storefront, as in the running demo
    settings.SHOPIFY_STOREFRONT_URL_TEMPLATE = f"{storefront.base_url}/store/{{shop}}"
    delivered = make_order(shop, 1001, email="ada@example.com", fulfillment_status="fulfilled")
    line = make_line_item(delivered, "Trail shoe", 1)
    make_shipment(
        delivered,
        stage=Stage.DELIVERED,
        items=[(line, 1)],
        delivered_at=datetime(2026, 3, 5, tzinfo=UTC),
    )
    # newer, but only in transit; and newer still, cancelled: the delivered one is printed
    make_shipment(make_order(shop, 1002, shopify_created_at=datetime(2026, 3, 9, tzinfo=UTC)))
    make_shipment(
        make_order(
            shop,
            1003,
            shopify_created_at=datetime(2026, 3, 10, tzinfo=UTC),
            cancelled_at=datetime(2026, 3, 10, 1, tzinfo=UTC),
        ),
        stage=Stage.DELIVERED,
    )

    # when the command prints its sample
    sample = _sample(shop=shop.myshopify_domain)

    # then it names the delivered order, and each link opens that order's page
    assert sample["order"] == "#1001"
    assert sample["email"] == "ada@example.com"
    prefix = f"{storefront.base_url}/store/{shop.myshopify_domain}/apps/postpurchase/"
    assert sample["tracking_url"].startswith(prefix + "track/")
    assert sample["portal_url"] == prefix + "returns"
    with requests.Session() as shopper:
        tracking = shopper.get(sample["tracking_url"], timeout=TIMEOUT)
        assert tracking.status_code == 200
        page = region(tracking.text)
        assert "Order #1001" in page
        assert "Delivered" in page
        portal = shopper.get(sample["portal_url"], timeout=TIMEOUT)
        assert portal.status_code == 200
        assert 'name="order"' in portal.text  # the portal's lookup: order number and email
        # a link signed for another order would not open this one: the token is the proof
        forged = sample["tracking_url"][:-3] + "abc"
        assert "Order #1001" not in shopper.get(forged, timeout=TIMEOUT).text

    # and the demo prints them as they came
    banner = demo_banner("http://store", "postpurchase", "http://app", sample)
    assert "order #1001, email ada@example.com" in banner
    assert sample["tracking_url"] in banner
    assert sample["portal_url"] in banner


@pytest.mark.django_db
def test_no_shop_or_no_shipped_order_is_a_clear_error():
    from tests.tracking.test_page import make_shop

    with pytest.raises(CommandError, match="no installed shop"):
        _sample(shop="nobody.myshopify.com")
    unshipped = make_shop()
    make_order(unshipped, 1001)
    with pytest.raises(CommandError, match="no shipped order"):
        _sample(shop=unshipped.myshopify_domain, wait=0)
