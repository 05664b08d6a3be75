"""Absolute storefront links (emails, SMS) follow the storefront URL template."""

from shopapp.models import Shop
from shopapp.storefront import storefront_proxy_url


def test_links_point_at_the_shops_myshopify_domain_by_default(settings):
    shop = Shop(myshopify_domain="links.myshopify.com")

    assert storefront_proxy_url(shop, "track/abc") == (
        "https://links.myshopify.com/apps/postpurchase/track/abc"
    )
    assert storefront_proxy_url(shop) == "https://links.myshopify.com/apps/postpurchase"


def test_a_development_store_names_its_own_storefront(settings):
    # given the demo's devshop storefront and a merchant-chosen proxy path
    settings.SHOPIFY_STOREFRONT_URL_TEMPLATE = "http://127.0.0.1:8001/store/{shop}"
    settings.SHOPIFY_APP_PROXY_PREFIX = "tools"
    settings.SHOPIFY_APP_PROXY_SUBPATH = "where-is-it"
    shop = Shop(myshopify_domain="links.myshopify.com")

    assert storefront_proxy_url(shop, "/returns/xyz") == (
        "http://127.0.0.1:8001/store/links.myshopify.com/tools/where-is-it/returns/xyz"
    )
