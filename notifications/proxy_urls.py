"""Notifications' storefront pages, through the app proxy: /apps/<subpath>/review/<token> →
/proxy/review/<token> (mounted at ``proxy/`` by shopapp.urls, beside tracking and returns)."""

from django.urls import path

from notifications import review_views

urlpatterns = [
    # A signed token is base64url and ':' (django.core.signing): one path segment.
    path("review/<str:token>", review_views.review_page, name="review_page"),
]
