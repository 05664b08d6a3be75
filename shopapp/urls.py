from django.contrib import admin
from django.urls import include, path

from shopapp import views
from shopapp.branding.views import brand_logo

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("webhooks/", include("shopapp.webhooks.urls")),
    path("auth/", include("shopapp.auth.urls")),
    path("app/", include("shopapp.embedded.urls")),
    # Storefront pages through the Shopify app proxy (/apps/<subpath>/… on the shop's domain).
    path("proxy/", include("tracking.urls")),
    path("proxy/", include("returns.urls")),
    path("proxy/", include("notifications.proxy_urls")),
    # Public one-click unsubscribe (RFC 8058): mail providers POST here directly.
    path("notifications/", include("notifications.urls")),
    # The shop's logo, public (emails and storefront pages load it).
    path("brand/logo/<int:shop_id>/<str:digest>.png", brand_logo, name="brand_logo"),
    path("django-admin/", admin.site.urls),
]
