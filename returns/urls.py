"""Storefront returns portal, reached through the app proxy: /apps/<subpath>/returns → /proxy/returns."""

urlpatterns: list = []
