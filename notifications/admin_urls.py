"""The notifications admin, mounted at /app/notifications/ by shopapp/embedded/urls.py."""

from django.urls import path

from notifications import admin_views as views
from notifications import block_views

app_name = "notifications_admin"

_TEMPLATE = "templates/<slug:key>/<str:channel>/<str:locale>"

urlpatterns = [
    path("", views.sequence_list, name="sequence_list"),
    path("sequences/<int:sequence_id>", views.sequence_detail, name="sequence_detail"),
    path("sequences/<int:sequence_id>/toggle", views.sequence_toggle, name="sequence_toggle"),
    path(
        "sequences/<int:sequence_id>/steps/<int:step_id>",
        views.sequence_step_update,
        name="sequence_step_update",
    ),
    path("templates", views.template_list, name="template_list"),
    path(_TEMPLATE, views.template_edit, name="template_edit"),
    path(f"{_TEMPLATE}/preview", views.template_preview, name="template_preview"),
    path(f"{_TEMPLATE}/reset", views.template_reset, name="template_reset"),
    path(f"{_TEMPLATE}/test", views.template_test, name="template_test"),
    path(
        "templates/<slug:key>/email/<str:locale>/blocks",
        block_views.template_blocks_edit,
        name="template_blocks_edit",
    ),
    path(
        "templates/<slug:key>/email/<str:locale>/blocks/preview",
        block_views.template_blocks_preview,
        name="template_blocks_preview",
    ),
    path(
        "templates/<slug:key>/email/<str:locale>/blocks/test",
        block_views.template_blocks_test,
        name="template_blocks_test",
    ),
    path("messages", views.message_list, name="message_list"),
    path("messages/<int:message_id>/resend", views.message_resend, name="message_resend"),
    path("orders/<int:order_id>/resend-last", views.order_resend_last, name="order_resend_last"),
    path("settings", views.settings_page, name="settings"),
    path("suppressions", views.suppression_list, name="suppression_list"),
    path(
        "suppressions/<int:suppression_id>/remove",
        views.suppression_remove,
        name="suppression_remove",
    ),
]
