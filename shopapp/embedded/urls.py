from django.urls import include, path

from insights import views as insights_views
from shopapp.branding import views as branding_views
from shopapp.embedded import views
from tracking import admin_views as tracking_admin

app_name = "embedded"

urlpatterns = [
    # The admin opens the app at /app/: render the insights there rather than redirect, so
    # the first paint costs one round trip (Built for Shopify measures the app's LCP).
    path("", insights_views.home, name="home"),
    path("insights/", include("insights.urls")),
    path("orders", tracking_admin.order_list, name="order_list"),
    path("orders/delayed", tracking_admin.delay_list, name="delay_list"),
    path("orders/<int:order_id>", tracking_admin.order_detail, name="order_detail"),
    path("orders/<int:order_id>/notes", views.order_note_add_view, name="order_note_add"),
    path("orders/<int:order_id>/problems", tracking_admin.problem_open, name="problem_open"),
    path(
        "orders/<int:order_id>/problems/<int:case_id>/resolve",
        tracking_admin.problem_resolve,
        name="problem_resolve",
    ),
    path("privacy", views.privacy, name="privacy"),
    path(
        "privacy/exports/<int:export_id>.json",
        views.privacy_export_download,
        name="privacy_export_download",
    ),
    path("settings", views.settings_page, name="settings"),
    path("branding", branding_views.branding_edit, name="branding"),
    path("tracking-page", tracking_admin.tracking_page_settings, name="tracking_page_settings"),
    path("notifications/", include("notifications.admin_urls")),
    path("returns/", include("returns.admin_urls")),
]
