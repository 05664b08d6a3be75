"""Storefront tracking page, reached through the app proxy: /apps/<subpath>/track → /proxy/track."""

urlpatterns: list = []
