"""Storefront returns portal, through the app proxy: /apps/<subpath>/returns → /proxy/returns."""

from django.urls import path

from returns import views

# Mounted at "proxy/" (no trailing slash after "returns", as Shopify forwards
# /apps/<subpath>/returns).
urlpatterns = [
    path("returns", views.portal_page, name="returns_portal"),
    path("returns/<str:token>", views.return_status, name="returns_status"),
    path("returns/<str:token>/label", views.return_label, name="returns_label"),
    path("returns/<str:token>/state", views.return_state, name="returns_state"),
]
