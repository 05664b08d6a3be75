"""SHOPIFY_EXTRA_FRAME_ANCESTORS: locally, the devshop's admin frame may frame the app too."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse

from shopapp import settings as app_settings
from shopapp.auth.session import embedded_headers_set


def test_extra_origins_follow_the_shops_admin_in_frame_ancestors(settings):
    settings.SHOPIFY_EXTRA_FRAME_ANCESTORS = ["http://127.0.0.1:8001"]

    response = embedded_headers_set(HttpResponse(), shop_domain="a.myshopify.com")

    assert response["Content-Security-Policy"] == (
        "frame-ancestors https://a.myshopify.com https://admin.shopify.com http://127.0.0.1:8001;"
    )


def test_setting_reads_space_separated_origins(monkeypatch):
    monkeypatch.setenv(
        "SHOPIFY_EXTRA_FRAME_ANCESTORS", "http://127.0.0.1:8001  https://dev.example:9000/"
    )

    assert app_settings._frame_ancestors() == ["http://127.0.0.1:8001", "https://dev.example:9000"]


@pytest.mark.parametrize(
    "value", ["http://x; script-src *", "127.0.0.1:8001", "http://x/app/", "javascript:x"]
)
def test_setting_refuses_anything_but_an_origin(monkeypatch, value):
    monkeypatch.setenv("SHOPIFY_EXTRA_FRAME_ANCESTORS", value)

    with pytest.raises(ImproperlyConfigured):
        app_settings._frame_ancestors()


def test_setting_is_empty_in_production(monkeypatch):
    monkeypatch.setenv("SHOPIFY_EXTRA_FRAME_ANCESTORS", "http://127.0.0.1:8001")
    monkeypatch.setenv("DEVSHOP_URL", "http://127.0.0.1:8001")
    monkeypatch.setattr(app_settings, "LOCAL_DEV", False)

    assert app_settings._frame_ancestors() == []
