from django.apps import AppConfig


class DevshopConfig(AppConfig):
    name = "devshop"
    verbose_name = "Development store"
