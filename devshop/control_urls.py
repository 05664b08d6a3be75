from django.urls import path

from devshop import control

urlpatterns = [
    path("shops", control.shop_create),
    path("shops/<str:shop>", control.shop_detail),
    path("shops/<str:shop>/session-token", control.session_token_create),
    path("shops/<str:shop>/app/install", control.app_install_view),
    path("shops/<str:shop>/app/uninstall", control.app_uninstall_view),
    path("shops/<str:shop>/access-token/check", control.access_token_check),
    path("shops/<str:shop>/webhooks/emit", control.webhook_emit),
    path("shops/<str:shop>/webhooks/subscriptions", control.webhook_subscriptions),
    path("webhooks", control.webhooks_list),
    path("webhooks/flush", control.webhooks_flush),
    path("knobs", control.knobs),
    path("shops/<str:shop>/install", control.app_install_with_token),
    path("shops/<str:shop>/orders", control.orders_create),
    path("shops/<str:shop>/orders/<int:order_id>", control.order_update),
]
