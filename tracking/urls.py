"""Storefront tracking page, reached through the app proxy: /apps/<subpath>/track → /proxy/track.

Mounted at ``proxy/`` by shopapp.urls (Shopify forwards /apps/<subpath>/track with no slash).
"""

from django.urls import path

from tracking import views

app_name = "tracking"

urlpatterns = [
    path("track", views.track, name="track"),
    # A signed token is base64url and ':' (django.core.signing): one path segment.
    path("track/<str:token>", views.track_link, name="track_link"),
    # A parcel found by its tracking number alone (its progress, nothing of the order).
    path("track/parcel/<str:token>", views.track_parcel, name="track_parcel"),
]
