from django.apps import AppConfig


class DevshopConfig(AppConfig):
    name = "devshop"
    verbose_name = "Development store"

    def ready(self) -> None:
        # The webhook delivery loop runs in the devshop server only: delivery_loop_start()
        # does nothing unless DEVSHOP_DELIVERY=1, which `manage.py devshop` sets for gunicorn.
        from devshop.webhooks import delivery_loop_start

        delivery_loop_start()
