"""Storefront tracking page, reached through the app proxy: /apps/<subpath>/track → /proxy/track.

Mounted at ``proxy/track`` by shopapp.urls, so these patterns start right after "track".
"""

from django.urls import path

from tracking import views

app_name = "tracking"

urlpatterns = [
    path("", views.track, name="track"),
    # A signed token is base64url and ':' (django.core.signing): one path segment.
    path("/<str:token>", views.track_link, name="track_link"),
]
