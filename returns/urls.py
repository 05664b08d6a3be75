"""Storefront returns portal, through the app proxy: /apps/<subpath>/returns → /proxy/returns."""

from django.urls import path

from returns import views

# Mounted at "proxy/returns" (no trailing slash, as Shopify forwards /apps/<subpath>/returns).
urlpatterns = [
    path("", views.portal_page, name="returns_portal"),
    path("/<str:token>", views.return_status, name="returns_status"),
    path("/<str:token>/label", views.return_label, name="returns_label"),
]
