from django.urls import path

from devshop import control, control_simulation

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
    path("shops/<str:shop>/variants/<int:variant_id>", control.variant_update),
    path("shops/<str:shop>/products/<int:product_id>", control.product_update),
    path("shops/<str:shop>/themes/publish", control.theme_publish),
    path("shops/<str:shop>/themes/main/colours", control.theme_colours),
    path("shops/<str:shop>/products/<int:product_id>/status", control.product_status_set),
    # The store's life (devshop.simulation, devshop.returns).
    path("shops/<str:shop>/orders/<int:order_id>/fulfil", control_simulation.order_fulfil),
    path("shops/<str:shop>/orders/<int:order_id>/state", control_simulation.order_state_view),
    path("shops/<str:shop>/orders/<int:order_id>/cancel", control_simulation.order_cancel),
    path("shops/<str:shop>/orders/<int:order_id>/refund", control_simulation.order_refund),
    path(
        "shops/<str:shop>/fulfillments/<int:fulfillment_id>/events",
        control_simulation.fulfillment_events,
    ),
    path("shops/<str:shop>/returns/<int:return_id>", control_simulation.return_state_view),
    path(
        "shops/<str:shop>/returns/<int:return_id>/<str:action>",
        control_simulation.return_action,
    ),
    path("shops/<str:shop>/simulate/tick", control_simulation.simulate_tick),
    path("shops/<str:shop>/simulate/seed", control_simulation.simulate_seed),
    path("clock", control_simulation.clock),
]
