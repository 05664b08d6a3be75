"""The returns pages of the embedded admin, mounted at /app/returns/."""

from django.urls import path

from returns import admin_views

app_name = "returns_admin"

urlpatterns = [
    path("", admin_views.return_queue, name="queue"),
    path("bulk", admin_views.return_bulk, name="bulk"),
    path("<int:return_id>", admin_views.return_detail, name="detail"),
    path("<int:return_id>/approve", admin_views.return_approve, name="approve"),
    path("<int:return_id>/decline", admin_views.return_decline, name="decline"),
    path("<int:return_id>/receive", admin_views.return_receive, name="receive"),
    path("<int:return_id>/process", admin_views.return_process, name="process"),
    path("<int:return_id>/cancel", admin_views.return_cancel, name="cancel"),
    path("<int:return_id>/close", admin_views.return_close, name="close"),
    path("<int:return_id>/label", admin_views.return_label, name="label"),
    path("photos/<int:photo_id>", admin_views.return_photo, name="photo"),
    path("blocklist", admin_views.blocklist, name="blocklist"),
    path("blocklist/<int:entry_id>/remove", admin_views.blocklist_remove, name="blocklist_remove"),
    path("policy", admin_views.policy, name="policy"),
]
