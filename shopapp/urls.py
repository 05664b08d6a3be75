from django.contrib import admin
from django.urls import include, path

from shopapp import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("webhooks/", include("shopapp.webhooks.urls")),
    path("auth/", include("shopapp.auth.urls")),
    path("app/", include("shopapp.embedded.urls")),
    # Storefront pages through the Shopify app proxy (/apps/<subpath>/… on the shop's domain).
    path("proxy/", include("tracking.urls")),
    path("proxy/", include("returns.urls")),
    # Public one-click unsubscribe (RFC 8058): mail providers POST here directly.
    path("notifications/", include("notifications.urls")),
    path("django-admin/", admin.site.urls),
]
